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

  /// The typed settings (`config.settings`).
  public var settings: StudyConfig { config.settings }

  public init(_ config: Config) throws {
    self.config = config
    let s = config.settings
    name = s.name
    findings = s.findings
    seed = UInt64(s.seed)
    runRoot = URL(fileURLWithPath: s.out).appendingPathComponent(name)
    device = try Study.device(s.device, at: config.where_("device"))
  }

  static func device(_ text: String, at origin: String) throws -> Device {
    let (device, note) = try resolveDevice(text, at: origin, shimHasCUDA: Runtime.shimHasCUDA,
                                           cudaAvailable: Runtime.cudaAvailable, deviceCount: Runtime.cudaDeviceCount)
    if let note { noteOnce(note) }
    return device
  }

  /// The config's `device` on a libtorch that has (`shimHasCUDA`) and sees (`cudaAvailable`,
  /// `deviceCount`) what it has: the device and, for `auto` falling back to the CPU on a CUDA
  /// build, the line that says so. A device that cannot be used is an error naming the key.
  static func resolveDevice(_ text: String, at origin: String, shimHasCUDA: Bool, cudaAvailable: Bool,
                            deviceCount: Int) throws -> (device: Device, note: String?) {
    if text == "auto" { return Device.auto(shimHasCUDA: shimHasCUDA, cudaAvailable: cudaAvailable, deviceCount: deviceCount) }
    let d: Device
    do { d = try Device(parsing: text) } catch let e as TorchError { throw ConfigError("\(origin): \(e.message)") }
    if let problem = d.problem(shimHasCUDA: shimHasCUDA, cudaAvailable: cudaAvailable, deviceCount: deviceCount) {
      throw ConfigError("\(origin): device: \(text) cannot be used: \(problem). Set device: cpu, or auto (a GPU when there is one, else the CPU)")
    }
    return (d, nil)
  }

  /// The fallback note goes to stderr once per process, however many times a study is read.
  private static let noteLock = NSLock()
  nonisolated(unsafe) private static var noted: Set<String> = []
  private static func noteOnce(_ note: String) {
    noteLock.lock(); defer { noteLock.unlock() }
    guard noted.insert(note).inserted else { return }
    FileHandle.standardError.write(Data("cxr: \(note)\n".utf8))
  }

  // MARK: schemas

  public var schemaNames: [String] { settings.schemas.compactMap(\.name) }

  public func schemaIndex(_ name: String) throws -> Int {
    guard let i = schemaNames.firstIndex(of: name) else {
      let known = schemaNames.isEmpty ? "none are configured" : "configured: \(schemaNames.joined(separator: ", "))"
      throw ConfigError("\(config.source): no schema named '\(name)' (\(known))")
    }
    return i
  }

  /// Which list a label item comes from, and which of its files is read.
  public enum LabelList: String { case schemas, references }

  /// The label schema of item `i` of `list`, reading its `file` or (`test: true`) its `test_file`.
  public func labelSchema(_ list: LabelList, _ i: Int, test: Bool = false) throws -> LabelSchema? {
    let item = list == .schemas ? settings.schemas[i] : settings.references[i]
    guard let file = test ? item.testFile : item.file else { return nil }
    let p = "\(list.rawValue)[\(i)]"
    var values: [String: LabelValue]? = nil
    if !item.values.isEmpty {
      var m: [String: LabelValue] = [:]
      for (k, n) in item.values {
        guard let lv = LabelValue(rawValue: Int8(clamping: n)), lv != .blank, (-1...1).contains(n) else {
          throw ConfigError("\(config.where_("\(p).values.\(k)")): \(p).values.\(k) is \(n); use 1, 0 or -1")
        }
        m[k] = lv
      }
      values = m
    }
    return LabelSchema(name: item.name ?? "", file: URL(fileURLWithPath: file), format: item.format,
                       idColumns: item.idColumn.map { [$0] }, columns: item.columns, values: values, uncertainty: item.uncertain)
  }

  // MARK: datasets

  public func trainIndex() throws -> DatasetIndex {
    let d = settings.trainData
    switch d.kind {
    case .mimic:
      guard let root = d.root else {
        throw ConfigError("\(config.where_("train_data")): train_data.root must give the MIMIC-CXR-JPG folder")
      }
      return try MIMICCXRJPG(root: URL(fileURLWithPath: root), metadata: d.metadata.map(URL.init(fileURLWithPath:)),
                             views: Set(d.views)).index()
    case .manifest:
      guard let m = d.manifest else {
        throw ConfigError("\(config.where_("train_data")): train_data.manifest must give the CSV manifest")
      }
      return try CSVManifest(file: URL(fileURLWithPath: m)).index()
    }
  }

  public func testIndex() throws -> DatasetIndex? {
    let d = settings.testData
    switch d.kind {
    case .none: return nil
    case .candid:
      guard let root = d.root else {
        throw ConfigError("\(config.where_("test_data")): test_data.root must give the CANDID-PTX folder")
      }
      return try CANDIDPTX(root: URL(fileURLWithPath: root), maskWidth: nil, maskHeight: nil).index()
    case .manifest:
      guard let m = d.manifest else {
        throw ConfigError("\(config.where_("test_data")): test_data.manifest must give the CSV manifest")
      }
      return try CSVManifest(file: URL(fileURLWithPath: m)).index()
    }
  }

  /// The training images labelled by schema `name`, restricted to the study's findings.
  public func labelling(schema name: String, index: DatasetIndex) throws -> Labelling {
    Labelling(index: index, table: try labelTable(schema: name))
  }

  // MARK: settings for the layers

  public var preprocessTrain: PreprocessSettings {
    PreprocessSettings(size: settings.preprocess.size, equalize: settings.trainData.equalize)
  }
  public var preprocessTest: PreprocessSettings {
    PreprocessSettings(size: settings.preprocess.size, equalize: settings.testData.equalize)
  }

  public func loaderOptions(preprocess: PreprocessSettings, shuffle: Bool, badFilesFolder: URL?, split: String) -> LoaderOptions {
    let l = settings.loader
    return LoaderOptions(batchSize: l.batchSize, preprocess: preprocess, workers: LoaderOptions.workers(l.workers),
                         prefetch: l.prefetch, shuffle: shuffle, seed: seed, dropLast: false,
                         badFilePolicy: l.badFiles, badFilesFolder: badFilesFolder, split: split)
  }

  /// The Train layer's options: the config's `train:` section with the study's seed and device.
  public func trainOptions() throws -> TrainOptions {
    var o = settings.train
    o.seed = seed
    o.device = device
    do { try o.validate() } catch let e as TrainError {
      throw ConfigError("\(e.key.map(config.where_) ?? config.source): \(e.message)")
    }
    return o
  }

  public func modelConfig() throws -> ConvNeXtConfig {
    let m = settings.model
    var c = try ConvNeXtConfig.named(m.arch, numClasses: findings.count, inChannels: m.inChans)
    if !m.depths.isEmpty || !m.dims.isEmpty {
      // A custom size (e.g. for a CPU demo): timm has no name for it, so it gets its own.
      if !m.depths.isEmpty { c.depths = m.depths }
      if !m.dims.isEmpty { c.dims = m.dims }
      c.arch = "convnext_custom"
    }
    c.dropPathRate = m.dropPathRate
    c.dropRate = m.headDropout
    c.layerScaleInit = m.layerScaleInit
    try c.validate()
    return c
  }

  public func schemaFolder(_ name: String) -> URL { runRoot.appendingPathComponent(name) }

  /// What the trained model expects of its inputs: the preprocessing size, and whether the
  /// training images were equalized (by cxr, or at conversion, as MIMIC-CXR-JPG's were).
  public var inputContract: InputContract {
    InputContract(size: settings.preprocess.size, equalize: settings.trainData.equalize || settings.trainData.kind == .mimic)
  }

  /// The model to train: timm's initialization from the study seed, or the pretrained file's
  /// weights (a timm / Facebook file, or a cxr checkpoint of any size, custom ones included),
  /// with the config's drop path, dropout and layer scale either way.
  public func makeModel(log: (String) -> Void) throws -> ConvNeXt {
    let modelConfig = try self.modelConfig()
    let seeds = Seeds(seed)
    let generator = try Generator(seed: seeds.seed(.modelInit))
    let pretrained = settings.model.pretrained
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
    // Drop path and head dropout draw from their own stream (a checkpoint keeps its state).
    model.generator = try Generator(seed: seeds.seed(.dropPath))
    return model
  }

  /// With `preprocess.cache`, every image preprocessed once into `<run>/cache/<name>` (shared
  /// by the schemas, rebuilt when sources or settings change); nil when the cache is off.
  public func cache(_ name: String, images: [URL], settings: PreprocessSettings,
                    log: (String) -> Void) throws -> PreprocessedCache? {
    guard self.settings.preprocess.cache else { return nil }
    let folder = runRoot.appendingPathComponent("cache").appendingPathComponent(name)
    let report = try CacheBuilder.build(sources: images, settings: settings, folder: folder,
                                        workers: LoaderOptions.workers(self.settings.loader.workers))
    log("[cache] \(name): \(report.rebuilt ? "built" : "up to date"), \(report.images) images (\(report.bad.count) unreadable)")
    return try PreprocessedCache.openIfMatching(folder, settings: settings)
  }
}
