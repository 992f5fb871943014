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
  /// The JSON key of this finding's answer when it is not the template's (RadPrompter asks for
  /// `{"<variable_name>": ...}`).
  public var answerKey: String? = nil
  /// More placeholders filled per finding (RadPrompter's schema keys).
  public var placeholders: [String: String] = [:]
  /// Asked only when another finding got a given answer; else this one takes `fallback`.
  public var dependsOn: Dependency? = nil
}

/// RadPrompter's `depends_on`: ask about this finding only when `finding` (a column) was
/// answered `condition`; otherwise its answer is `fallback`, without a request.
public struct Dependency: Equatable {
  public let finding: String
  public let condition: String
  public let fallback: String
}

/// A prompt template file (YAML or JSON) from `configs/prompts/`: the system text, the user turns
/// (sent one after another, each answer kept in the conversation; the last answer is parsed), the
/// answer format, and the findings with their options. Placeholders: `{{report}}`, `{{finding}}`,
/// `{{hint}}`, `{{options}}`, `{{format}}`. Optional keys: `truncation_max_tokens` (one retry with
/// it for an answer cut at `max_tokens`), `finish_reasons` (those of a complete answer),
/// `prefills` and `turn_stops` (one per turn: the answer's start, the turn's stop sequence), and
/// per finding `answer_key` and `depends_on: {finding, condition, default}`. RadPrompter's TOML
/// prompts load into the same type (RadPrompterPrompt).
public struct PromptTemplate {
  public let source: String
  public let name: String
  /// What the file says about itself (RadPrompter's METADATA), for the records.
  public let description: String
  public let system: String
  public let turns: [String]
  public let format: String
  /// The JSON key that holds the answer; `reasoningKeys` come before it in the schema so that a
  /// constrained model writes its reasoning first.
  public let answerKey: String
  public let reasoningKeys: [String]
  public let maxTokens: Int
  /// One retry with this `max_tokens` for an answer cut short (nil: a cut answer is an error).
  public let truncationMaxTokens: Int?
  /// The `finish_reason`s of a complete answer; any other (`length` above all) is TRUNCATED.
  public let finishReasons: [String]
  public let stop: [String]
  /// Per turn: stop sequences replacing `stop` for that turn (empty: `stop`), and the start of the
  /// assistant's answer sent as a final assistant message (empty: none).
  public let turnStops: [[String]]
  public let prefills: [String]
  public let findings: [FindingSpec]

  /// What OpenAI-compatible servers send for an answer that ended by itself: OpenAI, vLLM,
  /// llama.cpp and Ollama say `stop`; TGI says `eos_token` or `stop_sequence`.
  public static let defaultFinishReasons = ["stop", "eos", "eos_token", "stop_sequence", "end_turn"]

  static let placeholders: Set<String> = ["report", "finding", "hint", "options", "format"]

  /// The file as Codable sections, read by the same strict decoder as a study config (unknown
  /// keys with file:line and a did-you-mean, wrong types named); the initial values are the
  /// defaults.
  struct File: Codable {
    var name: String?
    var description = ""
    var system = ""
    var turns = Texts()
    var format = ""
    var answerKey = "answer"
    var reasoningKeys = Texts()
    var maxTokens = 256
    var truncationMaxTokens: Int?
    var finishReasons: Texts?
    var stop = Texts()
    var turnStops = Texts()
    var prefills = Texts()
    var findings: [Finding] = []
    enum CodingKeys: String, CodingKey {
      case name, description, system, turns, format
      case answerKey = "answer_key"
      case reasoningKeys = "reasoning_keys"
      case maxTokens = "max_tokens"
      case truncationMaxTokens = "truncation_max_tokens"
      case finishReasons = "finish_reasons"
      case stop
      case turnStops = "turn_stops"
      case prefills, findings
    }
    struct Finding: Codable {
      var column: String?
      var name: String?
      var hint = ""
      var answerKey: String?
      var dependsOn: Depends?
      var options: [Option] = []
      enum CodingKeys: String, CodingKey {
        case column, name, hint
        case answerKey = "answer_key"
        case dependsOn = "depends_on"
        case options
      }
    }
    struct Depends: Codable {
      var finding: String?
      var condition: String?
      var `default`: String?
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

  /// A YAML/JSON template, or a RadPrompter prompt file when the name ends in `.toml`.
  public static func load(_ url: URL) throws -> PromptTemplate {
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw FileError("cannot read prompt template \(url.path): \(error.localizedDescription); check the path")
    }
    if url.pathExtension.lowercased() == "toml" {
      return try RadPrompterPrompt.parse(text, source: url.path, name: url.deletingPathExtension().lastPathComponent)
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
    if let t = f.truncationMaxTokens, t <= f.maxTokens {
      throw FileError("\(at("truncation_max_tokens")): 'truncation_max_tokens' (\(t)) must be larger than 'max_tokens' (\(f.maxTokens)): it is the retry for an answer cut at max_tokens")
    }
    for (key, list) in [("turn_stops", f.turnStops.items), ("prefills", f.prefills.items)] where !list.isEmpty && list.count != turns.count {
      throw FileError("\(at(key)): '\(key)' has \(list.count) entries for \(turns.count) turns; give one per turn (\"\" for none)")
    }
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
      var spec = FindingSpec(column: column, name: raw.name ?? column, hint: raw.hint, options: options)
      spec.answerKey = raw.answerKey
      if let d = raw.dependsOn {
        guard let parent = d.finding, let condition = d.condition, let fallback = d.default else {
          throw FileError("\(at("\(path).depends_on")): '\(path).depends_on' needs finding, condition and default")
        }
        spec.dependsOn = Dependency(finding: parent, condition: condition, fallback: fallback)
      }
      findings.append(spec)
    }
    return try make(source: source, name: name, description: f.description, system: f.system, turns: turns,
                    format: f.format, answerKey: f.answerKey, reasoningKeys: f.reasoningKeys.items, maxTokens: f.maxTokens,
                    truncationMaxTokens: f.truncationMaxTokens, finishReasons: f.finishReasons?.items, stop: f.stop.items,
                    turnStops: f.turnStops.items.isEmpty ? Array(repeating: [], count: turns.count)
                      : f.turnStops.items.map { $0.isEmpty ? [] : [$0] },
                    prefills: f.prefills.items.isEmpty ? Array(repeating: "", count: turns.count) : f.prefills.items,
                    findings: findings)
  }

  /// A template from its parts (YAML or RadPrompter), with the checks both share.
  static func make(source: String, name: String, description: String, system: String, turns: [String], format: String,
                   answerKey: String, reasoningKeys: [String], maxTokens: Int?, truncationMaxTokens: Int?,
                   finishReasons: [String]?, stop: [String], turnStops: [[String]], prefills: [String],
                   findings: [FindingSpec]) throws -> PromptTemplate {
    let columns = findings.map(\.column)
    if let twice = columns.first(where: { c in columns.filter { $0 == c }.count > 1 }) {
      throw FileError("\(source): two findings share the column '\(twice)'; each column is one finding")
    }
    for (i, f) in findings.enumerated() {
      guard let d = f.dependsOn else { continue }
      guard let p = findings.firstIndex(where: { $0.column == d.finding }), p < i else {
        throw FileError("\(source): finding '\(f.column)' depends on '\(d.finding)', which is not a finding before it; list the one it depends on first")
      }
      guard findings[p].options.contains(where: { $0.answer == d.condition }) else {
        throw FileError("\(source): finding '\(f.column)' depends on '\(d.finding)' being '\(d.condition)', which is not one of its options (\(PromptTemplate.optionList(findings[p])))")
      }
      guard f.options.contains(where: { $0.answer == d.fallback }) else {
        throw FileError("\(source): finding '\(f.column)' falls back to '\(d.fallback)', which is not one of its options (\(PromptTemplate.optionList(f)))")
      }
    }
    let template = PromptTemplate(source: source, name: name, description: description, system: system, turns: turns,
                                  format: format, answerKey: answerKey, reasoningKeys: reasoningKeys,
                                  maxTokens: maxTokens ?? 256, truncationMaxTokens: truncationMaxTokens,
                                  finishReasons: finishReasons ?? PromptTemplate.defaultFinishReasons, stop: stop,
                                  turnStops: turnStops, prefills: prefills, findings: findings)
    try template.checkPlaceholders()
    return template
  }

  private func checkPlaceholders() throws {
    for text in [system, format] + turns + prefills {
      var rest = Substring(text)
      while let open = rest.range(of: "{{") {
        guard let close = rest[open.upperBound...].range(of: "}}") else {
          throw FileError("\(source): a '{{' is never closed with '}}'")
        }
        let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
        if !PromptTemplate.placeholders.contains(key) && !findings.allSatisfy({ $0.placeholders[key] != nil }) {
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
      var out = s
      for (key, value) in finding.placeholders.sorted(by: { $0.key < $1.key }) {
        out = out.replacingOccurrences(of: "{{\(key)}}", with: value)
      }
      out = out.replacingOccurrences(of: "{{finding}}", with: finding.name)
        .replacingOccurrences(of: "{{hint}}", with: finding.hint)
      if withFormat { out = out.replacingOccurrences(of: "{{format}}", with: fill(format, withFormat: false)) }
      return out.replacingOccurrences(of: "{{options}}", with: opts)
    }
    return RenderedPrompt(template: self, finding: finding,
                          system: fill(system, withFormat: true), turns: turns.map { fill($0, withFormat: true) },
                          prefills: prefills.map { fill($0, withFormat: false) })
  }
}

/// A template filled in for one finding; the report goes in per request.
/// A class, not a struct: every async call of a conversation keeps its arguments in its frame,
/// and a copy of this (the whole template, the finding, the split texts) retained dozens of
/// references, a dozen times per request; a reference is retained once.
public final class RenderedPrompt: @unchecked Sendable {
  public let template: PromptTemplate
  public let finding: FindingSpec
  public let system: String
  public let turns: [String]
  public let prefills: [String]
  /// Each text split at `{{report}}`, once, so that a request only joins pieces.
  private let systemPieces: [String]
  private let turnPieces: [[String]]
  /// `,"response_format":{...}` with `responseSchema` in it, serialized once: what a constrained
  /// request appends to its body.
  let responseFormatField: [UInt8]

  init(template: PromptTemplate, finding: FindingSpec, system: String, turns: [String], prefills: [String]) {
    self.template = template
    self.finding = finding
    self.system = system
    self.turns = turns
    self.prefills = prefills
    systemPieces = system.components(separatedBy: "{{report}}")
    turnPieces = turns.map { $0.components(separatedBy: "{{report}}") }
    var field = Array(#","response_format":"#.utf8)
    JSONValue.object([
      ("type", .string("json_schema")),
      ("json_schema", .object([("name", .string("answer")), ("strict", .bool(true)),
                               ("schema", RenderedPrompt.responseSchema(template: template, finding: finding))])),
    ]).write(to: &field)
    responseFormatField = field
  }

  /// The JSON key the answer is read from.
  public var answerKey: String { finding.answerKey ?? template.answerKey }

  /// The JSON schema for `response_format`: reasoning strings first, then the answer as an enum.
  public var responseSchema: JSONValue { RenderedPrompt.responseSchema(template: template, finding: finding) }

  static func responseSchema(template: PromptTemplate, finding: FindingSpec) -> JSONValue {
    let answerKey = finding.answerKey ?? template.answerKey
    var props: [(String, JSONValue)] = template.reasoningKeys.map { ($0, .object([("type", .string("string"))])) }
    props.append((answerKey, .object([("type", .string("string")),
                                      ("enum", .array(finding.options.map { .string($0.answer) }))])))
    return .object([("type", .string("object")), ("properties", .object(props)),
                    ("required", .array((template.reasoningKeys + [answerKey]).map { .string($0) })),
                    ("additionalProperties", .bool(false))])
  }

  /// SHA-256 of the rendered template and every setting that shapes the answer (sampling too), so
  /// that answers made with another prompt or settings are never mistaken for this one's.
  public func hash(temperature: Double, seed: Int) -> String {
    var fields: [(String, JSONValue)] = [
      ("system", .string(system)), ("turns", .array(turns.map { .string($0) })),
      ("schema", responseSchema), ("column", .string(finding.column)),
      ("values", .array(finding.options.map { .array([.string($0.answer), .number($0.value)]) })),
      ("max_tokens", .number(Double(template.maxTokens))), ("stop", .array(template.stop.map { .string($0) })),
      ("temperature", .number(temperature)), ("seed", .number(Double(seed))),
    ]
    // Settings added later enter the hash only when set, so earlier answers stay valid.
    if let t = template.truncationMaxTokens { fields.append(("truncation_max_tokens", .number(Double(t)))) }
    if template.finishReasons != PromptTemplate.defaultFinishReasons {
      fields.append(("finish_reasons", .array(template.finishReasons.map { .string($0) })))
    }
    if template.turnStops.contains(where: { !$0.isEmpty }) {
      fields.append(("turn_stops", .array(template.turnStops.map { .array($0.map { .string($0) }) })))
    }
    if prefills.contains(where: { !$0.isEmpty }) { fields.append(("prefills", .array(prefills.map { .string($0) }))) }
    if let d = finding.dependsOn {
      fields.append(("depends_on", .array([.string(d.finding), .string(d.condition), .string(d.fallback)])))
    }
    return String(SHA256.hex(JSONValue.object(fields).serialized).prefix(16))
  }

  /// The stop sequences of turn `i`: its own, else the template's.
  public func stop(for i: Int) -> [String] {
    let own = i >= 0 && i < template.turnStops.count ? template.turnStops[i] : []
    return own.isEmpty ? template.stop : own
  }

  /// The prefilled start of the answer to turn `i` ("" for none).
  public func prefill(_ i: Int) -> String { i < prefills.count ? prefills[i] : "" }

  /// The conversation's user text for turn `i` with the report filled in.
  public func userTurn(_ i: Int, report: String) -> String { turnPieces[i].joined(separator: report) }
  public func systemText(report: String) -> String { systemPieces.joined(separator: report) }
}
