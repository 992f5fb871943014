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

  static let placeholders: Set<String> = ["report", "finding", "hint", "options", "format"]

  /// The file as Codable sections, read by the same strict decoder as a study config (unknown
  /// keys with file:line and a did-you-mean, wrong types named); the initial values are the
  /// defaults.
  struct File: Codable {
    var name: String?
    var system = ""
    var turns = Texts()
    var format = ""
    var answerKey = "answer"
    var reasoningKeys = Texts()
    var maxTokens = 256
    var stop = Texts()
    var findings: [Finding] = []
    enum CodingKeys: String, CodingKey {
      case name, system, turns, format
      case answerKey = "answer_key"
      case reasoningKeys = "reasoning_keys"
      case maxTokens = "max_tokens"
      case stop, findings
    }
    struct Finding: Codable {
      var column: String?
      var name: String?
      var hint = ""
      var options: [Option] = []
    }
    struct Option: Codable {
      var answer: String?
      var value: Double?
    }
  }

  /// One text or a list of texts (`stop: "</answer>"` or `stop: ["</answer>"]`).
  struct Texts: Codable {
    var items: [String] = []
    init() {}
    init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if let one = try? c.decode(String.self) { items = [one] } else { items = try c.decode([String].self) }
    }
    func encode(to encoder: Encoder) throws {
      var c = encoder.singleValueContainer()
      try c.encode(items)
    }
  }

  public static func load(_ url: URL) throws -> PromptTemplate {
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw FileError("cannot read prompt template \(url.path): \(error.localizedDescription); check the path")
    }
    return try parse(text, source: url.path)
  }

  public static func parse(_ text: String, source: String) throws -> PromptTemplate {
    let items = ["findings": try NodeEncoder.encode(File.Finding()), "findings[].options": try NodeEncoder.encode(File.Option())]
    let f: File, origins: StrictYAML.Origins
    do {
      (f, origins) = try StrictYAML.decode(File.self, defaults: File(), itemDefaults: items, text: text, source: source)
    } catch let e as UserError { throw FileError(e.message) }
    func at(_ key: String) -> String { StrictYAML.origin(key, origins, source: source) }
    guard let name = f.name else { throw FileError("\(source): missing key 'name'") }
    let turns = f.turns.items
    if turns.isEmpty { throw FileError("\(at("turns")): 'turns' needs at least one user turn") }
    guard f.maxTokens > 0 else { throw FileError("\(at("max_tokens")): 'max_tokens' must be a positive integer") }
    guard !f.findings.isEmpty else { throw FileError("\(at("findings")): 'findings' must be a non-empty list") }
    var findings: [FindingSpec] = []
    for (i, raw) in f.findings.enumerated() {
      let path = "findings[\(i)]"
      guard let column = raw.column else { throw FileError("\(at(path)): missing key '\(path).column'") }
      guard !raw.options.isEmpty else {
        throw FileError("\(at(path)): '\(path).options' must be a non-empty list of {answer, value}")
      }
      var options: [AnswerOption] = []
      for (j, o) in raw.options.enumerated() {
        let op = "\(path).options[\(j)]"
        guard let answer = o.answer else { throw FileError("\(at(op)): missing key '\(op).answer'") }
        guard let value = o.value, [1.0, 0.0, -1.0].contains(value) else {
          throw FileError("\(at("\(op).value")): '\(op).value' must be 1.0, 0.0 or -1.0")
        }
        options.append(AnswerOption(answer: answer, value: value))
      }
      findings.append(FindingSpec(column: column, name: raw.name ?? column, hint: raw.hint, options: options))
    }
    let template = PromptTemplate(source: source, name: name, system: f.system, turns: turns, format: f.format,
                                  answerKey: f.answerKey, reasoningKeys: f.reasoningKeys.items, maxTokens: f.maxTokens,
                                  stop: f.stop.items, findings: findings)
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
