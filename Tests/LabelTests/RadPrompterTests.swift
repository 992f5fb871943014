import Common
import Foundation
import TestSupport
import XCTest
@testable import Label

/// RadPrompter's TOML prompt files, read as they are (its documented format: METADATA, PROMPTS
/// with rdp() joins, CONSTRUCTOR turns with response templates and stop tags, SCHEMAS with
/// select options, hints, depends_on and extra keys as placeholders).
final class RadPrompterTests: XCTestCase {
  static let toml = #"""
    [METADATA]
    version = 2.0
    description = "Pneumothorax and rib fractures, RadPrompter style"

    [PROMPTS]
    system_prompt = "You are a radiologist who extracts findings from chest X-ray reports."
    intro = """
    Here is the report:
    <report>
    {{report}}
    </report>
    """
    question = """
    Extract this data element: {{variable_name}}
    {{hint}}
    Reply in JSON between <json> and </json>:
    <json>
    {"{{variable_name}}": "answer"}
    </json>
    """
    prefill = "<json>\n{\"{{variable_name}}\" : \""

    [CONSTRUCTOR]
    system = "rdp(system_prompt)"
    user = ["rdp(intro + question)"]
    response_templates = ["rdp(prefill)"]
    stop_tags = ["</json>"]

    [SCHEMAS]

    [SCHEMAS.Pneumothorax]
    variable_name = "Pneumothorax"
    type = "select"
    options = ["Present", "Absent"]
    hint = "Present if the report describes a pneumothorax now."
    show_options_in_hint = true

    [SCHEMAS.Tension]
    variable_name = "Tension pneumothorax"
    type = "select"
    options = ["Present", "Absent"]
    hint = "Present if the pneumothorax is under tension."
    depends_on = {schema = "Pneumothorax", condition = "Present", default_value = "Absent"}

    [SCHEMAS.Fracture]
    variable_name = "Rib fracture"
    type = "select"
    options = ["Present", "Absent", "Indeterminate"]
    hint = "Present for any rib fracture."
    """#

  /// The same prompt as a cxr YAML template.
  static let yaml = #"""
    name: equivalent
    system: "You are a radiologist who extracts findings from chest X-ray reports."
    turns:
      - "Here is the report:\n<report>\n{{report}}\n</report>\nExtract this data element: {{finding}}\n{{hint}}\nReply in JSON between <json> and </json>:\n<json>\n{\"{{finding}}\": \"answer\"}\n</json>\n"
    prefills: ["<json>\n{\"{{finding}}\" : \""]
    turn_stops: ["</json>"]
    max_tokens: 4096
    findings:
      - column: Pneumothorax
        name: Pneumothorax
        answer_key: Pneumothorax
        hint: Present if the report describes a pneumothorax now.
        options: [{answer: Present, value: 1.0}, {answer: Absent, value: 0.0}]
      - column: Tension
        name: Tension pneumothorax
        answer_key: Tension pneumothorax
        hint: Present if the pneumothorax is under tension.
        depends_on: {finding: Pneumothorax, condition: Present, default: Absent}
        options: [{answer: Present, value: 1.0}, {answer: Absent, value: 0.0}]
      - column: Fracture
        name: Rib fracture
        answer_key: Rib fracture
        hint: Present for any rib fracture.
        options: [{answer: Present, value: 1.0}, {answer: Absent, value: 0.0}, {answer: Indeterminate, value: -1.0}]
    """#

  func write(_ text: String, _ name: String) throws -> URL {
    let url = try TestEnv.scratch("cxr-radprompter").appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  func testTOMLAndTheEquivalentYAMLSendTheSameRequests() async throws {
    let toml = try PromptTemplate.load(try write(Self.toml, "pneumothorax.toml"))
    XCTAssertEqual(toml.name, "pneumothorax")
    XCTAssertEqual(toml.findings.map(\.column), ["Pneumothorax", "Tension", "Fracture"], "the file's order")
    XCTAssertEqual(toml.findings[2].options.map(\.value), [1.0, 0.0, -1.0])
    XCTAssertEqual(toml.findings[1].dependsOn, Dependency(finding: "Pneumothorax", condition: "Present", fallback: "Absent"))
    XCTAssertEqual(toml.turnStops, [["</json>"]])
    XCTAssertEqual(toml.maxTokens, 4096)
    XCTAssertEqual(toml.description, "RadPrompter prompt version 2.0: Pneumothorax and rib fractures, RadPrompter style")
    let yaml = try PromptTemplate.load(try write(Self.yaml, "equivalent.yaml"))

    var bodies: [[[String: Any]]] = []
    var outs: [URL] = []
    for template in [toml, yaml] {
      let server = try FakeServer(["--log-bodies"])
      let out = try TestEnv.scratch("cxr-radprompter-run")
      let client = ChatClient(settings: Fixtures.settings([server]), maxInFlight: 1)
      let runner = try LabelRunner(client: client, templates: [template], reports: Fixtures.reports(["positive", "clear"]),
                                   outDir: out, inFlight: 1, log: { _ in })
      runner.radPrompterCSV = true
      _ = try await runner.run()
      await client.shutdown()
      bodies.append(server.chatRequests.map { $0["body"] as! [String: Any] })
      outs.append(out)
    }
    // r1's Tension is not asked: its Pneumothorax answer is Absent, so it takes the default.
    XCTAssertEqual(bodies[0].count, 5)
    XCTAssertEqual(bodies[0].count, bodies[1].count)
    for (a, b) in zip(bodies[0], bodies[1]) { XCTAssertEqual(a as NSDictionary, b as NSDictionary) }
    let first = bodies[0][0]
    let messages = first["messages"] as! [[String: String]]
    XCTAssertEqual(messages.map { $0["role"]! }, ["system", "user", "assistant"])
    XCTAssertEqual(messages[0]["content"], "You are a radiologist who extracts findings from chest X-ray reports.")
    XCTAssertEqual(messages[1]["content"], "Here is the report:\n<report>\npositive\n</report>\nExtract this data element: Pneumothorax\nPresent if the report describes a pneumothorax now.\nReply in JSON between <json> and </json>:\n<json>\n{\"Pneumothorax\": \"answer\"}\n</json>\n")
    XCTAssertEqual(messages[2]["content"], "<json>\n{\"Pneumothorax\" : \"")
    XCTAssertEqual(first["stop"] as? [String], ["</json>"])
    XCTAssertEqual(first["max_tokens"] as? Int, 4096)
    XCTAssertEqual(first["continue_final_message"] as? Bool, true)
    XCTAssertNil(first["response_format"], "a prefilled answer is not schema-constrained")

    XCTAssertEqual(try Fixtures.text(outs[0].appendingPathComponent("pneumothorax.csv")),
                   "id,Pneumothorax,Tension,Fracture\nr0,1.0,1.0,1.0\nr1,0.0,0.0,0.0\n")
    let answers = try Fixtures.jsonl(outs[0].appendingPathComponent("answers.jsonl"))
    let fallback = answers.first { $0["id"] as? String == "r1" && $0["finding"] as? String == "Tension" }!
    XCTAssertEqual(fallback["outcome"] as? String, "default")
    XCTAssertEqual(fallback["attempts"] as? Int, 0)
    XCTAssertEqual(answers.first { $0["id"] as? String == "r0" && $0["finding"] as? String == "Pneumothorax" }?["response"] as? String,
                   "<json>\n{\"Pneumothorax\" : \"Present\"}")
    let rp = try Fixtures.text(outs[0].appendingPathComponent("pneumothorax.radprompter.csv")).split(separator: "\n").map(String.init)
    XCTAssertEqual(Array(rp.prefix(4)), ["#Written by: cxr label", "#Model: test-model", "#Seed: 7", "#Temperature: 0.0"])
    XCTAssertEqual(rp[5], "#Prompt Version: RadPrompter prompt version 2.0: Pneumothorax and rib fractures, RadPrompter style")
    XCTAssertTrue(rp[6].hasPrefix("#Prompt Hash: "))
    XCTAssertEqual(Array(rp.suffix(3)), [
      #""index","Pneumothorax_response","Tension pneumothorax_response","Rib fracture_response","id""#,
      #""0","Present","Present","Present","r0""#,
      #""1","Absent","Absent","Absent","r1""#,
    ])
  }

  func testSchemaKeysArePlaceholdersAndBadFilesNameTheProblem() throws {
    let withFocus = Self.toml.replacingOccurrences(of: "{{hint}}\n", with: "{{hint}}\n{{focus}}\n")
      .replacingOccurrences(of: "show_options_in_hint = true", with: "show_options_in_hint = true\nfocus = \"Look at the pleura.\"")
      .replacingOccurrences(of: "default_value = \"Absent\"}", with: "default_value = \"Absent\"}\nfocus = \"Look at the mediastinum.\"")
      .replacingOccurrences(of: "hint = \"Present for any rib fracture.\"", with: "hint = \"Present for any rib fracture.\"\nfocus = \"Look at the ribs.\"")
    let t = try PromptTemplate.load(try write(withFocus, "focus.toml"))
    XCTAssertTrue(t.rendered(for: t.findings[0]).userTurn(0, report: "R").contains("now.\nLook at the pleura.\nReply"))
    XCTAssertTrue(t.rendered(for: t.findings[2]).userTurn(0, report: "R").contains("fracture.\nLook at the ribs.\nReply"))

    func error(_ text: String) -> String {
      do { _ = try PromptTemplate.load(try write(text, "bad.toml")); return "no error" } catch { return "\(error)" }
    }
    XCTAssertTrue(error(Self.toml.replacingOccurrences(of: "rdp(intro + question)", with: "rdp(intro + questions)"))
      .hasSuffix("bad.toml: [CONSTRUCTOR] user[0]: rdp(intro + questions) names 'questions', which is not in [PROMPTS]"))
    XCTAssertTrue(error(Self.toml.replacingOccurrences(of: #"options = ["Present", "Absent", "Indeterminate"]"#, with: #"options = ["Left", "Right"]"#))
      .hasSuffix("bad.toml: [SCHEMAS.Fracture] option 'Left' has no CheXpert value; add values = [...] to the schema (1.0, 0.0 or -1.0 per option; RadPrompter ignores the key) or leave the schema out"))
    XCTAssertTrue(error(Self.toml.replacingOccurrences(of: "variable_name = \"Rib fracture\"\ntype = \"select\"", with: "variable_name = \"Rib fracture\"\ntype = \"string\""))
      .hasSuffix("bad.toml: [SCHEMAS.Fracture] has type 'string'; cxr label writes CheXpert labels (1.0/0.0/-1.0), so it reads 'select' schemas only"))
    XCTAssertTrue(error(Self.toml.replacingOccurrences(of: "schema = \"Pneumothorax\"", with: "schema = \"Effusion\""))
      .hasSuffix("bad.toml: [SCHEMAS.Tension] depends on 'Effusion', which no schema is called"))
    XCTAssertTrue(error(Self.toml.replacingOccurrences(of: "stop_tags = [\"</json>\"]", with: "stop_tags = [\"</json>\", \"\"]"))
      .hasSuffix("bad.toml: [CONSTRUCTOR] has 1 user turns, 1 response_templates and 2 stop_tags; give one of each per turn (\"\" for none), as RadPrompter requires"))
    XCTAssertTrue(error("[CONSTRUCTOR\nsystem = 1").contains("bad.toml:1:"), error("[CONSTRUCTOR\nsystem = 1"))
    // Options with values given by the file (a key RadPrompter ignores) are read as given.
    let valued = Self.toml.replacingOccurrences(of: #"options = ["Present", "Absent", "Indeterminate"]"#,
                                                with: "options = [\"Seen\", \"Not seen\"]\nvalues = [1.0, 0.0]")
    XCTAssertEqual(try PromptTemplate.load(try write(valued, "valued.toml")).findings[2].options,
                   [AnswerOption(answer: "Seen", value: 1.0), AnswerOption(answer: "Not seen", value: 0.0)])
  }
}
