import Foundation
import Train
import Yams

/// A study's configuration: the YAML file, over the documented defaults, under
/// command-line `--set key=value` overrides (timm's order). Unknown keys and wrong types
/// are errors naming the key and the file; the resolved result is written beside every run.
public struct Config {
  public private(set) var root: ConfigValue
  /// Where the config came from (for messages and the resolved header).
  public let source: String
  /// path -> "file:line" for values that came from the file.
  private let origins: [String: String]

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
    var reader = YAMLReader(source: source)
    var user: ConfigValue
    do {
      if let node = try Yams.compose(yaml: text) { user = try reader.read(node, path: "") } else { user = .map([]) }
    } catch let e as ConfigError { throw e } catch let e as YamlError {
      throw ConfigError("\(source) is not valid YAML: \(e)")
    }
    if case .null = user { user = .map([]) }
    guard case .map = user else { throw ConfigError("\(source): the top level must be a mapping of keys") }
    var origins: [String: String] = [:]
    for (p, l) in reader.lines { origins[p] = "\(source):\(l)" }
    for o in overrides {
      guard let eq = o.firstIndex(of: "=") else {
        throw ConfigError("--set '\(o)' must look like key.path=value")
      }
      let path = String(o[..<eq]).trimmingCharacters(in: .whitespaces)
      try Config.assign(&user, path: path, value: ConfigValue.scalar(String(o[o.index(after: eq)...])), source: "--set \(o)")
      origins[path] = "--set \(o)"
    }
    let schema = ConfigSchema.study
    var resolved = try schema.validate(user, source: source, origins: origins)
    resolved.set("train", try Config.resolveTrain(resolved["train"] ?? .map([]), source: source))
    var cfg = Config(root: resolved, source: source, origins: origins)
    if let baseDir { cfg.resolvePaths(relativeTo: baseDir) }
    return cfg
  }

  /// The `train:` mapping checked by the Train layer's options (its keys and defaults live
  /// there, once) and written back resolved. The study's seed and device are set at the top
  /// level; bf16 and channels_last stay unset (automatic per device) unless given.
  static func resolveTrain(_ given: ConfigValue, source: String) throws -> ConfigValue {
    let plain = given.plain as? [String: Any] ?? [:]
    let options: TrainOptions
    do { options = try TrainOptions(settings: plain, origin: source) } catch let e as TrainError {
      throw ConfigError(e.message)
    }
    var settings = options.settings
    for key in ["seed", "device", "bf16", "channels_last"] where plain[key] == nil { settings[key] = nil }
    return ConfigValue(plain: settings)
  }

  /// The defaults with their comments: the documentation of every key.
  public static var documentedDefaults: String {
    var train = TrainOptions().settings
    for key in ["seed", "device", "bf16", "channels_last"] { train[key] = nil }
    return "# cxr config keys and defaults\n" + ConfigSchema.defaultsYAML
      + "\n# each item of `schemas`:\n" + ConfigSchema.schemaItemYAML
      + "\n# each item of `references`:\n" + ConfigSchema.referenceItemYAML
      + "\n# train: (the training loop; bf16 and channels_last default to on with CUDA, off on CPU;"
      + "\n# cudnn_benchmark: cuDNN's autotuner, used with CUDA only, ignored on CPU)\n"
      + ConfigValue.map([("train", ConfigValue(plain: train))]).yaml()
  }

  /// The resolved configuration as YAML, with a header saying where it came from.
  public func resolvedYAML() -> String {
    "# resolved cxr config (defaults <- \(source) <- --set)\n" + root.yaml()
  }

  // MARK: typed access (paths like "train.lr" or "schemas[0].name")

  public func value(_ path: String) -> ConfigValue? { Config.lookup(root, path) }

  public func string(_ path: String) throws -> String {
    guard case .string(let s)? = value(path) else { throw missing(path, "a string") }
    return s
  }
  public func optionalString(_ path: String) -> String? {
    if case .string(let s)? = value(path) { return s }
    return nil
  }
  public func int(_ path: String) throws -> Int {
    guard case .int(let i)? = value(path) else { throw missing(path, "an integer") }
    return i
  }
  public func double(_ path: String) throws -> Double {
    switch value(path) {
    case .double(let d)?: return d
    case .int(let i)?: return Double(i)
    default: throw missing(path, "a number")
    }
  }
  public func bool(_ path: String) throws -> Bool {
    guard case .bool(let b)? = value(path) else { throw missing(path, "a boolean") }
    return b
  }
  public func strings(_ path: String) throws -> [String] {
    guard case .list(let xs)? = value(path) else { throw missing(path, "a list of strings") }
    return try xs.map {
      switch $0 {
      case .string(let s): return s
      case .int(let i): return String(i)
      default: throw ConfigError("\(where_(path)): every item of '\(path)' must be a string")
      }
    }
  }
  public func doubles(_ path: String) throws -> [Double] {
    guard case .list(let xs)? = value(path) else { throw missing(path, "a list of numbers") }
    return try xs.map {
      switch $0 {
      case .double(let d): return d
      case .int(let i): return Double(i)
      default: throw ConfigError("\(where_(path)): every item of '\(path)' must be a number")
      }
    }
  }
  public func count(_ path: String) -> Int {
    if case .list(let xs)? = value(path) { return xs.count }
    return 0
  }
  /// A free-form string->value map (e.g. a schema's column mapping), in file order.
  public func pairs(_ path: String) -> [(String, ConfigValue)] {
    if case .map(let p)? = value(path) { return p }
    return []
  }

  /// "file:line" of a key when it came from the file, else the file.
  public func where_(_ path: String) -> String { origins[path] ?? source }

  private func missing(_ path: String, _ what: String) -> ConfigError {
    ConfigError("\(where_(path)): '\(path)' must be \(what) (got \(value(path)?.typeName ?? "nothing"))")
  }

  // MARK: internals

  static func lookup(_ v: ConfigValue, _ path: String) -> ConfigValue? {
    var cur: ConfigValue? = v
    for part in ConfigSchema.split(path) {
      switch part {
      case .key(let k): cur = cur?[k]
      case .index(let i):
        guard case .list(let xs)? = cur, i < xs.count else { return nil }
        cur = xs[i]
      }
    }
    return cur
  }

  static func assign(_ v: inout ConfigValue, path: String, value: ConfigValue, source: String) throws {
    let parts = ConfigSchema.split(path)
    guard !parts.isEmpty else { throw ConfigError("\(source): empty key") }
    func go(_ node: inout ConfigValue, _ i: Int) throws {
      if i == parts.count { node = value; return }
      switch parts[i] {
      case .key(let k):
        if case .null = node { node = .map([]) }
        guard case .map = node else { throw ConfigError("\(source): '\(path)' goes through a value that is not a mapping") }
        var child = node[k] ?? .null
        try go(&child, i + 1)
        node.set(k, child)
      case .index(let idx):
        guard case .list(var xs) = node, idx < xs.count else {
          throw ConfigError("\(source): '\(path)' names list item \(idx), which the config does not have")
        }
        try go(&xs[idx], i + 1)
        node = .list(xs)
      }
    }
    try go(&v, 0)
  }

  /// Makes relative paths absolute against the config file's folder.
  mutating func resolvePaths(relativeTo base: URL) {
    func fix(_ v: ConfigValue, _ path: String) -> ConfigValue {
      switch v {
      case .string(let s) where ConfigSchema.isPathKey(path) && !s.hasPrefix("/") && !s.isEmpty:
        return .string(base.appendingPathComponent(s).standardizedFileURL.path)
      case .map(let pairs): return .map(pairs.map { ($0.0, fix($0.1, ConfigPath.join(path, $0.0))) })
      case .list(let xs): return .list(xs.enumerated().map { fix($0.1, "\(path)[\($0.0)]") })
      default: return v
      }
    }
    root = fix(root, "")
  }
}
