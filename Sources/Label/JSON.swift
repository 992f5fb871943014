import Foundation

/// A JSON value whose objects keep their key order. The order matters on the wire: servers that
/// constrain decoding with a JSON schema (vLLM, llama.cpp) generate properties in schema order,
/// which is how a chain-of-thought schema makes the model reason before it answers.
public indirect enum JSONValue: Equatable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([(String, JSONValue)])

  public static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.number(x), .number(y)): return x == y
    case let (.string(x), .string(y)): return x == y
    case let (.array(x), .array(y)): return x == y
    case let (.object(x), .object(y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  /// Compact serialization (no spaces), keys in insertion order.
  public var serialized: String { String(decoding: bytes, as: UTF8.self) }

  /// The serialization as UTF-8 bytes (what goes on the wire and into the JSONL file).
  public var bytes: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(256)
    write(to: &out)
    return out
  }

  func write(to out: inout [UInt8]) {
    switch self {
    case .null: out.append(contentsOf: "null".utf8)
    case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
    case .number(let d): JSONValue.writeNumber(d, to: &out)
    case .string(let s): JSONValue.writeString(s, to: &out)
    case .array(let a):
      out.append(UInt8(ascii: "["))
      for (i, v) in a.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        v.write(to: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .object(let o):
      out.append(UInt8(ascii: "{"))
      for (i, (k, v)) in o.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        JSONValue.writeString(k, to: &out)
        out.append(UInt8(ascii: ":"))
        v.write(to: &out)
      }
      out.append(UInt8(ascii: "}"))
    }
  }

  /// A number as `.number(d)` serializes (an integral value without a fraction), without making
  /// the value (every case of this indirect enum is a heap box).
  static func writeNumber(_ d: Double, to out: inout [UInt8]) {
    if d.isFinite, d == d.rounded(), abs(d) < 1e15 { writeInteger(Int64(d), to: &out) } else { out.append(contentsOf: String(d).utf8) }
  }

  /// The decimal digits of `n` (what `String(n)` spells), without making a String.
  static func writeInteger(_ n: Int64, to out: inout [UInt8]) {
    if n < 0 { out.append(UInt8(ascii: "-")) }
    var m = n.magnitude
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for the 20 digits of any Int64
    withUnsafeMutableBytes(of: &digits) { raw in
      var i = raw.count
      repeat {
        i -= 1
        raw[i] = UInt8(ascii: "0") &+ UInt8(m % 10)
        m /= 10
      } while m > 0
      out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[i...]))
    }
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  /// Escapes over UTF-8 bytes: multi-byte sequences pass through unchanged, which is valid JSON
  /// and much cheaper than walking unicode scalars (prompts are kilobytes, sent per request).
  /// Runs that need no escape are found eight bytes at a time and copied whole.
  static func writeString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var s = s
    s.withUTF8 { buf in
      let raw = UnsafeRawBufferPointer(buf)
      let n = buf.count
      var runStart = 0
      var i = 0
      while i < n {
        while i + 8 <= n, !needsEscape(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
        guard i < n else { break }
        let c = buf[i]
        i += 1
        guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
        if i - 1 > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<(i - 1)])) }
        runStart = i
        out.append(UInt8(ascii: "\\"))
        switch c {
        case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
          out.append(contentsOf: "u00".utf8)
          out.append(hexDigits[Int(c >> 4)])
          out.append(hexDigits[Int(c & 0xF)])
        }
      }
      if n > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<n])) }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// Whether any of the eight bytes in `w` is below 0x20, a quote or a backslash (the classic
  /// "has a zero byte" and "has a byte less than n" tests: exact as yes/no answers).
  @inline(__always)
  static func needsEscape(_ w: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
    let control = (w &- ones &* 0x20) & ~w & highs
    let q = w ^ (ones &* UInt64(UInt8(ascii: "\"")))
    let quote = (q &- ones) & ~q & highs
    let b = w ^ (ones &* UInt64(UInt8(ascii: "\\")))
    let backslash = (b &- ones) & ~b & highs
    return (control | quote | backslash) != 0
  }

  /// Parses JSON text; nil when it is not JSON. Objects read this way keep no key order (the
  /// decoder does not report it): parsing is only for reading answers, where order carries none.
  public static func parse(_ text: String) -> JSONValue? {
    try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
  }

  /// The value under `key` of an object (the last one if the key repeats); nil otherwise.
  public subscript(key: String) -> JSONValue? {
    guard case .object(let o) = self else { return nil }
    return o.last(where: { $0.0 == key })?.1
  }
  /// The members of an object; nil for anything else.
  public var members: [(String, JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }
  public var string: String? { if case .string(let s) = self { return s } else { return nil } }
  public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
  public var int: Int? {
    if case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 { return Int(d) } else { return nil }
  }
}

/// Reading any JSON (free-form parts of a message, such as a model's answer object).
extension JSONValue: Decodable {
  public init(from decoder: Decoder) throws {
    if let c = try? decoder.container(keyedBy: AnyKey.self) {
      self = .object(try c.allKeys.map { ($0.stringValue, try c.decode(JSONValue.self, forKey: $0)) })
      return
    }
    if var c = try? decoder.unkeyedContainer() {
      var items: [JSONValue] = []
      while !c.isAtEnd { items.append(try c.decode(JSONValue.self)) }
      self = .array(items)
      return
    }
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let d = try? c.decode(Double.self) {
      self = .number(d)
    } else { self = .string(try c.decode(String.self)) }
  }

  private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }
}

extension Array where Element == UInt8 {
  /// Appends a literal's bytes as they are (a String's UTF8View is walked through its generic
  /// `append(contentsOf:)`, with a retain and release: a few dozen times per answer).
  mutating func append(literal s: StaticString) {
    append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
  }
}
