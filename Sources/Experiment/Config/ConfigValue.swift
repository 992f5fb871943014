import Foundation
import Yams

/// A configuration value: what a YAML document holds, with map order kept so the
/// resolved config reads like the file the user wrote.
public indirect enum ConfigValue: Equatable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case list([ConfigValue])
  case map([(String, ConfigValue)])

  public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.int(x), .int(y)): return x == y
    case let (.double(x), .double(y)): return x == y
    case let (.string(x), .string(y)): return x == y
    case let (.list(x), .list(y)): return x == y
    case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  /// The name of the type, for error messages.
  public var typeName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .int: return "an integer"
    case .double: return "a number"
    case .string: return "a string"
    case .list: return "a list"
    case .map: return "a mapping"
    }
  }

  public subscript(key: String) -> ConfigValue? {
    guard case .map(let pairs) = self else { return nil }
    return pairs.first { $0.0 == key }?.1
  }

  /// Sets `key` in a map, keeping the position of an existing key.
  mutating func set(_ key: String, _ value: ConfigValue) {
    guard case .map(var pairs) = self else { return }
    if let i = pairs.firstIndex(where: { $0.0 == key }) { pairs[i].1 = value } else { pairs.append((key, value)) }
    self = .map(pairs)
  }

  /// Plain Foundation values (String, Int, Double, Bool, NSNull, arrays, dictionaries), for
  /// layers that read their own settings.
  public var plain: Any {
    switch self {
    case .null: return NSNull()
    case .bool(let b): return b
    case .int(let i): return i
    case .double(let d): return d
    case .string(let s): return s
    case .list(let xs): return xs.map(\.plain)
    case .map(let pairs): return Dictionary(pairs.map { ($0.0, $0.1.plain) }, uniquingKeysWith: { a, _ in a })
    }
  }

  /// The inverse of `plain`, with keys sorted (for writing resolved settings).
  public init(plain: Any) {
    switch plain {
    case is NSNull: self = .null
    case let b as Bool: self = .bool(b)
    case let i as Int: self = .int(i)
    case let d as Double: self = .double(d)
    case let s as String: self = .string(s)
    case let xs as [Any]: self = .list(xs.map(ConfigValue.init(plain:)))
    case let m as [String: Any]: self = .map(m.keys.sorted().map { ($0, ConfigValue(plain: m[$0]!)) })
    default: self = .string("\(plain)")
    }
  }

  /// Parses a scalar the way YAML 1.2's core schema does (used for `--set key=value`).
  public static func scalar(_ s: String) -> ConfigValue {
    let t = s.trimmingCharacters(in: .whitespaces)
    if t.isEmpty || t == "null" || t == "~" { return .null }
    if t == "true" || t == "True" { return .bool(true) }
    if t == "false" || t == "False" { return .bool(false) }
    if let i = Int(t) { return .int(i) }
    if let d = Double(t), t.rangeOfCharacter(from: .letters.subtracting(CharacterSet(charactersIn: "eE"))) == nil { return .double(d) }
    if t.count >= 2, (t.first == "\"" && t.last == "\"") || (t.first == "'" && t.last == "'") {
      return .string(String(t.dropFirst().dropLast()))
    }
    if t.hasPrefix("["), t.hasSuffix("]") {
      let inner = t.dropFirst().dropLast()
      if inner.trimmingCharacters(in: .whitespaces).isEmpty { return .list([]) }
      return .list(inner.split(separator: ",").map { scalar(String($0)) })
    }
    return .string(t)
  }

  /// YAML text of this value (block style, stable order).
  public func yaml(indent: Int = 0) -> String {
    var out = ""
    emit(into: &out, indent: indent)
    return out
  }

  private func inline() -> String? {
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d):
      if d == d.rounded(), Swift.abs(d) < 1e15 { return String(format: "%.1f", d) }
      return "\(d)"
    case .string(let s): return ConfigValue.quoteIfNeeded(s)
    case .list(let xs):
      if xs.isEmpty { return "[]" }
      if xs.allSatisfy({ if case .map = $0 { return false }; if case .list = $0 { return false }; return true }) {
        return "[" + xs.map { $0.inline()! }.joined(separator: ", ") + "]"
      }
      return nil
    case .map(let pairs): return pairs.isEmpty ? "{}" : nil
    }
  }

  private func emit(into out: inout String, indent: Int) {
    let pad = String(repeating: " ", count: indent)
    switch self {
    case .map(let pairs):
      for (k, v) in pairs {
        if let s = v.inline() { out += "\(pad)\(ConfigValue.quoteIfNeeded(k)): \(s)\n" } else {
          out += "\(pad)\(ConfigValue.quoteIfNeeded(k)):\n"
          v.emit(into: &out, indent: indent + 2)
        }
      }
    case .list(let xs):
      for x in xs {
        if let s = x.inline() { out += "\(pad)- \(s)\n"; continue }
        var inner = ""
        x.emit(into: &inner, indent: indent + 2)
        // put the first line after "- "
        let trimmed = inner.dropFirst(indent + 2)
        out += "\(pad)- \(trimmed)"
      }
    default:
      out += pad + (inline() ?? "") + "\n"
    }
  }

  static func quoteIfNeeded(_ s: String) -> String {
    let special = CharacterSet(charactersIn: ":#{}[],&*!|>'\"%@`\n")
    let reserved = ["", "null", "true", "false", "yes", "no", "on", "off", "~"]
    if s.rangeOfCharacter(from: special) != nil || reserved.contains(s.lowercased()) || Double(s) != nil
      || s.hasPrefix(" ") || s.hasSuffix(" ") || s.hasPrefix("-") {
      let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n")
      return "\"\(escaped)\""
    }
    return s
  }
}

/// Converts a Yams node into a value, recording each path's line for error messages.
struct YAMLReader {
  let source: String
  var lines: [String: Int] = [:]

  mutating func read(_ node: Node, path: String) throws -> ConfigValue {
    if let m = node.mark { lines[path] = m.line }
    switch node {
    case .scalar(let s):
      if s.style == .plain {
        if node.null != nil { return .null }
        if let b = node.bool { return .bool(b) }
        if let i = node.int { return .int(i) }
        if let d = node.float { return .double(d) }
      }
      return .string(s.string)
    case .sequence(let seq):
      var xs: [ConfigValue] = []
      for (i, n) in seq.enumerated() { xs.append(try read(n, path: "\(path)[\(i)]")) }
      return .list(xs)
    case .mapping(let map):
      var pairs: [(String, ConfigValue)] = []
      for (k, v) in map {
        guard let key = k.string else { throw ConfigError("\(source): a mapping key at line \(k.mark?.line ?? 0) is not a string") }
        if pairs.contains(where: { $0.0 == key }) {
          throw ConfigError("\(source):\(k.mark?.line ?? 0): key '\(ConfigPath.join(path, key))' appears twice")
        }
        pairs.append((key, try read(v, path: ConfigPath.join(path, key))))
      }
      return .map(pairs)
    }
  }
}

enum ConfigPath {
  static func join(_ base: String, _ key: String) -> String { base.isEmpty ? key : "\(base).\(key)" }
}

/// A configuration error: names the key, the file (and line) and what is expected.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
