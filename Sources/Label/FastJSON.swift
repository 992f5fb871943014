/// A strict reader for the small JSON documents read once per answer (the chat completion body,
/// the answer object), for the common case only: ASCII text, no exponents or long numbers, no
/// repeated keys among those read, no escapes in keys, little nesting. Anything else gives nil and
/// the caller asks JSONDecoder, as it always did; so for every document read here JSONDecoder
/// would read the same values. It is a fraction of JSONDecoder's cost (which builds a map of the document, then decodes through
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

  /// `name` spells `key`'s bytes.
  static func same(_ name: String, _ key: UnsafeRawBufferPointer) -> Bool {
    name.utf8.count == key.count && name.utf8.elementsEqual(key)
  }

  /// `key`'s bytes are those of `name` (keys are compared as read: `Reader.object` takes no
  /// key with escapes).
  static func isKey(_ key: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
    guard key.count == name.utf8CodeUnitCount else { return false }
    let p = name.utf8Start
    for k in 0..<key.count where key[k] != p[k] { return false }
    return true
  }

  /// Reads a document in place: objects member by member (`object(depth:_:)`), values read or
  /// skipped (`skipValue`), so a caller that wants three fields of a chat completion builds no
  /// tree and no string it does not keep. Every path refuses what the tree reader refuses.
  struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    static let maxDepth = 32
    static let maxMembers = 64

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The byte at the read position (after any space), if any.
    mutating func peek() -> UInt8? {
      skipSpace()
      return at < bytes.count ? bytes[at] : nil
    }

    /// Whether only space is left.
    mutating func atEnd() -> Bool { peek() == nil }

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
      case UInt8(ascii: "{"):
        var members: [(String, FastJSON)] = []
        members.reserveCapacity(8)  // the objects read here have 2 to 8 members: one allocation, not one per doubling
        let ok = object(depth: depth) { key, r in
          // A repeated key: which one JSONDecoder keeps is its business.
          guard members.count < Reader.maxMembers, !members.contains(where: { FastJSON.same($0.0, key) }),
                let v = r.value(depth: depth + 1) else { return false }
          members.append((String(decoding: key, as: UTF8.self), v))
          return true
        }
        return ok ? .object(members) : nil
      case UInt8(ascii: "["):
        var items: [FastJSON] = []
        let ok = array(depth: depth) { r in
          guard let v = r.value(depth: depth + 1) else { return false }
          items.append(v)
          return true
        }
        return ok ? .array(items) : nil
      case UInt8(ascii: "\""): return string().map { .string($0) }
      case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
      case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
      case UInt8(ascii: "n"): return literal("null") ? .null : nil
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
      default: return nil
      }
    }

    /// A member that JSONDecoder's `try? decodeIfPresent(String.self, ...)` reads: a string goes
    /// into `value`; any other value is checked, stepped over and leaves it nil. False when the
    /// document is not one read here.
    mutating func optionalString(depth: Int, into value: inout String?) -> Bool {
      guard peek() == UInt8(ascii: "\"") else { return skipValue(depth: depth) }
      guard let s = string() else { return false }
      value = s
      return true
    }

    /// Checks the value at the read position as `value` would read it, and steps over it.
    mutating func skipValue(depth: Int) -> Bool {
      guard depth < Reader.maxDepth, at < bytes.count else { return false }
      switch bytes[at] {
      case UInt8(ascii: "{"): return object(depth: depth) { _, r in r.skipValue(depth: depth + 1) }
      case UInt8(ascii: "["): return array(depth: depth) { r in r.skipValue(depth: depth + 1) }
      case UInt8(ascii: "\""):
        guard let (start, end, escaped) = scanString() else { return false }
        return !escaped || unescaped(start, end) != nil
      case UInt8(ascii: "t"): return literal("true")
      case UInt8(ascii: "f"): return literal("false")
      case UInt8(ascii: "n"): return literal("null")
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number() != nil
      default: return false
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

    /// The object at the read position, member by member: `member` gets each key's bytes and
    /// must read or skip its value (false stops, and the object is refused). A key with escapes
    /// is refused (no reply has one; JSONDecoder reads it). No check for repeated keys here:
    /// the caller knows which keys it keeps.
    mutating func object(depth: Int, _ member: (UnsafeRawBufferPointer, inout Reader) -> Bool) -> Bool {
      guard depth < Reader.maxDepth, at < bytes.count, bytes[at] == UInt8(ascii: "{") else { return false }
      at += 1
      skipSpace()
      if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return true }
      while true {
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\""), let (start, end, escaped) = scanString(), !escaped else { return false }
        skipSpace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { return false }
        at += 1
        skipSpace()
        guard member(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), &self) else { return false }
        skipSpace()
        guard at < bytes.count else { return false }
        if bytes[at] == UInt8(ascii: ",") { at += 1; skipSpace(); continue }
        guard bytes[at] == UInt8(ascii: "}") else { return false }
        at += 1
        return true
      }
    }

    /// The array at the read position, item by item (`item` reads or skips each one).
    mutating func array(depth: Int, _ item: (inout Reader) -> Bool) -> Bool {
      guard depth < Reader.maxDepth, at < bytes.count, bytes[at] == UInt8(ascii: "[") else { return false }
      at += 1
      skipSpace()
      if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return true }
      while true {
        guard item(&self) else { return false }
        skipSpace()
        guard at < bytes.count else { return false }
        if bytes[at] == UInt8(ascii: ",") { at += 1; skipSpace(); continue }
        guard bytes[at] == UInt8(ascii: "]") else { return false }
        at += 1
        return true
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

    /// The string at the read position, stepped over: the bytes between its quotes and whether
    /// it has escapes. Only ASCII characters (no control characters) are taken; `string()`
    /// checks the escapes themselves.
    mutating func scanString() -> (start: Int, end: Int, escaped: Bool)? {
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
      return (start, end, escaped)
    }

    /// A string of ASCII characters and the usual escapes; `\u` escapes of control characters,
    /// surrogates and NUL, and any byte above 0x7F, are left to JSONDecoder.
    mutating func string() -> String? {
      guard let (start, end, escaped) = scanString() else { return nil }
      guard escaped else { return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) }
      return unescaped(start, end).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes of the escaped string between `start` and `end`; nil for an escape that is not
    /// JSON or that is left to JSONDecoder. A skipped string with escapes is checked here too, so
    /// that nothing JSONDecoder refuses is read.
    func unescaped(_ start: Int, _ end: Int) -> [UInt8]? {
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
      return out
    }
  }
}
