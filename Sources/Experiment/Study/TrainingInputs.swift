import Common
import Foundation

/// What a schema's trained weights depend on, as flat `key: value` lines: the settings that
/// change the weights (data, labels, split, preprocessing, model, optimisation, augmentation,
/// seed) and the content fingerprints of the files they name. Display and bookkeeping keys
/// (`train.progress_interval`, `train.keep_last`, `train.checkpoint_every`, `train.max_steps`,
/// `train.cudnn_benchmark`, loader threads, the device, the test set) are left out, so changing
/// them never invalidates a training. Stored as `inputs.json` in the schema's folder; a run
/// whose inputs differ from the stored ones is never continued or replaced silently.
public struct TrainingInputs: Codable, Equatable, Sendable {
  public static let fileName = "inputs.json"
  /// Keys of `train:` that do not change the weights.
  static let bookkeepingTrainKeys: Set<String> = ["progress_interval", "keep_last", "checkpoint_every", "max_steps",
                                                  "cudnn_benchmark"]

  public var values: [String: String]

  public init(values: [String: String]) { self.values = values }

  /// The inputs of schema `name`'s training, from the resolved study config, trained by
  /// `processes` data-parallel processes: each takes its own micro-batches, so N processes train
  /// with a global batch N times one process's (`processes` is recorded when above 1).
  public init(study: Study, schema name: String, processes: Int = 1) throws {
    let c = study.settings
    var v: [String: String] = [:]
    func add(_ prefix: String, _ value: some Encodable) throws {
      for (k, x) in try NodeEncoder.flatten(value, prefix: prefix) { v[k] = x }
    }
    try add("seed", c.seed)
    try add("findings", c.findings)
    try add("train_data", c.trainData)
    try add("split", c.split)
    try add("model", c.model)
    try add("preprocess.size", c.preprocess.size)
    try add("preprocess.cache", c.preprocess.cache)
    try add("loader.batch_size", c.loader.batchSize)
    try add("train", c.train)
    for k in TrainingInputs.bookkeepingTrainKeys { v["train.\(k)"] = nil }
    // The schema by its name (not its position in the list), without its test-set file.
    let i = try study.schemaIndex(name)
    var item = c.schemas[i]
    item.testFile = nil
    try add("schema", item)
    v["schema.test_file"] = nil
    // A plain file schema leaves its (unset) derive and sweep keys out, so adding them to the
    // config did not change the inputs of trainings made before; a derived one adds its sources.
    for k in v.keys where k.hasPrefix("schema.sweep") || (!item.derive.isSet && k.hasPrefix("schema.derive")) { v[k] = nil }
    if item.derive.isSet { for (k, x) in try study.derivationInputs(name) { v[k] = x } }
    // Files whose content the weights depend on.
    func file(_ key: String, _ path: String?) {
      guard let path else { return }
      v["file \(key)"] = Fingerprint.file(URL(fileURLWithPath: path))
    }
    file("schema.file", item.file)
    file("train_data.metadata", c.trainData.metadata)
    file("train_data.manifest", c.trainData.manifest)
    file("split.file", c.split.file)
    file("model.pretrained", c.model.pretrained)
    if c.trainData.metadata == nil, let root = c.trainData.root {
      for n in ["mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv"] {
        let u = URL(fileURLWithPath: root).appendingPathComponent(n)
        if FileManager.default.fileExists(atPath: u.path) { v["file train_data.root/\(n)"] = Fingerprint.file(u); break }
      }
    }
    if processes > 1 { v[TrainingInputs.processesKey] = String(processes) }
    values = v
  }

  /// Data-parallel processes of the training (absent: one). A resume keeps the checkpoint's
  /// global batch whatever the number of processes, so a training in progress is continued by
  /// any number of them (`withoutProcesses`).
  public static let processesKey = "processes"
  public var withoutProcesses: TrainingInputs { var c = self; c.values[TrainingInputs.processesKey] = nil; return c }

  public var fingerprint: String { Fingerprint.of(values.keys.sorted().flatMap { [$0, values[$0]!] }) }

  /// One changed key: its value then (nil: not set) and now.
  public struct Change: Codable, Equatable, Sendable {
    public var key: String
    public var old: String?
    public var new: String?
    public var description: String {
      if key.hasPrefix("file "), let o = old, let n = new {
        let (op, np) = (o.split(separator: ":").first.map(String.init) ?? o, n.split(separator: ":").first.map(String.init) ?? n)
        return op == np ? "\(key.dropFirst(5)) (\(np)): content changed" : "\(key.dropFirst(5)): \(op) -> \(np)"
      }
      let unset = key == TrainingInputs.processesKey ? "1" : "(not set)"
      return "\(key): \(old ?? unset) -> \(new ?? unset)"
    }
  }

  /// What changed from `old` to these inputs, sorted by key.
  public func changes(since old: TrainingInputs) -> [Change] {
    Set(values.keys).union(old.values.keys).sorted().compactMap { k in
      old.values[k] == values[k] ? nil : Change(key: k, old: old.values[k], new: values[k])
    }
  }

  public static func read(folder: URL) throws -> TrainingInputs? {
    let url = folder.appendingPathComponent(fileName)
    guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
    do { return try JSONDecoder().decode(TrainingInputs.self, from: data) } catch {
      throw FileError("\(url.path) is damaged (\(error)); move the folder aside (cxr run --retrain) to train it again")
    }
  }

  public func write(folder: URL) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(try enc.encode(self), to: folder.appendingPathComponent(TrainingInputs.fileName))
  }
}
