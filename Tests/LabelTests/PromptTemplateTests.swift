import Common
import Foundation
import TestSupport
import XCTest
@testable import Label

final class PromptTemplateTests: XCTestCase {
  func testShippedTemplatesLoadAndRender() throws {
    for template in [try Fixtures.zeroShot(), try Fixtures.chainOfThought()] {
      XCTAssertEqual(template.findings.map(\.column), ["Pneumothorax", "Fracture"])
      XCTAssertEqual(template.findings.map(\.name), ["pneumothorax", "rib fracture"])
      let p = template.rendered(for: template.findings[1])
      let user = p.userTurn(0, report: "OLD LEFT RIB FRACTURES.")
      XCTAssertTrue(user.contains("<report>\nOLD LEFT RIB FRACTURES.\n</report>"), user)
      XCTAssertTrue(user.contains("does this report describe rib fracture?"), user)
      XCTAssertTrue(user.contains("\"Present\", \"Absent\""), user)
      XCTAssertTrue(user.contains("between <answer> and </answer>"), user)
      XCTAssertFalse(user.contains("{{"), user)
      XCTAssertEqual(template.stop, ["</answer>"])
    }
    let cot = try Fixtures.chainOfThought()
    XCTAssertEqual(cot.reasoningKeys, ["initial_answer", "critique"])
    XCTAssertTrue(cot.turns[0].contains("in at most three sentences"))
  }

  func testResponseSchemaPutsReasoningBeforeTheAnswer() throws {
    let cot = try Fixtures.chainOfThought()
    XCTAssertEqual(cot.rendered(for: cot.findings[0]).responseSchema.serialized,
                   #"{"type":"object","properties":{"initial_answer":{"type":"string"},"critique":{"type":"string"},"answer":{"type":"string","enum":["Present","Absent"]}},"required":["initial_answer","critique","answer"],"additionalProperties":false}"#)
  }

  func testHashIsStableAndCoversWhatShapesTheAnswer() throws {
    let zs = try Fixtures.zeroShot()
    let a = zs.rendered(for: zs.findings[0])
    let h = a.hash(temperature: 0, seed: 42)
    XCTAssertEqual(h.count, 16)
    XCTAssertTrue(h.allSatisfy { $0.isHexDigit })
    XCTAssertEqual(h, try Fixtures.zeroShot().rendered(for: zs.findings[0]).hash(temperature: 0, seed: 42))
    XCTAssertNotEqual(h, zs.rendered(for: zs.findings[1]).hash(temperature: 0, seed: 42))
    XCTAssertNotEqual(h, a.hash(temperature: 0, seed: 43))
    XCTAssertNotEqual(h, a.hash(temperature: 0.7, seed: 42))
    let cot = try Fixtures.chainOfThought()
    XCTAssertNotEqual(h, cot.rendered(for: cot.findings[0]).hash(temperature: 0, seed: 42))
  }

  func testSHA256MatchesPythonHashlib() throws {
    let inputs = ["", "abc", String(repeating: "a", count: 55), String(repeating: "b", count: 64),
                  "pneumothorax → ünïcode", String(repeating: "xyz", count: 1000)]
    let out = try Python.json("""
      import hashlib
      inputs = json.loads(sys.argv[1])
      print(json.dumps([hashlib.sha256(s.encode()).hexdigest() for s in inputs]))
      """, args: [String(decoding: try JSONSerialization.data(withJSONObject: inputs), as: UTF8.self)]) as! [String]
    XCTAssertEqual(inputs.map(SHA256.hex), out)
  }

  func testBadTemplatesSayWhatIsWrong() {
    func message(_ yaml: String) -> String {
      do { _ = try PromptTemplate.parse(yaml, source: "p.yaml"); return "no error" } catch { return "\(error)" }
    }
    let findings = "findings: [{column: Pneumothorax, options: [{answer: Present, value: 1.0}]}]"
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\ntemprature: 0\n\(findings)"),
                   "p.yaml:3: unknown key 'temprature'; known keys at the top level: name, description, system, turns, format, answer_key, reasoning_keys, max_tokens, truncation_max_tokens, finish_reasons, stop, turn_stops, prefills, findings")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\nmax_token: 9\n\(findings)"),
                   "p.yaml:3: unknown key 'max_token'; did you mean 'max_tokens'? known keys at the top level: name, description, system, turns, format, answer_key, reasoning_keys, max_tokens, truncation_max_tokens, finish_reasons, stop, turn_stops, prefills, findings")
    XCTAssertEqual(message("name: x\nturns: ['{{report}} {{findng}}']\n\(findings)"),
                   "p.yaml: unknown placeholder '{{findng}}'; use {{report}}, {{finding}}, {{hint}}, {{options}} or {{format}}")
    XCTAssertEqual(message("name: x\nturns: ['Is there {{finding}}?']\n\(findings)"),
                   "p.yaml: no turn contains {{report}}, so the model would never see the report")
    XCTAssertEqual(message("turns: ['{{report}}']\n\(findings)"), "p.yaml: missing key 'name'")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\nfindings: [{column: P, options: [{answer: Sure, value: 2}]}]"),
                   "p.yaml:3: 'findings[0].options[0].value' must be 1.0, 0.0 or -1.0")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\nmax_tokens: many\n\(findings)"),
                   "p.yaml:3: 'max_tokens' must be a whole number, not text ('many')")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\nfindings: [{column: P, colour: red, options: []}]"),
                   "p.yaml:3: unknown key 'findings[0].colour'; known keys under 'findings[0]': column, name, hint, answer_key, depends_on, options")
    XCTAssertEqual(message("name: x\nturns: []\n\(findings)"), "p.yaml:2: 'turns' needs at least one user turn")
    XCTAssertEqual(message("- a\n- b"), "p.yaml: the top level must be a mapping of keys")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\nmax_tokens: 64\ntruncation_max_tokens: 64\n\(findings)"),
                   "p.yaml:4: 'truncation_max_tokens' (64) must be larger than 'max_tokens' (64): it is the retry for an answer cut at max_tokens")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}', 'Now answer.']\nprefills: ['<json>']\n\(findings)"),
                   "p.yaml:3: 'prefills' has 1 entries for 2 turns; give one per turn (\"\" for none)")
    let two = "findings: [{column: P, options: [{answer: Present, value: 1.0}, {answer: Absent, value: 0.0}]}, "
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\n\(two){column: T, depends_on: {finding: Q, condition: Present, default: Absent}, options: [{answer: Absent, value: 0.0}]}]"),
                   "p.yaml: finding 'T' depends on 'Q', which is not a finding before it; list the one it depends on first")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\n\(two){column: T, depends_on: {finding: P, condition: Yes, default: Absent}, options: [{answer: Absent, value: 0.0}]}]"),
                   "p.yaml: finding 'T' depends on 'P' being 'Yes', which is not one of its options (\"Present\", \"Absent\")")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\n\(two){column: T, depends_on: {finding: P, condition: Present, default: No}, options: [{answer: Absent, value: 0.0}]}]"),
                   "p.yaml: finding 'T' falls back to 'No', which is not one of its options (\"Absent\")")
    XCTAssertEqual(message("name: x\nturns: ['{{report}}']\n\(two){column: P, options: [{answer: Absent, value: 0.0}]}]"),
                   "p.yaml: two findings share the column 'P'; each column is one finding")
    // A bare Yes is the answer's text (the strict decoder reads the scalar as written).
    XCTAssertEqual(try PromptTemplate.parse("name: x\nturns: ['{{report}}']\nfindings: [{column: P, options: [{answer: Yes, value: 1}]}]",
                                            source: "p.yaml").findings[0].options, [AnswerOption(answer: "Yes", value: 1)])
  }

  func testJSONTemplateFilesWorkToo() throws {
    let t = try PromptTemplate.parse(#"{"name": "j", "turns": ["{{report}} -> {{finding}}"], "findings": [{"column": "Fracture", "options": [{"answer": "Yes", "value": 1.0}, {"answer": "No", "value": 0}]}]}"#, source: "j.json")
    XCTAssertEqual(t.rendered(for: t.findings[0]).userTurn(0, report: "R"), "R -> Fracture")
    XCTAssertEqual(t.findings[0].options, [AnswerOption(answer: "Yes", value: 1.0), AnswerOption(answer: "No", value: 0.0)])
  }
}
