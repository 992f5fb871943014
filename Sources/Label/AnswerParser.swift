import Foundation

/// How an answer was read: exactly as asked, recovered from a near miss, or not at all.
public enum ParseOutcome: String, CaseIterable {
  /// The whole reply (or the text between `<answer>` tags) was a JSON object with an exact option.
  case strict
  /// Read after recovery: JSON inside prose or a code fence, another spelling or case of an option,
  /// yes/no, true/false, or a bare option word.
  case recovered
  /// Nothing usable: the row reads `ERROR` and the raw text is kept for review.
  case error
}

public struct ParsedAnswer: Equatable {
  public let outcome: ParseOutcome
  /// The option chosen, spelled as in the template; nil for `.error`.
  public let option: AnswerOption?
  /// What the model wrote after the reasoning keys, when the answer came from JSON.
  public let note: String

  public var display: String { option?.answer ?? "ERROR" }
}

/// Reads a model's reply into one of a finding's options: strict JSON first, then recovery.
public enum AnswerParser {
  public static func parse(_ reply: String, key: String, options: [AnswerOption]) -> ParsedAnswer {
    let body = insideAnswerTags(reply)
    let trimmed = trimWhitespace(body)
    // Strict: the text is one JSON object whose key holds one of the options exactly.
    if let s = strictString(trimmed, key: key),
       let o = options.first(where: { $0.answer == s }) {
      return ParsedAnswer(outcome: .strict, option: o, note: "")
    }
    // Recovery 1: the last JSON object that holds an option (fences, prose around it, a draft
    // before the final answer): like the tag rule, the last answer wins.
    let candidates = jsonObjects(in: body) + (body == reply ? [] : jsonObjects(in: reply))
    for candidate in candidates.reversed() {
      guard let obj = JSONValue.parse(candidate), let members = obj.members else { continue }
      let value = obj[key] ?? members.first(where: { $0.0.caseInsensitiveCompare(key) == .orderedSame })?.1
      if let value, let o = match(value, options: options) {
        return ParsedAnswer(outcome: .recovered, option: o, note: "json")
      }
    }
    // Recovery 2: a bare word ("Present.", "yes") as the whole reply.
    let bare = trim(trimmed, punctuationOrWhitespace)
    if !bare.isEmpty, !bare.contains("{"), let o = match(bare, options: options) {
      return ParsedAnswer(outcome: .recovered, option: o, note: "word")
    }
    return ParsedAnswer(outcome: .error, option: nil, note: "")
  }

  /// `JSONValue.parse(text)?[key]?.string`, read by FastJSON when it can (the usual reply is a
  /// small ASCII object), else by JSONDecoder as before.
  static func strictString(_ text: String, key: String) -> String? {
    if let json = FastJSON.parse(text) {
      guard let members = json.members, case .string(let s)? = FastJSON.member(members, key) else { return nil }
      return s
    }
    return JSONValue.parse(text)?[key]?.string
  }

  /// The text between `<answer>` and `</answer>`; the closing tag may be missing because it is a
  /// stop sequence. Without tags, the whole reply. The last tagged answer wins (chain of thought
  /// may quote the tag while reasoning).
  static func insideAnswerTags(_ text: String) -> String {
    // Most replies (a JSON object) hold no tag at all: skip Foundation's case-insensitive search.
    guard text.utf8.contains(UInt8(ascii: "<")) else { return text }
    // `<json>` is RadPrompter's answer tag.
    for (openTag, closeTag) in [("<answer>", "</answer>"), ("<json>", "</json>")] {
      guard let open = text.range(of: openTag, options: [.caseInsensitive, .backwards]) else { continue }
      let rest = text[open.upperBound...]
      if let close = rest.range(of: closeTag, options: .caseInsensitive) { return String(rest[..<close.lowerBound]) }
      return String(rest)
    }
    return text
  }

  /// Balanced `{...}` spans in order of appearance (the first 64), skipping braces inside JSON
  /// strings. An unclosed `{` (an answer cut short) ends the scan.
  static func jsonObjects(in text: String) -> [String] {
    let chars = Array(text.unicodeScalars)
    var found: [String] = []
    var i = 0
    while i < chars.count {
      guard chars[i] == "{" else { i += 1; continue }
      var depth = 0, inString = false, escaped = false, j = i, end: Int? = nil
      while j < chars.count {
        let c = chars[j]
        if inString {
          if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        } else if c == "\"" { inString = true } else if c == "{" { depth += 1 } else if c == "}" {
          depth -= 1
          if depth == 0 { end = j; break }
        }
        j += 1
      }
      guard let e = end else { break }
      var s = String.UnicodeScalarView()
      s.append(contentsOf: chars[i...e])
      found.append(String(s))
      if found.count >= 64 { break }
      i = e + 1
    }
    return found
  }

  /// An option for a JSON value or word: exact, other case or spacing, a small misspelling,
  /// true/1, yes/positive for the 1.0 option and no/false/negative for the 0.0 option.
  static func match(_ value: JSONValue, options: [AnswerOption]) -> AnswerOption? {
    // JSON true/false (as 1/0) and the CheXpert numbers 1/0/-1.
    if case .number(let n) = value { return options.first { $0.value == n } }
    if case .bool(let b) = value { return options.first { $0.value == (b ? 1 : 0) } }
    guard case .string(let raw) = value else { return nil }
    return match(raw, options: options)
  }

  /// An option for a word (see `match(_:options:)` for JSON values).
  static func match(_ raw: String, options: [AnswerOption]) -> AnswerOption? {
    let norm = normalize(raw)
    if norm.isEmpty { return nil }
    if let o = options.first(where: { normalize($0.answer) == norm }) { return o }
    switch norm {
    case "yes", "true", "positive", "present", "y": return options.first { $0.value == 1.0 }
    case "no", "false", "negative", "absent", "n", "none": return options.first { $0.value == 0.0 }
    case "uncertain", "possible", "maybe", "unsure", "indeterminate": return options.first { $0.value == -1.0 }
    default: break
    }
    // A misspelling: the one option within edit distance 2 (and not closer to any other).
    let scored = options.map { ($0, editDistance(normalize($0.answer), norm)) }.sorted { $0.1 < $1.1 }
    if let best = scored.first, best.1 <= min(2, max(1, norm.count / 4)),
       scored.count == 1 || scored[1].1 > best.1 { return best.0 }
    return nil
  }

  static func normalize(_ s: String) -> String {
    String(s.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) })
  }

  static func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = prev
    for i in 1...x.count {
      cur[0] = i
      for j in 1...y.count {
        cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
      }
      swap(&prev, &cur)
    }
    return prev[y.count]
  }
}

extension AnswerParser {
  /// `s` without leading and trailing scalars of `set`: what `trimmingCharacters(in:)` returns,
  /// without its round trip through NSString on Linux (it showed in the label client's profile).
  static func trim(_ s: String, _ set: CharacterSet) -> String {
    let scalars = s.unicodeScalars
    guard let first = scalars.firstIndex(where: { !set.contains($0) }) else { return "" }
    let last = scalars.lastIndex(where: { !set.contains($0) })!
    if first == scalars.startIndex && scalars.index(after: last) == scalars.endIndex { return s }
    return String(scalars[first...last])
  }

  /// `trim(s, .whitespacesAndNewlines)`. The usual reply starts and ends with a character outside
  /// the set (`{...}`): that is answered from its two ends, without asking the CharacterSet.
  static func trimWhitespace(_ s: String) -> String {
    if let f = s.utf8.first, let l = s.utf8.last, isKeptASCII(f), isKeptASCII(l) { return s }
    return trim(s, whitespace)
  }

  /// Built once: each `CharacterSet.whitespacesAndNewlines` builds a new set on Linux.
  static let whitespace = CharacterSet.whitespacesAndNewlines
  static let punctuationOrWhitespace = CharacterSet.punctuationCharacters.union(.whitespacesAndNewlines)

  /// An ASCII byte that `whitespacesAndNewlines` does not hold (it holds tab, LF, VT, FF, CR and
  /// space among ASCII).
  @inline(__always) static func isKeptASCII(_ b: UInt8) -> Bool { b < 0x80 && b != 0x20 && !(0x09...0x0D).contains(b) }
}
