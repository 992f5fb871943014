import Foundation
import Torch

/// A module with a forward pass and its own (re)initialization, as timm's `_init_weights`
/// does it for ConvNeXt: truncated normal std 0.02 for conv/linear weights, zero biases.
public protocol Layer: Module {
  func callAsFunction(_ x: Tensor) throws -> Tensor
  func initialize(generator: Generator?) throws
}

extension Module {
  /// Keys of `child`'s parameters under `prefix` + `name` + ".".
  func scoped(_ child: Module, _ prefix: String, _ name: String) -> [(String, Parameter)] {
    child.namedParameters(prefix: prefix + name + ".")
  }
}

/// New parameter storage; its values are set by `initialize` or by loading a checkpoint.
func slot(_ shape: [Int]) throws -> Parameter { try Parameter(Tensor.empty(shape)) }

/// `nn.Conv2d` with square kernels.
public final class Conv2d: Layer {
  public let weight: Parameter
  public let bias: Parameter?
  public let stride: Int, padding: Int, groups: Int

  public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
              groups: Int = 1, bias: Bool = true) throws {
    weight = try slot([outChannels, inChannels / groups, kernel, kernel])
    self.bias = bias ? try slot([outChannels]) : nil
    self.stride = stride
    self.padding = padding
    self.groups = groups
  }
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    try F.conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, groups: groups)
  }
  public func initialize(generator: Generator?) throws {
    try withNoGrad {
      try weight.value.truncNormal_(std: 0.02, generator: generator)
      try bias?.value.zero_()
    }
  }
  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    [(prefix + "weight", weight)] + (bias.map { [(prefix + "bias", $0)] } ?? [])
  }
  public func setTraining(_ on: Bool) {}
}

/// `nn.Linear`.
public final class Linear: Layer {
  public let weight: Parameter
  public let bias: Parameter
  public init(_ inFeatures: Int, _ outFeatures: Int) throws {
    weight = try slot([outFeatures, inFeatures])
    bias = try slot([outFeatures])
  }
  public var outFeatures: Int { weight.value.shape[0] }
  public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.linear(x, weight: weight.value, bias: bias.value) }
  public func initialize(generator: Generator?) throws {
    try withNoGrad {
      try weight.value.truncNormal_(std: 0.02, generator: generator)
      try bias.value.zero_()
    }
  }
  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    [(prefix + "weight", weight), (prefix + "bias", bias)]
  }
  public func setTraining(_ on: Bool) {}
}

/// LayerNorm over channels, eps 1e-6. `channelsFirst` takes NCHW input and normalizes over C
/// by permuting to NHWC and back (timm's `LayerNorm2d`); otherwise it normalizes the last
/// dimension (timm's `LayerNorm`, used on NHWC inside the blocks).
public final class LayerNorm: Layer {
  public let weight: Parameter
  public let bias: Parameter
  public let channelsFirst: Bool
  public let eps: Double
  let channels: Int

  public init(_ channels: Int, channelsFirst: Bool, eps: Double = 1e-6) throws {
    weight = try slot([channels])
    bias = try slot([channels])
    self.channelsFirst = channelsFirst
    self.eps = eps
    self.channels = channels
  }
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    if channelsFirst {
      let y = try F.layerNorm(x.permute([0, 2, 3, 1]), normalizedShape: [channels], weight: weight.value,
                              bias: bias.value, eps: eps)
      return try y.permute([0, 3, 1, 2])
    }
    return try F.layerNorm(x, normalizedShape: [channels], weight: weight.value, bias: bias.value, eps: eps)
  }
  public func initialize(generator: Generator?) throws {
    try withNoGrad {
      try weight.value.fill_(1)
      try bias.value.zero_()
    }
  }
  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    [(prefix + "weight", weight), (prefix + "bias", bias)]
  }
  public func setTraining(_ on: Bool) {}
}

/// The blocks' MLP: fc1, exact GELU, fc2. Linear layers on NHWC, or 1x1 convolutions on NCHW
/// for the sizes timm builds with `conv_mlp=True` (then the weights are [out, in, 1, 1]).
public final class MLP: Layer {
  public let fc1: Layer
  public let fc2: Layer
  public init(_ channels: Int, hidden: Int, conv: Bool) throws {
    if conv {
      fc1 = try Conv2d(channels, hidden, kernel: 1)
      fc2 = try Conv2d(hidden, channels, kernel: 1)
    } else {
      fc1 = try Linear(channels, hidden)
      fc2 = try Linear(hidden, channels)
    }
  }
  public func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(fc1(x).gelu()) }
  public func initialize(generator: Generator?) throws {
    try fc1.initialize(generator: generator)
    try fc2.initialize(generator: generator)
  }
  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    scoped(fc1, prefix, "fc1") + scoped(fc2, prefix, "fc2")
  }
  public func setTraining(_ on: Bool) {}
}

/// Draws a keep mask like PyTorch does: `empty(shape).bernoulli_(keep)` on x's device, then
/// scaled by 1/keep, so that a seeded run draws the same numbers as timm with the same seed.
func keepMask(_ shape: [Int], like x: Tensor, keep: Double, generator: Generator?) throws -> Tensor {
  let onGenerator = generator?.device ?? x.device
  let mask = try Tensor.empty(shape, dtype: x.dtype, device: onGenerator)
  try mask.bernoulli_(keep, generator: generator)
  let scaled = try mask / keep
  return onGenerator == x.device ? scaled : try scaled.to(x.device)
}

/// Stochastic depth (timm's `DropPath`): in training, each sample's residual branch is
/// dropped with probability `rate` and kept ones are scaled by 1/(1 - rate).
public final class DropPath {
  public let rate: Double
  public init(_ rate: Double) { self.rate = rate }
  public func callAsFunction(_ x: Tensor, training: Bool, generator: Generator?) throws -> Tensor {
    guard training, rate > 0 else { return x }
    var shape = [Int](repeating: 1, count: x.ndim)
    shape[0] = x.shape[0]
    return try x * keepMask(shape, like: x, keep: 1 - rate, generator: generator)
  }
}

/// Element-wise dropout (`nn.Dropout`), drawing from `generator`.
func dropout(_ x: Tensor, rate: Double, training: Bool, generator: Generator?) throws -> Tensor {
  guard training, rate > 0 else { return x }
  return try x * keepMask(x.shape, like: x, keep: 1 - rate, generator: generator)
}
