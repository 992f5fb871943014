import Foundation
import Yams

/// Encodes a Codable value into a YAML node, writing `null` for an optional that is not set
/// (synthesized `Encodable` would leave the key out, and then the strict decoder could not
/// tell an unset optional key from an unknown one). Strings that YAML would read as another
/// type (`"1"`, `"true"`, `"null"`, `"a: b"`) are double-quoted; numbers are written so that
/// they read back to the same value.
public enum NodeEncoder {
  public static func encode<T: Encodable>(_ value: T) throws -> Node {
    let e = Encoder_(path: [])
    try value.encode(to: e)
    return e.box.node ?? Node("null", .implicit, .plain)
  }

  /// Leaf keys (`a.b[0].c`) and their values as YAML text, e.g. for fingerprints and diffs.
  public static func flatten<T: Encodable>(_ value: T, prefix: String = "") throws -> [String: String] {
    var out: [String: String] = [:]
    func walk(_ n: Node, _ path: String) {
      switch n {
      case .mapping(let m):
        if m.isEmpty { out[path] = "{}" }
        for (k, v) in m { walk(v, StrictYAML.join(path, k.string ?? "")) }
      case .sequence(let s):
        if s.allSatisfy({ $0.scalar != nil }) {
          out[path] = "[" + s.map { $0.scalar!.string }.joined(separator: ", ") + "]"
        } else {
          for (i, v) in s.enumerated() { walk(v, "\(path)[\(i)]") }
        }
      case .scalar(let s): out[path] = s.string
      }
    }
    walk(try encode(value), prefix)
    return out
  }

  static func scalar(_ s: String) -> Node {
    let special = CharacterSet(charactersIn: ":#{}[],&*!|>'\"%@`\n")
    let reserved = ["", "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"]
    let needsQuotes = s.rangeOfCharacter(from: special) != nil || reserved.contains(s.lowercased()) || Double(s) != nil
      || Int(s) != nil || s.hasPrefix(" ") || s.hasSuffix(" ") || s.hasPrefix("-") || s.hasPrefix(".")
    return Node(s, .implicit, needsQuotes ? .doubleQuoted : .plain)
  }

  static func number(_ d: Double) -> Node {
    if d.isNaN { return Node(".nan", .implicit, .plain) }
    if d.isInfinite { return Node(d > 0 ? ".inf" : "-.inf", .implicit, .plain) }
    // YAML 1.1 readers (PyYAML among them) take a float only with a dot: 1e-05 -> 1.0e-05.
    var text = "\(d)"
    if !text.contains(".") {
      if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) { text.insert(contentsOf: ".0", at: e) } else { text += ".0" }
    }
    return Node(text, .implicit, .plain)
  }

  final class Box { var node: Node? }

  struct Encoder_: Swift.Encoder {
    var codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] = [:]
    let box = Box()
    init(path: [CodingKey]) { codingPath = path }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
      let m = MapBox()
      box.node = .mapping(.init([]))
      let parent = box
      m.onChange = { parent.node = .mapping(.init(m.pairs)) }
      return KeyedEncodingContainer(Keyed<Key>(codingPath: codingPath, map: m))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer {
      let s = SeqBox()
      box.node = .sequence(.init([]))
      let parent = box
      s.onChange = { parent.node = .sequence(.init(s.items)) }
      return Unkeyed(codingPath: codingPath, seq: s)
    }
    func singleValueContainer() -> SingleValueEncodingContainer { Single(codingPath: codingPath, box: box) }
  }

  final class MapBox {
    var pairs: [(Node, Node)] = []
    var onChange: () -> Void = {}
    func set(_ key: String, _ n: Node) {
      if let i = pairs.firstIndex(where: { $0.0.string == key }) { pairs[i].1 = n } else { pairs.append((Node(key), n)) }
      onChange()
    }
  }
  final class SeqBox {
    var items: [Node] = []
    var onChange: () -> Void = {}
  }

  static func encodeValue<T: Encodable>(_ value: T, path: [CodingKey]) throws -> Node {
    switch value {
    case let s as String: return scalar(s)
    case let d as Double: return number(d)
    case let f as Float: return number(Double(f))
    case let b as Bool: return Node(b ? "true" : "false", .implicit, .plain)
    case let i as Int: return Node(String(i), .implicit, .plain)
    case let i as UInt64: return Node(String(i), .implicit, .plain)
    case let i as Int64: return Node(String(i), .implicit, .plain)
    case let i as Int32: return Node(String(i), .implicit, .plain)
    default:
      let e = Encoder_(path: path)
      try value.encode(to: e)
      return e.box.node ?? Node("null", .implicit, .plain)
    }
  }

  struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    var codingPath: [CodingKey]
    let map: MapBox
    mutating func encodeNil(forKey key: Key) throws { map.set(key.stringValue, Node("null", .implicit, .plain)) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
      map.set(key.stringValue, try NodeEncoder.encodeValue(value, path: codingPath + [key]))
    }
    // An unset optional is written as null, so its key is known.
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws {
      if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
      let e = Encoder_(path: codingPath + [key])
      let c = e.container(keyedBy: NestedKey.self)
      let m = map
      let name = key.stringValue
      e.box.node.map { m.set(name, $0) }
      return c
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
      let e = Encoder_(path: codingPath + [key])
      return e.unkeyedContainer()
    }
    mutating func superEncoder() -> Swift.Encoder { Encoder_(path: codingPath) }
    mutating func superEncoder(forKey key: Key) -> Swift.Encoder { Encoder_(path: codingPath + [key]) }
  }

  struct IndexKey: CodingKey {
    var stringValue: String { "\(intValue!)" }
    var intValue: Int?
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
  }

  struct Unkeyed: UnkeyedEncodingContainer {
    var codingPath: [CodingKey]
    let seq: SeqBox
    var count: Int { seq.items.count }
    mutating func encodeNil() throws { seq.items.append(Node("null", .implicit, .plain)); seq.onChange() }
    mutating func encode<T: Encodable>(_ value: T) throws {
      seq.items.append(try NodeEncoder.encodeValue(value, path: codingPath + [IndexKey(count)]))
      seq.onChange()
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
      Encoder_(path: codingPath).container(keyedBy: NestedKey.self)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer { Encoder_(path: codingPath).unkeyedContainer() }
    mutating func superEncoder() -> Swift.Encoder { Encoder_(path: codingPath) }
  }

  struct Single: SingleValueEncodingContainer {
    var codingPath: [CodingKey]
    let box: Box
    mutating func encodeNil() throws { box.node = Node("null", .implicit, .plain) }
    mutating func encode<T: Encodable>(_ value: T) throws { box.node = try NodeEncoder.encodeValue(value, path: codingPath) }
  }
}
