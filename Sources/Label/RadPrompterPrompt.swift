import Common
import Foundation
import TOMLKit

/// RadPrompter's prompt files (TOML, RadPrompter 1.x and 2.x) read as they are, so that a group
/// that labelled with RadPrompter reuses its prompts:
/// - `[METADATA]` `version`, `description` (kept for the record);
/// - `[PROMPTS]` named strings, joined by `rdp(a + b)` in the constructor;
/// - `[CONSTRUCTOR]` `system`, `user` (one turn or a list), `response_templates` (the start of the
///   assistant's answer per turn, sent as a final assistant message) and `stop_tags` (per turn);
/// - `[SCHEMAS.X]` per variable: `variable_name`, `type = "select"`, `options`, `hint`,
///   `show_options_in_hint`, `depends_on = {schema, condition, default_value}`; any other string
///   key is a placeholder like RadPrompter's (`{{intro_prompt}}`).
/// Placeholders: `{{report}}`, `{{variable_name}}`, `{{hint}}` and the schema's own keys. Each
/// schema becomes one finding (its label-file column is the table name, X); the answer is read
/// from `{"<variable_name>": ...}` (RadPrompter's `<json>` block) like any other answer.
/// Differences, on purpose: each schema is its own conversation (RadPrompter's `hide_blocks`),
/// `max_tokens` is RadPrompter's default, 4096; `show_options_in_hint` changes nothing (RadPrompter
/// appends a pydantic schema dump to the hint only in its use_pydantic mode);
/// and only `select` schemas are read: cxr writes CheXpert values, so every option needs one,
/// taken from its word (Present/Yes -> 1.0, Absent/No/Not mentioned -> 0.0, Indeterminate/
/// Uncertain -> -1.0) or from a `values = [...]` list in the schema (a key RadPrompter ignores).
enum RadPrompterPrompt {
  /// RadPrompter's engine default (`max_generation_tokens`): its files do not set one.
  static let maxTokens = 4096

  static func parse(_ text: String, source: String, name: String) throws -> PromptTemplate {
    let root: TOMLTable
    do { root = try TOMLTable(string: text) } catch let e as TOMLParseError {
      throw FileError("\(source):\(e.source.begin.line):\(e.source.begin.column): not valid TOML: \(e.description)")
    }
    guard let constructor = root["CONSTRUCTOR"]?.table else {
      throw FileError("\(source): no [CONSTRUCTOR] table; a RadPrompter prompt needs one with 'system' and 'user'")
    }
    var prompts: [String: String] = [:]
    if let table = root["PROMPTS"]?.table {
      for key in table.keys {
        guard let s = table[key]?.string else { throw FileError("\(source): [PROMPTS] '\(key)' must be a string") }
        prompts[key] = s
      }
    }
    func rdp(_ s: String, _ at: String) throws -> String {
      try expandRDP(s, prompts: prompts, source: source, at: at)
    }
    func texts(_ key: String) throws -> [String]? {
      guard let value = constructor[key] else { return nil }
      if let s = value.string { return [try rdp(s, "[CONSTRUCTOR] \(key)")] }
      guard let list = value.array else {
        throw FileError("\(source): [CONSTRUCTOR] '\(key)' must be a string or a list of strings")
      }
      return try list.enumerated().map { i, v in
        guard let s = v.string else { throw FileError("\(source): [CONSTRUCTOR] '\(key)'[\(i)] must be a string") }
        return try rdp(s, "[CONSTRUCTOR] \(key)[\(i)]")
      }
    }
    guard let systemRaw = constructor["system"]?.string else {
      throw FileError("\(source): [CONSTRUCTOR] needs 'system' (a string)")
    }
    let system = try rdp(systemRaw, "[CONSTRUCTOR] system")
    guard let user = try texts("user"), !user.isEmpty else {
      throw FileError("\(source): [CONSTRUCTOR] needs 'user' (a string or a list, one per turn)")
    }
    let prefills = try texts("response_templates") ?? Array(repeating: "", count: user.count)
    let stops = try texts("stop_tags") ?? Array(repeating: "", count: user.count)
    guard prefills.count == user.count, stops.count == user.count else {
      throw FileError("\(source): [CONSTRUCTOR] has \(user.count) user turns, \(prefills.count) response_templates and \(stops.count) stop_tags; give one of each per turn (\"\" for none), as RadPrompter requires")
    }

    guard let schemas = root["SCHEMAS"]?.table, !schemas.keys.isEmpty else {
      throw FileError("\(source): no [SCHEMAS.<name>] tables; cxr label needs one per finding to label")
    }
    // TOML tables carry no order: the schemas keep the order of their headers in the file.
    let order = schemas.keys.sorted { a, b in
      (text.range(of: "[SCHEMAS.\(a)]")?.lowerBound ?? text.endIndex) < (text.range(of: "[SCHEMAS.\(b)]")?.lowerBound ?? text.endIndex)
    }
    var findings: [FindingSpec] = []
    var dependencies: [(index: Int, schema: String, condition: String, fallback: String)] = []
    for key in order {
      let at = "[SCHEMAS.\(key)]"
      guard let table = schemas[key]?.table else { throw FileError("\(source): \(at) must be a table") }
      let variable = table["variable_name"]?.string ?? key
      let type = table["type"]?.string ?? ""
      guard type == "select" else {
        throw FileError("\(source): \(at) has type '\(type)'; cxr label writes CheXpert labels (1.0/0.0/-1.0), so it reads 'select' schemas only")
      }
      guard let list = table["options"]?.array, !list.isEmpty else {
        throw FileError("\(source): \(at) needs 'options', a list of the answers to choose from")
      }
      let answers = try list.map { v -> String in
        guard let s = v.string else { throw FileError("\(source): \(at) 'options' must be strings") }
        return s
      }
      var values: [Double]
      if let given = table["values"]?.array {
        values = try given.map { v in
          guard let d = v.double ?? v.int.map(Double.init), [1.0, 0.0, -1.0].contains(d) else {
            throw FileError("\(source): \(at) 'values' must be 1.0, 0.0 or -1.0, one per option")
          }
          return d
        }
        guard values.count == answers.count else {
          throw FileError("\(source): \(at) has \(answers.count) options and \(values.count) values; give one value per option")
        }
      } else {
        values = []
        for a in answers {
          guard let v = chexpertValue(of: a) else {
            throw FileError("\(source): \(at) option '\(a)' has no CheXpert value; add values = [...] to the schema (1.0, 0.0 or -1.0 per option; RadPrompter ignores the key) or leave the schema out")
          }
          values.append(v)
        }
      }
      var placeholders: [String: String] = [:]
      for k in table.keys where !["variable_name", "type", "options", "hint", "show_options_in_hint", "depends_on", "values"].contains(k) {
        if let s = table[k]?.string { placeholders[k] = s }
      }
      var spec = FindingSpec(column: key, name: variable, hint: table["hint"]?.string ?? "",
                             options: zip(answers, values).map { AnswerOption(answer: $0, value: $1) })
      spec.answerKey = variable
      spec.placeholders = placeholders
      if let dep = table["depends_on"] {
        guard let d = dep.table, let parent = d["schema"]?.string, let condition = d["condition"]?.string,
              let fallback = d["default_value"]?.string else {
          throw FileError("\(source): \(at) 'depends_on' must be {schema = \"...\", condition = \"...\", default_value = \"...\"}")
        }
        dependencies.append((findings.count, parent, condition, fallback))
      }
      findings.append(spec)
    }
    // depends_on names the other schema by its variable_name (or its table name).
    for dep in dependencies {
      guard let parent = findings.first(where: { $0.name == dep.schema || $0.column == dep.schema }) else {
        throw FileError("\(source): [SCHEMAS.\(findings[dep.index].column)] depends on '\(dep.schema)', which no schema is called")
      }
      findings[dep.index].dependsOn = Dependency(finding: parent.column, condition: dep.condition, fallback: dep.fallback)
    }

    // RadPrompter's {{variable_name}} is cxr's {{finding}}; the rest keep their names.
    func convert(_ s: String) -> String { s.replacingOccurrences(of: "{{variable_name}}", with: "{{finding}}") }
    var description = ""
    if let meta = root["METADATA"]?.table {
      let version = meta["version"]?.string ?? meta["version"]?.double.map { "\($0)" } ?? meta["version"]?.int.map { "\($0)" } ?? ""
      description = [version.isEmpty ? "" : "RadPrompter prompt version \(version)", meta["description"]?.string ?? ""]
        .filter { !$0.isEmpty }.joined(separator: ": ")
    }
    return try PromptTemplate.make(
      source: source, name: name, description: description, system: convert(system), turns: user.map(convert),
      format: "", answerKey: "answer", reasoningKeys: [], maxTokens: RadPrompterPrompt.maxTokens, truncationMaxTokens: nil, finishReasons: nil,
      stop: [], turnStops: stops.map { $0.isEmpty ? [] : [$0] }, prefills: prefills.map(convert), findings: findings)
  }

  /// `rdp(a + b)` is the PROMPTS entries a and b joined; `rdp(a)` is entry a.
  static func expandRDP(_ s: String, prompts: [String: String], source: String, at: String) throws -> String {
    var out = ""
    var rest = Substring(s)
    while let open = rest.range(of: "rdp(") {
      guard let close = rest[open.upperBound...].firstIndex(of: ")") else {
        throw FileError("\(source): \(at): 'rdp(' is never closed with ')'")
      }
      out += rest[..<open.lowerBound]
      for name in rest[open.upperBound..<close].split(separator: "+").map({ $0.trimmingCharacters(in: .whitespaces) }) {
        guard let text = prompts[name] else {
          throw FileError("\(source): \(at): rdp(\(rest[open.upperBound..<close])) names '\(name)', which is not in [PROMPTS]")
        }
        out += text
      }
      rest = rest[rest.index(after: close)...]
    }
    return out + rest
  }

  /// The CheXpert value an option's word stands for, as RadPrompter's prompts spell them.
  static func chexpertValue(of option: String) -> Double? {
    switch AnswerParser.normalize(option) {
    case "present", "yes", "positive", "true": return 1.0
    case "absent", "no", "negative", "false", "notmentioned", "none", "notpresent": return 0.0
    case "indeterminate", "uncertain", "possible", "equivocal", "unclear", "maybe": return -1.0
    default: return nil
    }
  }
}
