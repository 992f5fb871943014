import Foundation
import Yams

/// The one way cxr reads a YAML settings file into a Codable type: the type's own default
/// instance (the only defaults there are) under the file under `--set key=value` overrides, in
/// timm's order, decoded by Yams' `YAMLDecoder`. Strict: an unknown key is an error with its
/// file:line and a did-you-mean; a wrong type or value names the key, where it came from (the
/// file's line, or the `--set` that gave it) and what is expected.
///
/// How: the defaults are encoded to a YAML node (every key, `null` for an unset optional), the
/// user's node is merged over it key by key (unknown keys are found here, with the user node's
/// mark), and the merged document is decoded; a `DecodingError`'s coding path is mapped back to
/// the origin of that key. A mapping whose default is empty is free-form (a column map).
public enum StrictYAML {
  /// Where each key's value came from: "file:line" or "--set key=value"; keys as `a.b[0].c`.
  public typealias Origins = [String: String]

  /// `itemDefaults`: for a list of mappings (generic path such as `schemas`), the default item
  /// every given item is merged over.
  public static func decode<T: Codable>(_ type: T.Type, defaults: T, itemDefaults: [String: Node] = [:], text: String,
                                        source: String, overrides: [String] = []) throws -> (value: T, origins: Origins) {
    var user: Node
    do { user = try Yams.compose(yaml: text) ?? Node.mapping(.init([])) } catch {
      throw UserError("\(source) is not valid YAML: \(error)")
    }
    if case .scalar(let s) = user, s.string.isEmpty || user.null != nil { user = .mapping(.init([])) }
    guard case .mapping = user else { throw UserError("\(source): the top level must be a mapping of keys") }
    var origins: Origins = [:]
    try record(user, path: "", source: source, into: &origins)
    for o in overrides {
      guard let eq = o.firstIndex(of: "=") else { throw UserError("--set '\(o)' must look like key.path=value") }
      let path = String(o[..<eq]).trimmingCharacters(in: .whitespaces)
      let text = String(o[o.index(after: eq)...])
      let value: Node
      do { value = try Yams.compose(yaml: text) ?? Node("", .implicit, .plain) } catch {
        throw UserError("--set \(o): '\(text)' is not a YAML value (\(error))")
      }
      try assign(&user, path: path, value: value, origin: "--set \(o)")
      for key in origins.keys where key == path || key.hasPrefix(path + ".") || key.hasPrefix(path + "[") { origins[key] = nil }
      var sub: Origins = [:]
      try record(value, path: path, source: "--set \(o)", into: &sub, setOrigin: "--set \(o)")
      origins.merge(sub) { $1 }
      origins[path] = "--set \(o)"
    }
    let defaultNode = try NodeEncoder.encode(defaults)
    let merged = try merge(defaultNode, user, path: "", itemDefaults: itemDefaults, origins: origins, source: source)
    let yaml = try Yams.serialize(node: merged)
    do {
      return (try YAMLDecoder().decode(T.self, from: yaml), origins)
    } catch let e as DecodingError {
      throw describe(e, user: user, origins: origins, source: source)
    }
  }

  /// "a.b[0].c" -> "a.b[].c"
  public static func generic(_ path: String) -> String {
    path.replacingOccurrences(of: #"\[\d+\]"#, with: "[]", options: .regularExpression)
  }

  public static func join(_ base: String, _ key: String) -> String { base.isEmpty ? key : "\(base).\(key)" }

  /// The origin of `path` or of the closest enclosing key that has one.
  public static func origin(_ path: String, _ origins: Origins, source: String) -> String {
    var p = path
    while !p.isEmpty {
      if let o = origins[p] { return o }
      if let i = p.lastIndex(where: { $0 == "." || $0 == "[" }) { p = String(p[..<i]) } else { break }
    }
    return source
  }

  // MARK: merging

  static func record(_ node: Node, path: String, source: String, into origins: inout Origins, setOrigin: String? = nil) throws {
    if !path.isEmpty { origins[path] = setOrigin ?? node.mark.map { "\(source):\($0.line)" } ?? source }
    switch node {
    case .mapping(let m):
      var seen = Set<String>()
      for (k, v) in m {
        guard let key = k.string else { throw UserError("\(source):\(k.mark?.line ?? 0): a key that is not text") }
        guard seen.insert(key).inserted else {
          throw UserError("\(source):\(k.mark?.line ?? 0): key '\(join(path, key))' appears twice")
        }
        try record(v, path: join(path, key), source: source, into: &origins, setOrigin: setOrigin)
        if setOrigin == nil, let line = k.mark?.line { origins[join(path, key)] = "\(source):\(line)" }
      }
    case .sequence(let s):
      for (i, v) in s.enumerated() { try record(v, path: "\(path)[\(i)]", source: source, into: &origins, setOrigin: setOrigin) }
    default: break
    }
  }

  enum Part { case key(String), index(Int) }
  static func split(_ path: String) -> [Part] {
    var parts: [Part] = []
    for seg in path.split(separator: ".") {
      var s = Substring(seg)
      if let b = s.firstIndex(of: "[") {
        if s[..<b].count > 0 { parts.append(.key(String(s[..<b]))) }
        s = s[b...]
        while s.hasPrefix("["), let e = s.firstIndex(of: "]") {
          if let i = Int(s[s.index(after: s.startIndex)..<e]) { parts.append(.index(i)) }
          s = s[s.index(after: e)...]
        }
      } else {
        parts.append(.key(String(s)))
      }
    }
    return parts
  }

  static func assign(_ root: inout Node, path: String, value: Node, origin: String) throws {
    let parts = split(path)
    guard !parts.isEmpty else { throw UserError("\(origin): empty key") }
    func go(_ node: inout Node, _ i: Int) throws {
      if i == parts.count { node = value; return }
      switch parts[i] {
      case .key(let k):
        if node.null != nil { node = .mapping(.init([])) }
        guard case .mapping(var m) = node else { throw UserError("\(origin): '\(path)' goes through a value that is not a mapping") }
        var child = m[k] ?? Node("null", .implicit, .plain)
        try go(&child, i + 1)
        m[k] = child
        node = .mapping(m)
      case .index(let idx):
        guard case .sequence(var s) = node, idx < s.count else {
          throw UserError("\(origin): '\(path)' names list item \(idx), which the config does not have")
        }
        var child = s[idx]
        try go(&child, i + 1)
        s[idx] = child
        node = .sequence(s)
      }
    }
    try go(&root, 0)
  }

  static func merge(_ d: Node, _ u: Node, path: String, itemDefaults: [String: Node], origins: Origins, source: String) throws -> Node {
    switch (d, u) {
    case (.mapping(let dm), .mapping(let um)):
      if dm.isEmpty { return u }  // free-form (a column or value map)
      let known = dm.compactMap { $0.key.string }
      for (k, _) in um {
        let key = k.string ?? ""
        guard known.contains(key) else {
          let p = join(path, key)
          let scope = path.isEmpty ? "at the top level" : "under '\(path)'"
          let near = closest(key, known).map { "did you mean '\(join(path, $0))'? " } ?? ""
          throw UserError("\(origins[p] ?? source): unknown key '\(p)'; \(near)known keys \(scope): \(known.joined(separator: ", "))")
        }
      }
      var pairs: [(Node, Node)] = []
      for (k, dv) in dm {
        let key = k.string ?? ""
        if let uv = um[key] {
          pairs.append((k, try merge(dv, uv, path: join(path, key), itemDefaults: itemDefaults, origins: origins, source: source)))
        } else {
          pairs.append((k, dv))
        }
      }
      return .mapping(.init(pairs))
    case (.mapping, _) where u.null != nil:
      return d
    case (.sequence, .sequence(let us)):
      guard let template = itemDefaults[generic(path)] else { return u }
      var items: [Node] = []
      for (i, x) in us.enumerated() {
        let p = "\(path)[\(i)]"
        guard case .mapping = x else {
          throw UserError("\(origins[p] ?? source): each item of '\(path)' must be a mapping of keys")
        }
        items.append(try merge(template, x, path: p, itemDefaults: itemDefaults, origins: origins, source: source))
      }
      return .sequence(.init(items))
    default:
      return u
    }
  }

  /// The known key nearest to a misspelt one (edit distance at most a third of its length).
  static func closest(_ key: String, _ known: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
      var row = Array(0...b.count)
      for (i, x) in a.enumerated() {
        var prev = row[0]
        row[0] = i + 1
        for (j, y) in b.enumerated() {
          let cur = row[j + 1]
          row[j + 1] = min(row[j + 1] + 1, row[j] + 1, prev + (x == y ? 0 : 1))
          prev = cur
        }
      }
      return row[b.count]
    }
    // A key that starts like a known one (batch -> batch_size, lr_max -> lr) is the likeliest.
    if let p = known.first(where: { $0.hasPrefix(key) || key.hasPrefix($0) }) { return p }
    let scored = known.map { ($0, distance(Array(key), Array($0))) }.min { $0.1 < $1.1 }
    guard let (best, d) = scored, d <= max(1, key.count / 3) else { return nil }
    return best
  }

  // MARK: errors

  static func pathText(_ codingPath: [CodingKey]) -> String {
    var s = ""
    for k in codingPath {
      if let i = k.intValue { s += "[\(i)]" } else { s = join(s, k.stringValue) }
    }
    return s
  }

  static func node(at path: String, in root: Node) -> Node? {
    var cur: Node? = root
    for part in split(path) {
      switch part {
      case .key(let k): cur = cur?.mapping?[k]
      case .index(let i):
        guard let s = cur?.sequence, i < s.count else { return nil }
        cur = s[i]
      }
    }
    return cur
  }

  static func kind(_ node: Node?) -> String {
    guard let node else { return "nothing" }
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .scalar(let s):
      if node.null != nil { return "null" }
      if s.style == .plain || s.style == .any {
        if node.bool != nil { return "a boolean (\(s.string))" }
        if node.int != nil { return "a whole number (\(s.string))" }
        if node.float != nil { return "a number (\(s.string))" }
      }
      return "text ('\(s.string)')"
    }
  }

  static func expected(_ type: Any.Type) -> String {
    switch type {
    case is String.Type, is String?.Type: return "text"
    case is Bool.Type, is Bool?.Type: return "true or false"
    case is Int.Type, is Int?.Type, is UInt64.Type, is Int64.Type, is Int32.Type, is UInt32.Type: return "a whole number"
    case is Double.Type, is Double?.Type, is Float.Type: return "a number"
    default:
      let name = "\(type)"
      if name.hasPrefix("Array") || name.hasPrefix("[") { return "a list" }
      if name.hasPrefix("Dictionary") { return "a mapping" }
      return "a single value (text or a number)"
    }
  }

  static func describe(_ e: DecodingError, user: Node, origins: Origins, source: String) -> UserError {
    switch e {
    case let .typeMismatch(type, ctx):
      let p = pathText(ctx.codingPath)
      let found = node(at: p, in: user)
      // A list or mapping where one value belongs (a path given as a list would otherwise read as "not set").
      let wantsOne = !(type is [Any].Type) && !"\(type)".hasPrefix("Array") && !"\(type)".hasPrefix("Dictionary")
      if let found, found.scalar == nil, wantsOne {
        return UserError("\(origin(p, origins, source: source)): '\(p)' must be a single value (text or a number), not \(kind(found))")
      }
      return UserError("\(origin(p, origins, source: source)): '\(p)' must be \(expected(type)), not \(kind(found))")
    case let .valueNotFound(type, ctx):
      let p = pathText(ctx.codingPath)
      return UserError("\(origin(p, origins, source: source)): '\(p)' cannot be null; give \(expected(type))")
    case let .keyNotFound(key, ctx):
      let p = join(pathText(ctx.codingPath), key.stringValue)
      return UserError("\(origin(pathText(ctx.codingPath), origins, source: source)): '\(p)' is missing")
    case let .dataCorrupted(ctx):
      let p = pathText(ctx.codingPath)
      return UserError("\(origin(p, origins, source: source)): \(p) \(ctx.debugDescription)")
    @unknown default:
      return UserError("\(source): \(e)")
    }
  }
}

/// A configuration value that must be one of a few names: decoding anything else is an error
/// that lists them (`train.schedule is 'cosine'; use constant or warmup_cosine`).
public protocol ConfigChoice: RawRepresentable, CaseIterable, Codable where RawValue == String {}

extension ConfigChoice {
  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    let s = try c.decode(String.self)
    guard let v = Self(rawValue: s) else {
      let names = Self.allCases.map(\.rawValue)
      let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
      throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "is '\(s)'; use \(list)"))
    }
    self = v
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(rawValue)
  }
}
