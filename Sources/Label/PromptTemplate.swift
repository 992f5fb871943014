import Common
import Foundation
import Yams

/// One answer a finding can take and the CheXpert value it stands for (1.0, 0.0, -1.0).
public struct AnswerOption: Equatable {
  public let answer: String
  public let value: Double
}

/// A finding a template asks about: the label-file column, the words used in the prompt, a hint.
public struct FindingSpec: Equatable {
  public let column: String
  public let name: String
  public let hint: String
  public let options: [AnswerOption]
}

/// A prompt template file (YAML or JSON) from `configs/prompts/`: the system text, the user turns
/// (sent one after another, each answer kept in the conversation; the last answer is parsed), the
/// answer format, and the findings with their options. Placeholders: `{{report}}`, `{{finding}}`,
/// `{{hint}}`, `{{options}}`, `{{format}}`.
public struct PromptTemplate {
  public let source: String
  public let name: String
  public let system: String
  public let turns: [String]
  public let format: String
  /// The JSON key that holds the answer; `reasoningKeys` come before it in the schema so that a
  /// constrained model writes its reasoning first.
  public let answerKey: String
  public let reasoningKeys: [String]
  public let maxTokens: Int
  public let stop: [String]
  public let findings: [FindingSpec]

  static let allowedKeys: Set<String> = ["name", "system", "turns", "format", "answer_key", "reasoning_keys",
                                         "max_tokens", "stop", "findings"]
  static let placeholders: Set<String> = ["report", "finding", "hint", "options", "format"]

  public static func load(_ url: URL) throws -> PromptTemplate {
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw FileError("cannot read prompt template \(url.path): \(error.localizedDescription); check the path")
    }
    return try parse(text, source: url.path)
  }

  public static func parse(_ text: String, source: String) throws -> PromptTemplate {
    let loaded: Any?
    do { loaded = try Yams.load(yaml: text) } catch {
      throw FileError("\(source) is not valid YAML or JSON: \(error)")
    }
    guard let root = loaded as? [String: Any] else {
      throw FileError("\(source): expected a mapping with keys \(allowedKeys.sorted().joined(separator: ", "))")
    }
    for key in root.keys where !allowedKeys.contains(key) {
      throw FileError("\(source): unknown key '\(key)'; allowed keys are \(allowedKeys.sorted().joined(separator: ", "))")
    }
    func string(_ key: String, in dict: [String: Any], at path: String, default def: String? = nil) throws -> String {
      guard let v = dict[key] else {
        if let def { return def }
        throw FileError("\(source): missing key '\(path)\(key)'")
      }
      guard let s = v as? String else {
        let hint = v is Bool ? " (quote words like 'Yes' or 'No', which YAML reads as true/false)" : ""
        throw FileError("\(source): '\(path)\(key)' must be a string\(hint)")
      }
      return s
    }
    func strings(_ key: String, in dict: [String: Any], at path: String = "") throws -> [String] {
      guard let v = dict[key] else { return [] }
      if let s = v as? String { return [s] }
      guard let a = v as? [Any], a.allSatisfy({ $0 is String }) else {
        throw FileError("\(source): '\(path)\(key)' must be a list of strings")
      }
      return a.map { $0 as! String }
    }
    let name = try string("name", in: root, at: "")
    let system = try string("system", in: root, at: "", default: "")
    let turns = try strings("turns", in: root)
    if turns.isEmpty { throw FileError("\(source): 'turns' needs at least one user turn") }
    let format = try string("format", in: root, at: "", default: "")
    let answerKey = try string("answer_key", in: root, at: "", default: "answer")
    let reasoningKeys = try strings("reasoning_keys", in: root)
    var maxTokens = 256
    if let v = root["max_tokens"] {
      guard let i = v as? Int, i > 0 else { throw FileError("\(source): 'max_tokens' must be a positive integer") }
      maxTokens = i
    }
    let stop = try strings("stop", in: root)
    guard let rawFindings = root["findings"] as? [Any], !rawFindings.isEmpty else {
      throw FileError("\(source): 'findings' must be a non-empty list")
    }
    var findings: [FindingSpec] = []
    for (i, raw) in rawFindings.enumerated() {
      let path = "findings[\(i)]."
      guard let f = raw as? [String: Any] else { throw FileError("\(source): 'findings[\(i)]' must be a mapping") }
      for key in f.keys where !["column", "name", "hint", "options"].contains(key) {
        throw FileError("\(source): unknown key '\(path)\(key)'; allowed keys are column, name, hint, options")
      }
      let column = try string("column", in: f, at: path)
      let findingName = try string("name", in: f, at: path, default: column)
      let hint = try string("hint", in: f, at: path, default: "")
      guard let rawOptions = f["options"] as? [Any], !rawOptions.isEmpty else {
        throw FileError("\(source): '\(path)options' must be a non-empty list of {answer, value}")
      }
      var options: [AnswerOption] = []
      for (j, ro) in rawOptions.enumerated() {
        let op = "\(path)options[\(j)]."
        guard let o = ro as? [String: Any] else { throw FileError("\(source): '\(path)options[\(j)]' must be a mapping {answer, value}") }
        let answer = try string("answer", in: o, at: op)
        let value: Double
        switch o["value"] {
        case let d as Double: value = d
        case let n as Int: value = Double(n)
        default: throw FileError("\(source): '\(op)value' must be 1.0, 0.0 or -1.0")
        }
        guard [1.0, 0.0, -1.0].contains(value) else { throw FileError("\(source): '\(op)value' must be 1.0, 0.0 or -1.0") }
        options.append(AnswerOption(answer: answer, value: value))
      }
      findings.append(FindingSpec(column: column, name: findingName, hint: hint, options: options))
    }
    let template = PromptTemplate(source: source, name: name, system: system, turns: turns, format: format,
                                  answerKey: answerKey, reasoningKeys: reasoningKeys, maxTokens: maxTokens,
                                  stop: stop, findings: findings)
    try template.checkPlaceholders()
    return template
  }

  private func checkPlaceholders() throws {
    for text in [system, format] + turns {
      var rest = Substring(text)
      while let open = rest.range(of: "{{") {
        guard let close = rest[open.upperBound...].range(of: "}}") else {
          throw FileError("\(source): a '{{' is never closed with '}}'")
        }
        let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
        if !PromptTemplate.placeholders.contains(key) {
          throw FileError("\(source): unknown placeholder '{{\(key)}}'; use {{report}}, {{finding}}, {{hint}}, {{options}} or {{format}}")
        }
        rest = rest[close.upperBound...]
      }
    }
    if !turns.contains(where: { $0.contains("{{report}}") }) && !system.contains("{{report}}") {
      throw FileError("\(source): no turn contains {{report}}, so the model would never see the report")
    }
  }

  /// The options as the prompt shows them: `"Present", "Absent"`.
  static func optionList(_ f: FindingSpec) -> String {
    f.options.map { "\"\($0.answer)\"" }.joined(separator: ", ")
  }

  /// Renders everything but the report, which stays `{{report}}`.
  public func rendered(for finding: FindingSpec) -> RenderedPrompt {
    let opts = PromptTemplate.optionList(finding)
    func fill(_ s: String, withFormat: Bool) -> String {
      var out = s.replacingOccurrences(of: "{{finding}}", with: finding.name)
        .replacingOccurrences(of: "{{hint}}", with: finding.hint)
      if withFormat { out = out.replacingOccurrences(of: "{{format}}", with: fill(format, withFormat: false)) }
      return out.replacingOccurrences(of: "{{options}}", with: opts)
    }
    return RenderedPrompt(template: self, finding: finding,
                          system: fill(system, withFormat: true), turns: turns.map { fill($0, withFormat: true) })
  }
}

/// A template filled in for one finding; the report goes in per request.
public struct RenderedPrompt {
  public let template: PromptTemplate
  public let finding: FindingSpec
  public let system: String
  public let turns: [String]
  /// Each text split at `{{report}}`, once, so that a request only joins pieces.
  private let systemPieces: [String]
  private let turnPieces: [[String]]

  init(template: PromptTemplate, finding: FindingSpec, system: String, turns: [String]) {
    self.template = template
    self.finding = finding
    self.system = system
    self.turns = turns
    systemPieces = system.components(separatedBy: "{{report}}")
    turnPieces = turns.map { $0.components(separatedBy: "{{report}}") }
  }

  /// The JSON schema for `response_format`: reasoning strings first, then the answer as an enum.
  public var responseSchema: JSONValue {
    var props: [(String, JSONValue)] = template.reasoningKeys.map { ($0, .object([("type", .string("string"))])) }
    props.append((template.answerKey, .object([("type", .string("string")),
                                              ("enum", .array(finding.options.map { .string($0.answer) }))])))
    return .object([("type", .string("object")), ("properties", .object(props)),
                    ("required", .array((template.reasoningKeys + [template.answerKey]).map { .string($0) })),
                    ("additionalProperties", .bool(false))])
  }

  /// SHA-256 of the rendered template and every setting that shapes the answer (sampling too), so
  /// that answers made with another prompt or settings are never mistaken for this one's.
  public func hash(temperature: Double, seed: Int) -> String {
    let doc: JSONValue = .object([
      ("system", .string(system)), ("turns", .array(turns.map { .string($0) })),
      ("schema", responseSchema), ("column", .string(finding.column)),
      ("values", .array(finding.options.map { .array([.string($0.answer), .number($0.value)]) })),
      ("max_tokens", .number(Double(template.maxTokens))), ("stop", .array(template.stop.map { .string($0) })),
      ("temperature", .number(temperature)), ("seed", .number(Double(seed))),
    ])
    return String(SHA256.hex(doc.serialized).prefix(16))
  }

  /// The conversation's user text for turn `i` with the report filled in.
  public func userTurn(_ i: Int, report: String) -> String { turnPieces[i].joined(separator: report) }
  public func systemText(report: String) -> String { systemPieces.joined(separator: report) }
}
