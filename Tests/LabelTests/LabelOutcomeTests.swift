import Common
import Foundation
import TestSupport
import XCTest
@testable import Label

/// Answers that can't be trusted are not labels, and the outputs say so: cut-off answers,
/// draft-then-final answers, per-finding cells, errors.csv, the summary and the exit status.
final class LabelOutcomeTests: XCTestCase {
  /// The issue's case: a draft guess, then reasoning cut by max_tokens before the final answer.
  static let cutAfterDraft = "positive [[style:draftfinal]] [[long:40]]"

  func testAnswerCutAtMaxTokensIsTruncatedNeverALabel() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-outcome")
    var settings = Fixtures.settings([server])
    settings.responseFormat = false
    let log = LogLines()
    let summaries = try await Fixtures.run(settings, templates: [try Fixtures.single()],
                                           reports: Fixtures.reports([Self.cutAfterDraft, "clear", "positive [[style:draftfinal]]"]),
                                           out: out, inFlight: 1, log: log)
    // r0's text starts with the draft {"answer": "Absent"}: read as a label it would be wrong.
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr1,0.0\nr2,1.0\n")
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("errors.csv")),
                   "template,id,finding,kind,reason\nsingle,r0,Pneumothorax,truncated,finish_reason 'length' after 32 completion tokens (max_tokens 32)\n")
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    let cut = answers.first { $0["id"] as? String == "r0" }!
    XCTAssertEqual(cut["outcome"] as? String, "truncated")
    XCTAssertEqual(cut["parsed"] as? String, "TRUNCATED")
    XCTAssertTrue(cut["value"] is NSNull)
    XCTAssertEqual(cut["finish_reason"] as? String, "length")
    XCTAssertEqual(cut["max_tokens"] as? Int, 32)
    XCTAssertEqual(cut["answer_tokens"] as? Int, 32)
    XCTAssertEqual(cut["completion_tokens"] as? Int, 32)
    XCTAssertTrue((cut["response"] as? String ?? "").hasPrefix(#"Draft: {"answer": "Absent"}"#), "the cut text is kept for review")
    XCTAssertEqual(answers.first { $0["id"] as? String == "r2" }?["finish_reason"] as? String, "stop")
    // The draft-then-final answer that fit is read as its final answer.
    XCTAssertEqual(answers.first { $0["id"] as? String == "r2" }?["parsed"] as? String, "Present")

    let s = summaries[0]
    XCTAssertEqual(s.outcomes, ["strict": 1, "recovered": 1, "default": 0, "error": 0, "truncated": 1, "failed": 0])
    XCTAssertEqual(s.unlabelled, 1)
    XCTAssertEqual(s.requests, 3)
    XCTAssertEqual(s.succeeded, 2)
    XCTAssertEqual(s.longestCompleteAnswer, 11)
    XCTAssertEqual(s.suggestedMaxTokens, 64, "twice the limit the answer was still cut at, in steps of 64")
    XCTAssertTrue(s.line.hasSuffix("; 1 answers cut at max_tokens 32: suggested max_tokens 64 (the longest complete answer used 11 tokens)"), s.line)
    XCTAssertTrue(log.all.contains("single: r0 Pneumothorax: TRUNCATED: finish_reason 'length' after 32 completion tokens (max_tokens 32)"), "\(log.all)")
    XCTAssertEqual(server.chatRequests.map { $0["finish_reason"] as? String }, ["length", "stop", "stop"])
    let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
    let strategy = (summary["strategies"] as! [[String: Any]])[0]
    XCTAssertEqual(strategy["suggested_max_tokens"] as? Int, 64)
    XCTAssertEqual(strategy["answers_labelled"] as? Int, 2)
    XCTAssertEqual(summary["unlabelled_answers"] as? Int, 1)

    // Asked again, a truncated answer is not re-sent (temperature 0 gives the same cut text).
    let before = server.chatRequests.count
    _ = try await Fixtures.run(settings, templates: [try Fixtures.single()],
                               reports: Fixtures.reports([Self.cutAfterDraft, "clear", "positive [[style:draftfinal]]"]), out: out)
    XCTAssertEqual(server.chatRequests.count, before)
  }

  func testTruncatedAnswerIsAskedOnceMoreWithTheTemplatesLargerMaxTokens() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-outcome")
    var settings = Fixtures.settings([server])
    settings.responseFormat = false
    let template = try Fixtures.single(extra: "truncation_max_tokens: 128")
    let log = LogLines()
    let summaries = try await Fixtures.run(settings, templates: [template],
                                           reports: Fixtures.reports([Self.cutAfterDraft, "clear [[long:200]]"]),
                                           out: out, inFlight: 1, log: log)
    // r0 fits in 128; r1 (200 words of reasoning) is cut again and stays TRUNCATED.
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,1.0\n")
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("errors.csv")),
                   "template,id,finding,kind,reason\nsingle,r1,Pneumothorax,truncated,finish_reason 'length' after 128 completion tokens (max_tokens 128)\n")
    let posts = server.chatRequests
    XCTAssertEqual(posts.map { $0["max_tokens"] as? Int }, [32, 128, 32, 128])
    XCTAssertEqual(posts.map { $0["finish_reason"] as? String }, ["length", "stop", "length", "length"])
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    let r0 = answers.first { $0["id"] as? String == "r0" }!
    XCTAssertEqual(r0["attempts"] as? Int, 2)
    XCTAssertEqual(r0["max_tokens"] as? Int, 128)
    XCTAssertEqual(r0["answer_tokens"] as? Int, 51)
    XCTAssertEqual(r0["completion_tokens"] as? Int, 32 + 51)
    XCTAssertEqual(r0["outcome"] as? String, "recovered")
    let s = summaries[0]
    XCTAssertEqual(s.outcomes["truncated"], 1)
    XCTAssertEqual(s.fitAfterRetry, 1)
    XCTAssertEqual(s.suggestedMaxTokens, 256)
    XCTAssertTrue(log.all.contains("answer stopped with finish_reason 'length' after 32 tokens; asking again with max_tokens 128"), "\(log.all)")
    // The retry size is part of the template's identity.
    XCTAssertNotEqual(template.rendered(for: template.findings[0]).hash(temperature: 0, seed: 7),
                      try Fixtures.single().rendered(for: template.findings[0]).hash(temperature: 0, seed: 7))
  }

  func testAFailedFindingLeavesItsCellEmptyAndTheOthersStay() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-outcome")
    let reports = Fixtures.reports(["positive [[status:500x99@fracture]]", "clear", "positive [[status:500x99]]",
                                    "clear [[style:malformed]]"])
    var settings = Fixtures.settings([server])
    settings.maxRetries = 1
    settings.responseFormat = false
    let summaries = try await Fixtures.run(settings, templates: [try Fixtures.zeroShot()], reports: reports, out: out)
    let root = "\(server.url.absoluteString)/v1"
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("zero-shot.csv")),
                   "id,Pneumothorax,Fracture\nr0,1.0,\nr1,0.0,0.0\n")
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("errors.csv")), """
      template,id,finding,kind,reason
      zero-shot,r0,Fracture,failed,\(root): HTTP 500 (gave up after 2 attempts)
      zero-shot,r2,Pneumothorax,failed,\(root): HTTP 500 (gave up after 2 attempts)
      zero-shot,r2,Fracture,failed,\(root): HTTP 500 (gave up after 2 attempts)
      zero-shot,r3,Pneumothorax,error,no answer among Present/Absent could be read from the reply (23 characters; see answers.jsonl)
      zero-shot,r3,Fracture,error,no answer among Present/Absent could be read from the reply (23 characters; see answers.jsonl)

      """)
    let s = summaries[0]
    XCTAssertEqual(s.outcomes, ["strict": 3, "recovered": 0, "default": 0, "error": 2, "truncated": 0, "failed": 3])
    XCTAssertEqual([s.rowsComplete, s.rowsPartial, s.rowsLeftOut], [1, 1, 2])
    XCTAssertEqual(s.succeeded, 3, "throughput counts labelled answers only")
    XCTAssertEqual(s.reports, 2, "3 labelled answers of 2 findings each")
    XCTAssertEqual(s.unlabelled, 5)
  }

  /// The command as a user runs it: exit status 3 when answers have no label, 0 within
  /// --allow-failures, with the reason on stderr.
  func testExitStatusSaysWhenAnswersHaveNoLabel() throws {
    let server = try FakeServer()
    let dir = try TestEnv.scratch("cxr-label-exit")
    let reportsCSV = dir.appendingPathComponent("reports.csv")
    try "SOPInstanceUID,Report\n1.1,positive\n1.2,clear\n1.3,\(Self.cutAfterDraft)\n".write(to: reportsCSV, atomically: true, encoding: .utf8)
    let prompt = dir.appendingPathComponent("single.yaml")
    try """
      name: single
      system: You read reports.
      turns: ["Report: {{report}}\\nIs there {{finding}}? {{format}}"]
      format: 'Answer {"answer": one of {{options}}} in <answer></answer>.'
      max_tokens: 32
      stop: ["</answer>"]
      findings:
        - column: Pneumothorax
          name: pneumothorax
          options: [{answer: Present, value: 1.0}, {answer: Absent, value: 0.0}]
      """.write(to: prompt, atomically: true, encoding: .utf8)
    func label(_ out: String, _ extra: [String]) throws -> (Int32?, String, String) {
      let p = try WatchedProcess(try CXRBinary.url(for: Self.self),
                                 ["label", "--reports", reportsCSV.path, "--prompt", prompt.path, "--server", server.url.absoluteString,
                                  "--model", "test-model", "--out", dir.appendingPathComponent(out).path, "--no-response-format",
                                  "--in-flight", "2"] + extra)
      let status = p.wait(timeout: 60)
      return (status, p.stdout, p.stderr)
    }
    let (status, stdout, stderr) = try label("out", [])
    XCTAssertEqual(status, 3, stderr)
    XCTAssertTrue(stdout.contains("answers: 2 strict, 0 recovered, 0 ERROR, 1 TRUNCATED, 0 failed"), stdout)
    XCTAssertTrue(stderr.hasSuffix("1 of 3 answers have no label (listed in \(dir.path)/out/errors.csv); running the same command again asks again for the failed ones; --allow-failures 0 allows 0\n"), stderr)
    XCTAssertEqual(try Fixtures.text(dir.appendingPathComponent("out/single.csv")), "id,Pneumothorax\n1.1,1.0\n1.2,0.0\n")

    let (allowed, _, allowedErr) = try label("out", ["--allow-failures", "40%"])
    XCTAssertEqual(allowed, 0, allowedErr)
    let (counted, _, countedErr) = try label("out", ["--allow-failures", "1"])
    XCTAssertEqual(counted, 0, countedErr)
    let (bad, _, badErr) = try label("out", ["--allow-failures", "some"])
    XCTAssertEqual(bad, 64)
    XCTAssertTrue(badErr.contains("--allow-failures 'some' is neither a count (e.g. 25) nor a percentage (e.g. 0.5%)"), badErr)
  }
}
