/// A strict reader for the small JSON documents read once per answer (the chat completion body,
/// the answer object), for the common case only: ASCII text, no exponents or long numbers, no
/// repeated keys, little nesting. Anything else gives nil and the caller asks JSONDecoder, as it
/// always did; so for every document read here JSONDecoder would read the same values. It is a
/// fraction of JSONDecoder's cost (which builds a map of the document, then decodes through
/// generic containers with a dynamic cast per value: a tenth of the client's CPU per request).
enum FastJSON {
  case null
  case bool(Bool)
  /// A number; `int` is its value when it is a plain integer (no fraction), else nil.
  case number(int: Int?)
  case string(String)
  case array([FastJSON])
  case object([(String, FastJSON)])

  /// The document in `bytes`, or nil when it is not JSON or not of the kind read here.
  static func parse(_ bytes: UnsafeRawBufferPointer) -> FastJSON? {
    var reader = Reader(bytes: bytes)
    reader.skipSpace()
    guard let value = reader.value(depth: 0) else { return nil }
    reader.skipSpace()
    return reader.at == bytes.count ? value : nil
  }

  static func parse(_ text: String) -> FastJSON? {
    var text = text
    return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
  }

  /// The members of an object; nil for anything else.
  var members: [(String, FastJSON)]? { if case .object(let m) = self { return m } else { return nil } }

  /// The value under `key` of an object's members (keys are unique: `parse` checked).
  static func member(_ members: [(String, FastJSON)], _ key: String) -> FastJSON? {
    members.first(where: { $0.0 == key })?.1
  }

  private struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    static let maxDepth = 32
    static let maxMembers = 64

    mutating func skipSpace() {
      while at < bytes.count {
        let c = bytes[at]
        guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
        at += 1
      }
    }

    mutating func value(depth: Int) -> FastJSON? {
      guard depth < Reader.maxDepth, at < bytes.count else { return nil }
      switch bytes[at] {
      case UInt8(ascii: "{"): return object(depth: depth)
      case UInt8(ascii: "["): return array(depth: depth)
      case UInt8(ascii: "\""): return string().map { .string($0) }
      case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
      case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
      case UInt8(ascii: "n"): return literal("null") ? .null : nil
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
      default: return nil
      }
    }

    mutating func literal(_ word: StaticString) -> Bool {
      let n = word.utf8CodeUnitCount
      guard at + n <= bytes.count else { return false }
      let w = word.utf8Start
      for k in 0..<n where bytes[at + k] != w[k] { return false }
      at += n
      return true
    }

    mutating func object(depth: Int) -> FastJSON? {
      at += 1  // {
      skipSpace()
      var members: [(String, FastJSON)] = []
      members.reserveCapacity(8)  // the objects read here have 2 to 8 members: one allocation, not one per doubling
      if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
      while true {
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\""), let key = string() else { return nil }
        skipSpace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { return nil }
        at += 1
        skipSpace()
        guard let v = value(depth: depth + 1) else { return nil }
        // A repeated key: which one JSONDecoder keeps is its business.
        guard members.count < Reader.maxMembers, !members.contains(where: { $0.0 == key }) else { return nil }
        members.append((key, v))
        skipSpace()
        guard at < bytes.count else { return nil }
        if bytes[at] == UInt8(ascii: ",") { at += 1; skipSpace(); continue }
        guard bytes[at] == UInt8(ascii: "}") else { return nil }
        at += 1
        return .object(members)
      }
    }

    mutating func array(depth: Int) -> FastJSON? {
      at += 1  // [
      skipSpace()
      var items: [FastJSON] = []
      if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
      while true {
        guard let v = value(depth: depth + 1) else { return nil }
        items.append(v)
        skipSpace()
        guard at < bytes.count else { return nil }
        if bytes[at] == UInt8(ascii: ",") { at += 1; skipSpace(); continue }
        guard bytes[at] == UInt8(ascii: "]") else { return nil }
        at += 1
        return .array(items)
      }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 15 digits; an exponent is not read here.
    mutating func number() -> FastJSON? {
      var negative = false
      if bytes[at] == UInt8(ascii: "-") { negative = true; at += 1 }
      var digits = 0
      var value = 0
      let first = at
      while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") {
        value = value * 10 + Int(bytes[at] - UInt8(ascii: "0"))
        digits += 1
        at += 1
        guard digits <= 15 else { return nil }
      }
      guard digits > 0, !(digits > 1 && bytes[first] == UInt8(ascii: "0")) else { return nil }
      var integer = true
      if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
        at += 1
        integer = false
        var fraction = 0
        while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") {
          fraction += 1
          at += 1
          guard digits + fraction <= 15 else { return nil }
        }
        guard fraction > 0 else { return nil }
      }
      if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") { return nil }
      // -0 as an Int is a corner left to JSONDecoder.
      if integer && negative && value == 0 { return nil }
      return .number(int: integer ? (negative ? -value : value) : nil)
    }

    /// A string of ASCII characters and the usual escapes; `\u` escapes of control characters,
    /// surrogates and NUL, and any byte above 0x7F, are left to JSONDecoder.
    mutating func string() -> String? {
      at += 1  // "
      let start = at
      var escaped = false
      while at < bytes.count {
        let c = bytes[at]
        if c == UInt8(ascii: "\"") { break }
        guard c >= 0x20, c < 0x80 else { return nil }
        if c == UInt8(ascii: "\\") { escaped = true; at += 2; continue }
        at += 1
      }
      guard at < bytes.count else { return nil }
      let end = at
      at += 1  // closing quote
      guard escaped else { return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) }
      var out: [UInt8] = []
      out.reserveCapacity(end - start)
      var k = start
      while k < end {
        let c = bytes[k]
        guard c == UInt8(ascii: "\\") else { out.append(c); k += 1; continue }
        guard k + 1 < end else { return nil }
        let e = bytes[k + 1]
        k += 2
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          guard k + 4 <= end else { return nil }
          var v: UInt32 = 0
          for h in bytes[k..<(k + 4)] {
            let d: UInt8
            switch h {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = h - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = h - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = h - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
          }
          k += 4
          guard v >= 0x20, !(0xD800...0xDFFF).contains(v), let scalar = Unicode.Scalar(v) else { return nil }
          UTF8.encode(scalar) { out.append($0) }
        default: return nil
        }
      }
      return String(decoding: out, as: UTF8.self)
    }
  }
}
