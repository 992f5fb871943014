import Common
import Data
import Foundation
import Models
import Torch
import Train

/// A study as its config describes it: where the data is, which schemas train a classifier
/// each, how images are preprocessed, and where each schema's run folder is.
public struct Study {
  public let config: Config
  public let name: String
  public let findings: [String]
  public let seed: UInt64
  public let runRoot: URL
  public let device: Device

  public init(_ config: Config) throws {
    self.config = config
    name = try config.string("name")
    findings = try config.strings("findings")
    guard !findings.isEmpty else { throw ConfigError("\(config.where_("findings")): 'findings' needs at least one finding") }
    let s = try config.int("seed")
    guard s >= 0 else { throw ConfigError("\(config.where_("seed")): 'seed' must be >= 0") }
    seed = UInt64(s)
    runRoot = URL(fileURLWithPath: try config.string("out")).appendingPathComponent(name)
    device = try Study.device(try config.string("device"), at: config.where_("device"))
  }

  static func device(_ text: String, at origin: String) throws -> Device {
    if text == "auto" { return Runtime.cudaAvailable ? .cuda(0) : .cpu }
    do {
      let d = try Device(parsing: text)
      if d.isCUDA && !Runtime.cudaAvailable {
        throw ConfigError("\(origin): device \(text) asked for, but this libtorch sees no CUDA GPU (`cxr info`); use device: cpu or auto")
      }
      return d
    } catch let e as TorchError { throw ConfigError("\(origin): \(e.message)") }
  }

  // MARK: schemas

  public var schemaNames: [String] {
    (0..<config.count("schemas")).compactMap { config.optionalString("schemas[\($0)].name") }
  }

  public func schemaIndex(_ name: String) throws -> Int {
    guard let i = schemaNames.firstIndex(of: name) else {
      let known = schemaNames.isEmpty ? "none are configured" : "configured: \(schemaNames.joined(separator: ", "))"
      throw ConfigError("\(config.source): no schema named '\(name)' (\(known))")
    }
    return i
  }

  /// The label schema of item `i` of `list` ("schemas" or "references"), reading `fileKey`.
  public func labelSchema(list: String, _ i: Int, fileKey: String = "file") throws -> LabelSchema? {
    let p = "\(list)[\(i)]"
    guard let file = config.optionalString("\(p).\(fileKey)") else { return nil }
    let format = try LabelFormat(config: try config.string("\(p).format"), context: "\(config.where_("\(p).format")): \(p).format")
    let policy = try UncertaintyPolicy(config: try config.string("\(p).uncertain"), context: "\(config.where_("\(p).uncertain")): \(p).uncertain")
    var columns: [String: String] = [:]
    for (k, v) in config.pairs("\(p).columns") {
      guard case .string(let c) = v else { throw ConfigError("\(config.where_("\(p).columns")): \(p).columns.\(k) must name a column") }
      columns[k] = c
    }
    var values: [String: LabelValue]? = nil
    let pairs = config.pairs("\(p).values")
    if !pairs.isEmpty {
      var m: [String: LabelValue] = [:]
      for (k, v) in pairs {
        let n: Int
        switch v {
        case .int(let x): n = x
        case .double(let x): n = Int(x)
        default: throw ConfigError("\(config.where_("\(p).values")): \(p).values.\(k) must be 1, 0 or -1")
        }
        guard let lv = LabelValue(rawValue: Int8(n)), lv != .blank else {
          throw ConfigError("\(config.where_("\(p).values")): \(p).values.\(k) is \(n); use 1, 0 or -1")
        }
        m[k] = lv
      }
      values = m
    }
    let idColumn = config.optionalString("\(p).id_column")
    return LabelSchema(name: try config.string("\(p).name"), file: URL(fileURLWithPath: file), format: format,
                       idColumns: idColumn.map { [$0] }, columns: columns, values: values, uncertainty: policy)
  }

  // MARK: datasets

  public func trainIndex() throws -> DatasetIndex {
    let kind = try config.string("train_data.kind")
    switch kind {
    case "mimic":
      guard let root = config.optionalString("train_data.root") else {
        throw ConfigError("\(config.source): train_data.root must give the MIMIC-CXR-JPG folder")
      }
      return try MIMICCXRJPG(root: URL(fileURLWithPath: root), metadata: config.optionalString("train_data.metadata").map(URL.init(fileURLWithPath:)),
                             views: Set(try config.strings("train_data.views"))).index()
    case "manifest":
      guard let m = config.optionalString("train_data.manifest") else {
        throw ConfigError("\(config.source): train_data.manifest must give the CSV manifest")
      }
      return try CSVManifest(file: URL(fileURLWithPath: m)).index()
    default:
      throw ConfigError("\(config.where_("train_data.kind")): train_data.kind is '\(kind)'; use mimic or manifest")
    }
  }

  public func testIndex() throws -> DatasetIndex? {
    let kind = try config.string("test_data.kind")
    switch kind {
    case "none": return nil
    case "candid":
      guard let root = config.optionalString("test_data.root") else {
        throw ConfigError("\(config.source): test_data.root must give the CANDID-PTX folder")
      }
      return try CANDIDPTX(root: URL(fileURLWithPath: root), maskWidth: nil, maskHeight: nil).index()
    case "manifest":
      guard let m = config.optionalString("test_data.manifest") else {
        throw ConfigError("\(config.source): test_data.manifest must give the CSV manifest")
      }
      return try CSVManifest(file: URL(fileURLWithPath: m)).index()
    default:
      throw ConfigError("\(config.where_("test_data.kind")): test_data.kind is '\(kind)'; use candid, manifest or none")
    }
  }

  /// The training images labelled by schema `name`, restricted to the study's findings.
  public func labelling(schema name: String, index: DatasetIndex) throws -> Labelling {
    let i = try schemaIndex(name)
    guard let schema = try labelSchema(list: "schemas", i) else { throw ConfigError("\(config.source): schemas[\(i)] needs a file") }
    return Labelling(index: index, table: try schema.read(findings: findings))
  }

  // MARK: settings for the layers

  public var preprocessTrain: PreprocessSettings {
    get throws { PreprocessSettings(size: try config.int("preprocess.size"), equalize: try config.bool("train_data.equalize")) }
  }
  public var preprocessTest: PreprocessSettings {
    get throws { PreprocessSettings(size: try config.int("preprocess.size"), equalize: try config.bool("test_data.equalize")) }
  }

  public func loaderOptions(preprocess: PreprocessSettings, shuffle: Bool, badFilesFolder: URL?, split: String) throws -> LoaderOptions {
    let workers = try config.int("loader.workers")
    let policyText = try config.string("loader.bad_files")
    guard let policy = BadFilePolicy(rawValue: policyText) else {
      throw ConfigError("\(config.where_("loader.bad_files")): loader.bad_files is '\(policyText)'; use skip or fail")
    }
    return LoaderOptions(batchSize: try config.int("loader.batch_size"), preprocess: preprocess,
                         workers: LoaderOptions.workers(workers),
                         prefetch: try config.int("loader.prefetch"), shuffle: shuffle, seed: seed, dropLast: false,
                         badFilePolicy: policy, badFilesFolder: badFilesFolder, split: split)
  }

  /// The Train layer's options: the config's `train:` mapping over its defaults, with the
  /// study's seed and device.
  public func trainOptions() throws -> TrainOptions {
    var settings = (config.value("train") ?? .map([])).plain as? [String: Any] ?? [:]
    settings["seed"] = Int(seed)
    settings["device"] = device.description
    return try TrainOptions(settings: settings, origin: config.source)
  }

  public func modelConfig() throws -> ConvNeXtConfig {
    var c = try ConvNeXtConfig.named(try config.string("model.arch"), numClasses: findings.count,
                                     inChannels: try config.int("model.in_chans"))
    let depths = try config.doubles("model.depths").map { Int($0) }, dims = try config.doubles("model.dims").map { Int($0) }
    if !depths.isEmpty || !dims.isEmpty {
      // A custom size (e.g. for a CPU demo): timm has no name for it, so it gets its own.
      if !depths.isEmpty { c.depths = depths }
      if !dims.isEmpty { c.dims = dims }
      c.arch = "convnext_custom"
    }
    c.dropPathRate = try config.double("model.drop_path_rate")
    c.dropRate = try config.double("model.head_dropout")
    c.layerScaleInit = try config.double("model.layer_scale_init")
    try c.validate()
    return c
  }

  public func schemaFolder(_ name: String) -> URL { runRoot.appendingPathComponent(name) }

  /// What the trained model expects of its inputs: the preprocessing size, and whether the
  /// training images were equalized (by cxr, or at conversion, as MIMIC-CXR-JPG's were).
  public var inputContract: InputContract {
    get throws {
      let equalized = try config.bool("train_data.equalize") || config.string("train_data.kind") == "mimic"
      return InputContract(size: try config.int("preprocess.size"), equalize: equalized)
    }
  }

  /// The model to train: timm's initialization from the study seed, or the pretrained file's
  /// weights (a timm / Facebook file, or a cxr checkpoint of any size, custom ones included),
  /// with the config's drop path, dropout and layer scale either way.
  public func makeModel(log: (String) -> Void) throws -> ConvNeXt {
    let modelConfig = try self.modelConfig()
    let generator = try Generator(seed: seed)
    let pretrained = config.optionalString("model.pretrained")
    let model = pretrained == nil ? try ConvNeXt(modelConfig, generator: generator) : try ConvNeXt(uninitialized: modelConfig)
    if let pretrained {
      let url = URL(fileURLWithPath: pretrained)
      let file: (tensors: StateDict, metadata: [String: String])
      do { file = try SafeTensors.read(url) } catch let e as TorchError {
        throw ConfigError("\(config.where_("model.pretrained")): model.pretrained: \(e.message)")
      }
      if let meta = try CheckpointMetadata.decode(file.metadata, file: pretrained) {
        let theirs = meta.config
        if theirs.depths != modelConfig.depths || theirs.dims != modelConfig.dims || theirs.convMLP != modelConfig.convMLP {
          throw ConfigError("\(config.where_("model.pretrained")): \(pretrained) holds a \(theirs.arch) (depths \(theirs.depths), dims \(theirs.dims)) but the config builds a \(modelConfig.arch) (depths \(modelConfig.depths), dims \(modelConfig.dims)); set model.arch/depths/dims to match the file")
        }
      }
      let lines = try model.loadWeights(file.tensors, source: pretrained,
                                        options: LoadOptions(resetMismatchedHead: true, generator: generator))
      for line in lines { log("[model] \(line)") }
    }
    model.generator = generator
    return model
  }

  /// With `preprocess.cache`, every image preprocessed once into `<run>/cache/<name>` (shared
  /// by the schemas, rebuilt when sources or settings change); nil when the cache is off.
  public func cache(_ name: String, images: [URL], settings: PreprocessSettings,
                    log: (String) -> Void) throws -> PreprocessedCache? {
    guard try config.bool("preprocess.cache") else { return nil }
    let folder = runRoot.appendingPathComponent("cache").appendingPathComponent(name)
    let report = try CacheBuilder.build(sources: images, settings: settings, folder: folder,
                                        workers: LoaderOptions.workers(try config.int("loader.workers")))
    log("[cache] \(name): \(report.rebuilt ? "built" : "up to date"), \(report.images) images (\(report.bad.count) unreadable)")
    return try PreprocessedCache.openIfMatching(folder, settings: settings)
  }
}
