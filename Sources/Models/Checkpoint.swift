import Foundation
import Torch

/// What a model expects of its input images: the preprocessing it was trained with, so that
/// `cxr predict --checkpoint W` needs nothing else (a model trained at 64 px fed 512 px images
/// gives confident nonsense). Stored as the JSON metadata value `input`.
public struct InputContract: Codable, Equatable, Sendable, CustomStringConvertible {
  /// Longest side resized to this (area interpolation, aspect kept), then padded to size x size.
  public var size: Int
  /// Whether the images were histogram-equalized (by cxr, or at conversion as MIMIC-CXR-JPG's).
  public var equalize: Bool
  /// How the image is padded to a square (MONAI `SpatialPad`: symmetric, zeros before scaling).
  public var padding = "symmetric-zero"
  /// Intensity mapping (MONAI `ScaleIntensityRange(0, 255, -1, 1)`).
  public var intensity = "0..255 -> -1..1"

  public init(size: Int, equalize: Bool) {
    self.size = size
    self.equalize = equalize
  }

  public var description: String { "size \(size), equalize \(equalize ? "yes" : "no")" }
}

/// What our checkpoints say about themselves in the safetensors `__metadata__` (all values
/// are strings there): `arch`, `in_chans`, `num_classes`, `findings` (a JSON array, one name
/// per output), `config` (the resolved `ConvNeXtConfig` as JSON: depths, dims, layer scale,
/// head settings), `input` (the `InputContract` as JSON), plus `format: pt` as
/// `safetensors.torch.save_file` writes it, so Python tools treat the file as PyTorch's.
public struct CheckpointMetadata: Equatable {
  public var config: ConvNeXtConfig
  public var findings: [String]
  /// nil for files written before the contract was recorded, and for plain timm files.
  public var input: InputContract?

  public init(config: ConvNeXtConfig, findings: [String], input: InputContract? = nil) {
    self.config = config
    self.findings = findings
    self.input = input
  }

  public func encoded() throws -> [String: String] {
    var m = [
      "format": "pt",
      "producer": "cxr",
      "arch": config.arch,
      "in_chans": String(config.inChannels),
      "num_classes": String(config.numClasses),
      "findings": String(decoding: try JSONEncoder().encode(findings), as: UTF8.self),
      "config": try config.jsonString(),
    ]
    if let input {
      let enc = JSONEncoder()
      enc.outputFormatting = [.sortedKeys]
      m["input"] = String(decoding: try enc.encode(input), as: UTF8.self)
    }
    return m
  }

  /// Our metadata from a file's `__metadata__`; nil when the file has none (a plain timm or
  /// Facebook file). Present but malformed metadata is an error naming the key.
  public static func decode(_ metadata: [String: String], file: String) throws -> CheckpointMetadata? {
    guard let arch = metadata["arch"] else { return nil }
    func bad(_ key: String, _ why: String) -> ModelError {
      ModelError("\(file): metadata key '\(key)' \(why); rewrite the checkpoint with cxr or pass --arch/--findings/--in-chans")
    }
    var config: ConvNeXtConfig
    if let json = metadata["config"] {
      do {
        config = try JSONDecoder().decode(ConvNeXtConfig.self, from: Data(json.utf8))
      } catch {
        throw bad("config", "is not a ConvNeXt config in JSON (\(error))")
      }
    } else {
      config = try ConvNeXtConfig.named(arch)
    }
    if let s = metadata["in_chans"] {
      guard let c = Int(s) else { throw bad("in_chans", "is '\(s)', not a whole number") }
      config.inChannels = c
    }
    guard let f = metadata["findings"] else { throw bad("findings", "is missing") }
    guard let findings = try? JSONDecoder().decode([String].self, from: Data(f.utf8)) else {
      throw bad("findings", "is '\(f)', not a JSON array of names")
    }
    if let s = metadata["num_classes"], Int(s) != findings.count {
      throw bad("num_classes", "is '\(s)' but findings lists \(findings.count) names")
    }
    config.numClasses = findings.count
    do { try config.validate() } catch let e as ModelError { throw bad("config", "is invalid: \(e.message)") }
    var input: InputContract?
    if let s = metadata["input"] {
      do { input = try JSONDecoder().decode(InputContract.self, from: Data(s.utf8)) } catch {
        throw bad("input", "is not an input contract in JSON (\(error))")
      }
      guard input!.size > 0 else { throw bad("input", "gives size \(input!.size)") }
    }
    return CheckpointMetadata(config: config, findings: findings, input: input)
  }
}

/// How strictly a checkpoint must fit the model.
public struct LoadOptions {
  /// Re-initialize `head.fc` when the file's classifier has another number of classes or is
  /// absent (to fine-tune ImageNet weights or a backbone); otherwise that is a load error.
  public var resetMismatchedHead: Bool
  /// Draws the re-initialized classifier.
  public var generator: Generator?
  public init(resetMismatchedHead: Bool = false, generator: Generator? = nil) {
    self.resetMismatchedHead = resetMismatchedHead
    self.generator = generator
  }
}

/// A model opened from a checkpoint, with the names of its outputs and one line for each
/// adaptation that was made while loading.
public struct LoadedModel {
  public let model: ConvNeXt
  public let findings: [String]
  public let adaptations: [String]
  /// The preprocessing the checkpoint was trained with (nil: the file does not say).
  public var input: InputContract? = nil
  /// The file's whole `__metadata__` (which weights, step, provenance).
  public var metadata: [String: String] = [:]
}

extension ConvNeXt {
  /// Opens a safetensors checkpoint: ours (metadata says what it is) or a plain timm /
  /// Facebook file (then `arch` and `findings` say it). Explicit arguments must agree with the
  /// metadata; `inChans` 1 with a 3-channel file sums the stem over input channels.
  public static func load(checkpoint url: URL, arch: String? = nil, findings: [String]? = nil,
                          inChans: Int? = nil, options: LoadOptions = LoadOptions()) throws -> LoadedModel {
    let path = url.path
    let file: (tensors: StateDict, metadata: [String: String])
    do { file = try SafeTensors.read(url) } catch let e as TorchError { throw ModelError(e.message) }
    let meta = try CheckpointMetadata.decode(file.metadata, file: path)

    var config: ConvNeXtConfig
    if let meta {
      config = meta.config
      if let arch, arch != config.arch, try ConvNeXtConfig.named(arch).arch != config.arch {
        throw ModelError("\(path) holds a \(config.arch) (its metadata says so), not a \(arch); drop --arch or pick the right file")
      }
    } else {
      guard let arch else {
        throw ModelError("\(path) has no cxr metadata: pass the architecture (--arch, one of \(ConvNeXtConfig.architectures.joined(separator: ", ")))")
      }
      config = try ConvNeXtConfig.named(arch)
    }

    let names: [String]
    switch (meta?.findings, findings) {
    case let (stored?, given?) where stored != given:
      throw ModelError("\(path) was trained for findings \(stored.joined(separator: ",")), not \(given.joined(separator: ",")); drop --findings or pick the right file")
    case let (stored?, _): names = stored
    case let (nil, given?): names = given
    case (nil, nil):
      throw ModelError("\(path) has no cxr metadata: pass the finding names (--findings A,B), one per model output")
    }
    guard !names.isEmpty, Set(names).count == names.count, !names.contains(where: \.isEmpty) else {
      throw ModelError("findings must be distinct, non-empty names; got '\(names.joined(separator: ","))'")
    }
    config.numClasses = names.count

    if let inChans {
      config.inChannels = inChans
    } else if meta == nil, let stem = stemWeight(in: file.tensors), stem.ndim == 4 {
      config.inChannels = stem.shape[1]
    }
    let model = try ConvNeXt(uninitialized: config)
    let adaptations = try model.loadWeights(file.tensors, source: path, options: options)
    return LoadedModel(model: model, findings: names, adaptations: adaptations, input: meta?.input, metadata: file.metadata)
  }

  private static func stemWeight(in state: StateDict) -> Tensor? {
    state["stem.0.weight"] ?? state["downsample_layers.0.0.weight"]
  }

  /// Copies a state dict (timm's or Facebook's names) into this model by name, strictly: any
  /// missing, unexpected or wrongly shaped key is an error naming each one. Returns one line
  /// per adaptation made (renaming, stem summation, classifier reset).
  @discardableResult
  public func loadWeights(_ state: StateDict, source: String, options: LoadOptions = LoadOptions()) throws -> [String] {
    var sd = state
    var lines: [String] = []
    let own = Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.0, $0.1) })

    if let renamed = try FacebookNames.toTimm(sd, modelShapes: own.mapValues { $0.value.shape }) {
      sd = renamed.state
      lines.append("renamed \(renamed.count) keys from Facebook's original ConvNeXt names to timm's (timm checkpoint_filter_fn)")
    }

    if config.inChannels == 1, let w = sd["stem.0.weight"], w.ndim == 4, w.shape[1] == 3,
       let mine = own["stem.0.weight"], Array(w.shape[2...]) == Array(mine.value.shape[2...]), w.shape[0] == mine.value.shape[0] {
      // timm's adapt_input_conv: sum in float32, back to the file's dtype.
      sd["stem.0.weight"] = try withNoGrad { try w.to(dtype: .float32).sum(dims: [1], keepDim: true).to(dtype: w.dtype) }
      lines.append("stem.0.weight: summed the file's 3 input channels into 1 (timm adapt_input_conv)")
    }

    let fileHead = (sd["head.fc.weight"], sd["head.fc.bias"])
    if options.resetMismatchedHead,
       fileHead.0?.shape != headFC.weight.value.shape || fileHead.1?.shape != headFC.bias.value.shape {
      try initializeClassifier(generator: options.generator)
      sd["head.fc.weight"] = try headFC.weight.value.detach()
      sd["head.fc.bias"] = try headFC.bias.value.detach()
      let what = fileHead.0.map { "the file has \($0.shape.first ?? 0) classes, the model \(config.numClasses)" }
        ?? "the file has no classifier"
      lines.append("head.fc: \(what): re-initialized (truncated normal std 0.02, zero bias)")
    }

    do {
      try load(sd, strict: true)
    } catch let e as TorchError {
      throw ModelError("\(source): \(e.message)")
    }
    return lines
  }

  /// Writes the parameters with timm's names and our metadata, atomically, so that
  /// `timm.create_model(arch, num_classes=k, in_chans=c).load_state_dict(strict=True)` accepts it.
  public func save(to url: URL, findings: [String], metadata extra: [String: String] = [:]) throws {
    guard findings.count == config.numClasses else {
      throw ModelError("\(config.arch) has \(config.numClasses) outputs but \(findings.count) finding names were given: \(findings.joined(separator: ","))")
    }
    var meta = try CheckpointMetadata(config: config, findings: findings).encoded()
    for (k, v) in extra where meta[k] == nil { meta[k] = v }
    let tensors = try namedParameters().map { ($0.0, try $0.1.value.detach()) }
    try SafeTensors.write(tensors, metadata: meta, to: url)
  }
}

/// The key mapping of timm's `checkpoint_filter_fn` for Facebook's original ConvNeXt files
/// (`downsample_layers`, `dwconv`, `pwconv1/2`, `norm`, `head`).
enum FacebookNames {
  /// The state dict with timm's names, and how many keys changed; nil when it already uses
  /// timm's names (timm's test: `head.norm.weight` or `norm_pre.weight` present) or nothing changed.
  static func toTimm(_ state: StateDict, modelShapes: [String: [Int]]) throws -> (state: StateDict, count: Int)? {
    if state["head.norm.weight"] != nil || state["norm_pre.weight"] != nil { return nil }
    // timm's patterns, unescaped dots included.
    let blocks = try Regex(#"stages.([0-9]+).([0-9]+)"#)
    let downsample = try Regex(#"downsample_layers.([0-9]+).([0-9]+)"#)
    var out = StateDict()
    var changed = 0
    for (key, value) in state {
      if key.hasPrefix("projectors.") || key.hasPrefix("norms.") { changed += 1; continue }
      var k = key.replacingOccurrences(of: "downsample_layers.0.", with: "stem.")
      k = k.replacing(blocks) { m in "stages.\(m.output[1].substring ?? "").blocks.\(m.output[2].substring ?? "")" }
      k = k.replacing(downsample) { m in "stages.\(m.output[1].substring ?? "").downsample.\(m.output[2].substring ?? "")" }
      k = k.replacingOccurrences(of: "dwconv", with: "conv_dw")
      k = k.replacingOccurrences(of: "pwconv", with: "mlp.fc")
      k = k.replacingOccurrences(of: "head.", with: "head.fc.")
      if k.hasPrefix("norm.") { k = k.replacingOccurrences(of: "norm", with: "head.norm") }
      var v = value
      // Linear [out, in] weights into the 1x1 convs of conv_mlp models.
      if v.ndim == 2, !k.contains("head"), let shape = modelShapes[k], shape.reduce(1, *) == v.count {
        v = try v.reshape(shape)
      }
      if k != key { changed += 1 }
      out[k] = v
    }
    return changed > 0 ? (out, changed) : nil
  }
}
