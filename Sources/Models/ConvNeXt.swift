import Foundation
import Torch

/// One ConvNeXt block: `x + drop_path(gamma * mlp(norm(conv_dw(x))))`, as timm's
/// `ConvNeXtBlock`: the 7x7 depthwise conv runs on NCHW; norm and MLP run on NHWC (linear
/// MLP) or on NCHW (`conv_mlp`, 1x1 convs); layer scale and the residual on NCHW.
public final class ConvNeXtBlock: Module {
  public let convDW: Conv2d
  public let norm: LayerNorm
  public let mlp: MLP
  public let gamma: Parameter
  public let dropPath: DropPath
  let convMLP: Bool
  let layerScaleInit: Double

  init(_ channels: Int, convMLP: Bool, dropPath: Double, layerScaleInit: Double) throws {
    convDW = try Conv2d(channels, channels, kernel: 7, padding: 3, groups: channels)
    norm = try LayerNorm(channels, channelsFirst: convMLP)
    mlp = try MLP(channels, hidden: 4 * channels, conv: convMLP)
    gamma = try slot([channels])
    self.dropPath = DropPath(dropPath)
    self.convMLP = convMLP
    self.layerScaleInit = layerScaleInit
  }

  func forward(_ x: Tensor, training: Bool, generator: Generator?) throws -> Tensor {
    var y = try convDW(x)
    if convMLP {
      y = try mlp(norm(y))
    } else {
      y = try mlp(norm(y.permute([0, 2, 3, 1]))).permute([0, 3, 1, 2])
    }
    y = try y * gamma.value.reshape([1, -1, 1, 1])
    return try dropPath(y, training: training, generator: generator) + x
  }

  func initialize(generator: Generator?) throws {
    try convDW.initialize(generator: generator)
    try norm.initialize(generator: generator)
    try mlp.initialize(generator: generator)
    try withNoGrad { try gamma.value.fill_(layerScaleInit) }
  }

  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    // timm registers gamma after conv_dw, norm and mlp in __init__, but nn.Module lists
    // directly-held parameters before submodules: `gamma` comes first in its state_dict.
    [(prefix + "gamma", gamma)] + scoped(convDW, prefix, "conv_dw") + scoped(norm, prefix, "norm")
      + scoped(mlp, prefix, "mlp")
  }
  public func setTraining(_ on: Bool) {}
}

/// A stage: an optional downsample (channels-first LayerNorm, 2x2 stride-2 conv), then blocks.
public final class ConvNeXtStage: Module {
  public let downsample: (norm: LayerNorm, conv: Conv2d)?
  public let blocks: [ConvNeXtBlock]

  init(inChannels: Int, outChannels: Int, downsample: Bool, depth: Int, dropPathRates: [Double],
       convMLP: Bool, layerScaleInit: Double) throws {
    self.downsample = downsample
      ? (try LayerNorm(inChannels, channelsFirst: true), try Conv2d(inChannels, outChannels, kernel: 2, stride: 2))
      : nil
    blocks = try (0..<depth).map {
      try ConvNeXtBlock(outChannels, convMLP: convMLP, dropPath: dropPathRates[$0], layerScaleInit: layerScaleInit)
    }
  }

  func forward(_ x: Tensor, training: Bool, generator: Generator?) throws -> Tensor {
    var y = x
    if let (norm, conv) = downsample { y = try conv(norm(y)) }
    for block in blocks { y = try block.forward(y, training: training, generator: generator) }
    return y
  }

  func initialize(generator: Generator?) throws {
    if let (norm, conv) = downsample {
      try norm.initialize(generator: generator)
      try conv.initialize(generator: generator)
    }
    for block in blocks { try block.initialize(generator: generator) }
  }

  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    var out: [(String, Parameter)] = []
    if let (norm, conv) = downsample {
      out += scoped(norm, prefix, "downsample.0") + scoped(conv, prefix, "downsample.1")
    }
    for (j, block) in blocks.enumerated() { out += scoped(block, prefix, "blocks.\(j)") }
    return out
  }
  public func setTraining(_ on: Bool) {}
}

/// The ConvNeXt classifier, with timm's parameter names so that timm checkpoints load and our
/// checkpoints load in timm: `stem.0/1`, `stages.i.downsample.0/1`, `stages.i.blocks.j.*`,
/// `head.norm`, `head.fc`.
public final class ConvNeXt: Module {
  public let config: ConvNeXtConfig
  public let stemConv: Conv2d
  public let stemNorm: LayerNorm
  public let stages: [ConvNeXtStage]
  public let headNorm: LayerNorm
  public private(set) var headFC: Linear
  /// Whether dropout and drop path are active (like `nn.Module.training`); off after init.
  public private(set) var isTraining = false
  /// Where drop path and dropout draw their random numbers; nil uses libtorch's default
  /// generator of the device. Set a seeded one for reproducible training.
  public var generator: Generator?

  /// A model with timm's initialization, drawn from `generator` (nil: libtorch's default).
  public convenience init(_ config: ConvNeXtConfig, generator: Generator? = nil) throws {
    try self.init(uninitialized: config)
    try initialize(generator: generator)
  }

  /// A model whose parameter values are undefined until a checkpoint is loaded into it.
  public init(uninitialized config: ConvNeXtConfig) throws {
    try config.validate()
    self.config = config
    let dims = config.dims
    stemConv = try Conv2d(config.inChannels, dims[0], kernel: 4, stride: 4)
    stemNorm = try LayerNorm(dims[0], channelsFirst: true)
    let rates = config.dropPathRates
    stages = try (0..<4).map { i in
      try ConvNeXtStage(inChannels: i == 0 ? dims[0] : dims[i - 1], outChannels: dims[i], downsample: i > 0,
                        depth: config.depths[i], dropPathRates: rates[i], convMLP: config.convMLP,
                        layerScaleInit: config.layerScaleInit)
    }
    headNorm = try LayerNorm(dims[3], channelsFirst: true)
    headFC = try Linear(dims[3], config.numClasses)
  }

  /// timm's `_init_weights`: truncated normal std 0.02 for every conv and linear weight, zero
  /// biases, LayerNorms at (1, 0), `gamma` at `ls_init_value`, the classifier scaled by
  /// `head_init_scale`.
  public func initialize(generator: Generator? = nil) throws {
    try stemConv.initialize(generator: generator)
    try stemNorm.initialize(generator: generator)
    for stage in stages { try stage.initialize(generator: generator) }
    try headNorm.initialize(generator: generator)
    try initializeClassifier(generator: generator)
  }

  /// Re-draws the classifier (`head.fc`) alone, as when fine-tuning for other classes.
  public func initializeClassifier(generator: Generator? = nil) throws {
    try headFC.initialize(generator: generator)
    if config.headInitScale != 1 {
      try withNoGrad {
        try headFC.weight.value.mul_(config.headInitScale)
        try headFC.bias.value.mul_(config.headInitScale)
      }
    }
  }

  /// Logits [B, numClasses] for images [B, inChannels, H, W] (contiguous or channels_last).
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    try head(features(x))
  }

  /// The last stage's feature map [B, dims[3], H/32, W/32].
  public func features(_ x: Tensor) throws -> Tensor {
    guard x.ndim == 4, x.shape[1] == config.inChannels else {
      throw ModelError("\(config.arch) expects images [batch, \(config.inChannels), height, width], got \(x.shape)")
    }
    var y = try stemNorm(stemConv(x))
    for stage in stages { y = try stage.forward(y, training: isTraining, generator: generator) }
    return y
  }

  /// Global average pool, LayerNorm over channels, dropout, classifier (timm's
  /// `NormMlpClassifierHead` without a hidden layer).
  public func head(_ features: Tensor) throws -> Tensor {
    let pooled = try headNorm(F.adaptiveAvgPool2d(features, 1, 1)).flatten(1)
    return try headFC(dropout(pooled, rate: config.dropRate, training: isTraining, generator: generator))
  }

  public func setTraining(_ on: Bool) { isTraining = on }

  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    var out = scoped(stemConv, prefix, "stem.0") + scoped(stemNorm, prefix, "stem.1")
    for (i, stage) in stages.enumerated() { out += scoped(stage, prefix, "stages.\(i)") }
    return out + scoped(headNorm, prefix, "head.norm") + scoped(headFC, prefix, "head.fc")
  }

  /// Stores 4-D weights (convolutions) in channels_last memory format, which together with
  /// channels_last input lets libtorch pick its NHWC kernels (faster on recent CPUs and GPUs).
  public func toChannelsLast() throws {
    try withNoGrad {
      for p in parameters where p.value.ndim == 4 { try p.replace(with: p.value.contiguous(.channelsLast)) }
    }
  }
}
