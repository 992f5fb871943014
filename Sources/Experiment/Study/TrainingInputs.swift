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

  /// The inputs of schema `name`'s training, from the resolved study config.
  public init(study: Study, schema name: String) throws {
    let c = study.config
    var v: [String: String] = [:]
    func add(_ path: String, _ value: ConfigValue?) {
      guard let value else { v[path] = "null"; return }
      if case .map(let pairs) = value {
        for (k, x) in pairs { add(ConfigPath.join(path, k), x) }
      } else {
        v[path] = TrainingInputs.text(value)
      }
    }
    for section in ["seed", "findings", "train_data", "split", "model"] { add(section, c.value(section)) }
    add("preprocess.size", c.value("preprocess.size"))
    add("preprocess.cache", c.value("preprocess.cache"))
    add("loader.batch_size", c.value("loader.batch_size"))
    for (k, x) in c.pairs("train") where !TrainingInputs.bookkeepingTrainKeys.contains(k) { add("train.\(k)", x) }
    // The schema by its name (not its position in the list), without its test-set file.
    let i = try study.schemaIndex(name)
    for (k, x) in c.pairs("schemas[\(i)]") where k != "test_file" { add("schema.\(k)", x) }
    // Files whose content the weights depend on.
    func file(_ key: String, _ path: String?) {
      guard let path else { return }
      v["file \(key)"] = Fingerprint.file(URL(fileURLWithPath: path))
    }
    file("schema.file", c.optionalString("schemas[\(i)].file"))
    file("train_data.metadata", c.optionalString("train_data.metadata"))
    file("train_data.manifest", c.optionalString("train_data.manifest"))
    file("split.file", c.optionalString("split.file"))
    file("model.pretrained", c.optionalString("model.pretrained"))
    if c.optionalString("train_data.metadata") == nil, let root = c.optionalString("train_data.root") {
      for n in ["mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv"] {
        let u = URL(fileURLWithPath: root).appendingPathComponent(n)
        if FileManager.default.fileExists(atPath: u.path) { v["file train_data.root/\(n)"] = Fingerprint.file(u); break }
      }
    }
    values = v
  }

  static func text(_ v: ConfigValue) -> String {
    switch v {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return "\(d)"
    case .string(let s): return s
    case .list(let xs): return "[" + xs.map(text).joined(separator: ", ") + "]"
    case .map(let pairs): return "{" + pairs.map { "\($0.0): \(text($0.1))" }.joined(separator: ", ") + "}"
    }
  }

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
      return "\(key): \(old ?? "(not set)") -> \(new ?? "(not set)")"
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
