import Common
import Foundation
import Torch
import Train
import Yams

/// Errors a user can cause in a config: the file and line (or the `--set` that gave the value),
/// the key, and what is expected.
public typealias ConfigError = UserError

/// A study's configuration: the typed `StudyConfig` read strictly from a YAML file over its
/// defaults, under command-line `--set key=value` overrides (timm's order), with where each key
/// came from for messages. The resolved result is written beside every run.
public struct Config: Sendable {
  public let settings: StudyConfig
  /// Where the config came from (for messages and the resolved header).
  public let source: String
  /// path -> "file:line" or "--set key=value".
  let origins: [String: String]

  /// Loads `file`, applies `overrides` (`key.path=value`, `list[0].key=value`), validates.
  public static func load(_ file: URL, overrides: [String] = []) throws -> Config {
    let text: String
    do { text = try String(contentsOf: file, encoding: .utf8) } catch {
      throw ConfigError("cannot read config \(file.path): \(error.localizedDescription)")
    }
    // Relative paths are relative to where cxr runs, like any command-line tool's.
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
    return try parse(text, source: file.path, overrides: overrides, baseDir: cwd)
  }

  /// Parses YAML text. Relative paths in path-valued keys resolve against `baseDir` when given.
  public static func parse(_ text: String, source: String = "<config>", overrides: [String] = [],
                           baseDir: URL? = nil) throws -> Config {
    let items = try StudyConfig.itemDefaults.mapValues { try NodeEncoder.encode($0) }
    var (settings, origins) = try StrictYAML.decode(StudyConfig.self, defaults: StudyConfig(), itemDefaults: items, text: text,
                                                   source: source, overrides: overrides)
    func at(_ key: String) -> String { StrictYAML.origin(key, origins, source: source) }
    for (list, items) in [("schemas", settings.schemas), ("references", settings.references)] {
      for (i, item) in items.enumerated() {
        let derived = list == "schemas" && (item.derive.isSet || item.sweep.isSet)
        for (key, value) in [("name", item.name), ("file", item.file)] where value == nil && (key == "name" || (list == "schemas" && !derived)) {
          throw ConfigError("\(at("\(list)[\(i)]")): item \(i) of '\(list)' needs '\(key)'")
        }
      }
    }
    try settings.expandSweeps(at: at)
    try settings.checkDerived(at: at)
    if settings.seed < 0 { throw ConfigError("\(at("seed")): 'seed' must be >= 0") }
    if settings.findings.isEmpty { throw ConfigError("\(at("findings")): 'findings' needs at least one finding") }
    // The device decides what bf16 may be; `auto` is checked again when the study knows the device.
    var train = settings.train
    train.device = (try? Device(parsing: settings.device)) ?? .cuda(0)
    do { try train.validate() } catch let e as TrainError {
      throw ConfigError("\(e.key.map(at) ?? source): \(e.message)")
    }
    if let baseDir { settings.resolvePaths(relativeTo: baseDir) }
    return Config(settings: settings, source: source, origins: origins)
  }

  /// "file:line" of a key when it came from the file, the `--set` that gave it, else the file.
  public func where_(_ path: String) -> String { StrictYAML.origin(path, origins, source: source) }

  /// The resolved configuration as YAML (every key, unset optionals as null), with a header
  /// saying where it came from; `Config.parse` reads it back to the same settings.
  public func resolvedYAML() -> String {
    let body = (try? NodeEncoder.encode(settings)).flatMap { try? Yams.serialize(node: $0) } ?? ""
    return "# resolved cxr config (defaults <- \(source) <- --set)\n" + body
  }

  /// Every key with its default and its meaning, generated from the defaults: itself a valid
  /// config (`cxr config defaults > d.yaml && cxr config resolve d.yaml`).
  public static var documentedDefaults: String {
    let node = (try? NodeEncoder.encode(StudyConfig())) ?? Node.mapping(.init([]))
    let item = (try? NodeEncoder.encode(StudyConfig.LabelItem())) ?? Node.mapping(.init([]))
    var out = "# cxr config keys and defaults (generated from the defaults; a valid config itself)\n"
    emit(node, path: "", indent: 0, into: &out)
    out += "\n# each item of `schemas` and `references` (name and file required for a schema; test_file is for schemas):\n"
    var example = ""
    emit(item, path: "schemas[]", indent: 0, into: &example)
    out += example.split(separator: "\n").map { "#   " + $0 }.joined(separator: "\n") + "\n"
    return out
  }

  static func inline(_ n: Node) -> String? {
    switch n {
    case .scalar(let s): return s.style == .doubleQuoted ? "\"\(s.string)\"" : s.string
    case .sequence(let seq): return seq.allSatisfy { $0.scalar != nil } ? "[" + seq.compactMap(inline).joined(separator: ", ") + "]" : nil
    case .mapping(let m): return m.isEmpty ? "{}" : nil
    }
  }

  static func emit(_ node: Node, path: String, indent: Int, into out: inout String) {
    guard case .mapping(let m) = node else { return }
    let pad = String(repeating: " ", count: indent)
    for (k, v) in m {
      let key = k.string ?? ""
      let p = StrictYAML.join(path, key)
      let doc = StudyConfig.documentation[StrictYAML.generic(p).replacingOccurrences(of: "schemas[].", with: "schemas.")]
        ?? StudyConfig.documentation[p] ?? documentationOfItem[key]
      let comment = doc.map { "  # \($0)" } ?? ""
      if let s = inline(v) {
        out += "\(pad)\(key): \(s)\(comment)\n"
      } else {
        out += "\(pad)\(key):\(comment)\n"
        emit(v, path: p, indent: indent + 2, into: &out)
      }
    }
  }

  static let documentationOfItem: [String: String] = [
    "name": "required: names the run folder and the reference",
    "file": "required for a schema: its labels (CheXpert layout, or mapped)",
    "format": "chexpert | mapped | probability (P(positive) per finding: soft targets)",
    "uncertain": "ones (the study) | zeros | ignore",
    "id_column": "mapped and probability files: the id column (default: index for mapped, id for probability)",
    "columns": "mapped files: finding -> column",
    "values": "mapped files: text -> 1 / 0 / -1",
    "test_file": "the same labeller applied to the test-set reports: becomes a reference",
    "derive": "instead of file: labels made from other schemas (see cxr config defaults)",
    "sweep": "a grid of derive.from schemas",
  ]
}

extension StudyConfig {
  /// Makes relative paths absolute against `base`.
  mutating func resolvePaths(relativeTo base: URL) {
    func fix(_ p: inout String?) {
      if let s = p, !s.hasPrefix("/"), !s.isEmpty { p = base.appendingPathComponent(s).standardizedFileURL.path }
    }
    var o: String? = out
    fix(&o)
    out = o!
    fix(&trainData.root); fix(&trainData.metadata); fix(&trainData.splitFile); fix(&trainData.manifest)
    fix(&testData.root); fix(&testData.manifest)
    fix(&split.file); fix(&model.pretrained); fix(&evaluate.subgroups.file)
    for i in schemas.indices { fix(&schemas[i].file); fix(&schemas[i].testFile) }
    for i in references.indices { fix(&references[i].file) }
  }
}
