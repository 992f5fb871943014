import Common
import Foundation
import Torch

/// A cxr checkpoint as a folder timm loads as it is, in the layout timm reads from the Hugging
/// Face hub: `model.safetensors` (timm's parameter names, as cxr writes them) and `config.json`
/// with `architecture`, `num_classes`, `num_features`, `label_names`, `model_args` (the
/// constructor's depths, dims, conv_mlp, in_chans, ls_init_value, head_init_scale, drop rates:
/// a custom size is a timm ConvNeXt with those arguments) and a `pretrained_cfg` whose
/// `input_size`, `mean`/`std` and `crop_pct` describe cxr's preprocessing
/// (0..255 -> -1..1 is timm's 0..1 normalized with mean 0.5, std 0.5).
public enum TimmExport {
  public struct Config: Codable, Equatable {
    public struct ModelArgs: Codable, Equatable {
      public var depths: [Int]
      public var dims: [Int]
      public var conv_mlp: Bool
      public var in_chans: Int
      public var ls_init_value: Double
      public var head_init_scale: Double
      public var drop_rate: Double
      public var drop_path_rate: Double
    }
    public struct PretrainedCfg: Codable, Equatable {
      public var tag = "cxr"
      public var input_size: [Int]
      public var fixed_input_size = false
      public var interpolation = "box"  // PIL box filter: area averaging, as cxr resizes
      public var crop_pct = 1.0
      public var crop_mode = "center"
      public var mean: [Double]
      public var std: [Double]
      public var num_classes: Int
      public var first_conv = "stem.0"
      public var classifier = "head.fc"
    }
    public var architecture: String
    public var num_classes: Int
    public var num_features: Int
    public var global_pool = "avg"
    public var label_names: [String]
    public var model_args: ModelArgs
    public var pretrained_cfg: PretrainedCfg
    /// cxr's own record: the input contract and the checkpoint's metadata, for a reader.
    public var cxr: [String: String]
  }

  /// Writes `out/model.safetensors` and `out/config.json`. `out` must not exist or be empty:
  /// nothing is overwritten.
  @discardableResult
  public static func export(checkpoint: URL, to out: URL) throws -> Config {
    let (tensors, metadata) = try SafeTensors.read(checkpoint)
    guard let meta = try CheckpointMetadata.decode(metadata, file: checkpoint.path) else {
      throw ModelError("\(checkpoint.path) has no cxr metadata (arch, findings): it is not a cxr checkpoint, so there is nothing to describe to timm")
    }
    let fm = FileManager.default
    if fm.fileExists(atPath: out.path) {
      let items = (try? fm.contentsOfDirectory(atPath: out.path)) ?? ["?"]
      guard items.isEmpty else {
        throw FileError("\(out.path) exists and is not an empty folder; export writes into a new folder (nothing was changed)")
      }
    }
    let c = meta.config
    let size = meta.input?.size ?? 512
    // A custom size has no timm name: any ConvNeXt name with the explicit constructor arguments.
    let architecture = ConvNeXtConfig.architectures.contains(c.arch) ? c.arch : (c.convMLP ? "convnext_atto" : "convnext_tiny")
    var extra = metadata.filter { ["cxr_version", "libtorch_version", "device", "weights", "epoch", "step", "schema", "study", "selection", "value"].contains($0.key) }
    if let input = meta.input {
      extra["input"] = metadata["input"] ?? input.description
    }
    extra["source"] = checkpoint.path
    let config = Config(
      architecture: architecture, num_classes: c.numClasses, num_features: c.dims.last ?? 0, label_names: meta.findings,
      model_args: .init(depths: c.depths, dims: c.dims, conv_mlp: c.convMLP, in_chans: c.inChannels, ls_init_value: c.layerScaleInit,
                        head_init_scale: c.headInitScale, drop_rate: c.dropRate, drop_path_rate: c.dropPathRate),
      pretrained_cfg: .init(input_size: [c.inChannels, size, size], mean: Array(repeating: 0.5, count: c.inChannels),
                            std: Array(repeating: 0.5, count: c.inChannels), num_classes: c.numClasses),
      cxr: extra)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try fm.createDirectory(at: out, withIntermediateDirectories: true)
    try SafeTensors.write(tensors.keys.sorted().map { ($0, tensors[$0]!) }, metadata: ["format": "pt"], to: out.appendingPathComponent("model.safetensors"))
    try AtomicFile.write(try enc.encode(config), to: out.appendingPathComponent("config.json"))
    return config
  }
}
