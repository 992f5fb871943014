import Common
import Foundation
import Torch

/// What a ConvNeXt is: its size (depths, widths), input channels, head size and the
/// regularization rates. Field names in JSON follow timm's constructor arguments.
public struct ConvNeXtConfig: Codable, Equatable, Sendable {
  /// timm's model name, e.g. `convnext_base`.
  public var arch: String
  public var depths: [Int]
  public var dims: [Int]
  /// 1x1 convolutions and channels-first LayerNorm in the blocks' MLP, as timm builds the
  /// small sizes (atto ... nano); linear layers in channels-last otherwise.
  public var convMLP: Bool
  public var inChannels: Int
  public var numClasses: Int
  /// Stochastic depth: per-block rates rise linearly from 0 to this over all blocks.
  public var dropPathRate: Double
  /// Dropout before the classifier.
  public var dropRate: Double
  /// Initial value of the layer-scale `gamma` of every block (timm's `ls_init_value`).
  public var layerScaleInit: Double
  /// Scale of the classifier's initial weights and biases (timm's `head_init_scale`).
  public var headInitScale: Double

  enum CodingKeys: String, CodingKey {
    case arch, depths, dims
    case convMLP = "conv_mlp"
    case inChannels = "in_chans"
    case numClasses = "num_classes"
    case dropPathRate = "drop_path_rate"
    case dropRate = "drop_rate"
    case layerScaleInit = "ls_init_value"
    case headInitScale = "head_init_scale"
  }

  /// timm's ConvNeXt sizes (timm 1.0 `convnext.py`): depths, dims and conv_mlp.
  static let sizes: [(name: String, depths: [Int], dims: [Int], convMLP: Bool)] = [
    ("convnext_atto", [2, 2, 6, 2], [40, 80, 160, 320], true),
    ("convnext_femto", [2, 2, 6, 2], [48, 96, 192, 384], true),
    ("convnext_pico", [2, 2, 6, 2], [64, 128, 256, 512], true),
    ("convnext_nano", [2, 2, 8, 2], [80, 160, 320, 640], true),
    ("convnext_tiny", [3, 3, 9, 3], [96, 192, 384, 768], false),
    ("convnext_small", [3, 3, 27, 3], [96, 192, 384, 768], false),
    ("convnext_base", [3, 3, 27, 3], [128, 256, 512, 1024], false),
    ("convnext_large", [3, 3, 27, 3], [192, 384, 768, 1536], false),
  ]

  /// The architecture names this build knows, smallest first.
  public static var architectures: [String] { sizes.map(\.name) }

  /// The config of a named size (`convnext_tiny`, or just `tiny`), with timm's defaults for
  /// everything not given.
  public static func named(_ arch: String, numClasses: Int = 1000, inChannels: Int = 3,
                           dropPathRate: Double = 0, dropRate: Double = 0) throws -> ConvNeXtConfig {
    let key = arch.lowercased().hasPrefix("convnext_") ? arch.lowercased() : "convnext_" + arch.lowercased()
    guard let size = sizes.first(where: { $0.name == key }) else {
      throw ModelError("unknown ConvNeXt architecture '\(arch)': use one of \(architectures.joined(separator: ", "))")
    }
    let config = ConvNeXtConfig(arch: size.name, depths: size.depths, dims: size.dims, convMLP: size.convMLP,
                                inChannels: inChannels, numClasses: numClasses, dropPathRate: dropPathRate,
                                dropRate: dropRate, layerScaleInit: 1e-6, headInitScale: 1)
    try config.validate()
    return config
  }

  /// Checks the values a user can set; throws naming the bad one.
  public func validate() throws {
    guard depths.count == 4, dims.count == 4, depths.allSatisfy({ $0 >= 1 }), dims.allSatisfy({ $0 >= 1 }) else {
      throw ModelError("ConvNeXt config '\(arch)' needs 4 stage depths and 4 widths, all positive; got depths \(depths), dims \(dims)")
    }
    guard inChannels == 1 || inChannels == 3 else {
      throw ModelError("in_chans must be 1 (grayscale) or 3 (RGB), not \(inChannels)")
    }
    guard numClasses >= 1 else { throw ModelError("num_classes must be at least 1, not \(numClasses)") }
    guard (0..<1).contains(dropPathRate) else {
      throw ModelError("drop_path_rate must be in [0, 1), not \(dropPathRate)")
    }
    guard (0..<1).contains(dropRate) else { throw ModelError("drop_rate must be in [0, 1), not \(dropRate)") }
  }

  /// Per-block stochastic-depth rates, stage by stage: linear from 0 to `dropPathRate` over
  /// all blocks (timm's `calculate_drop_path_rates(..., stagewise=True)`).
  public var dropPathRates: [[Double]] {
    let total = depths.reduce(0, +)
    let all = (0..<total).map { total == 1 ? 0 : dropPathRate * Double($0) / Double(total - 1) }
    var out: [[Double]] = []
    var start = 0
    for d in depths { out.append(Array(all[start..<start + d])); start += d }
    return out
  }

  /// The config as one JSON line (keys sorted), as stored in checkpoint metadata.
  public func jsonString() throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    return String(decoding: try enc.encode(self), as: UTF8.self)
  }
}

/// An error in the Models layer that a user can act on (bad name, bad checkpoint, bad input):
/// the one `UserError`.
public typealias ModelError = UserError
