import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TestSupport
import XCTest
@testable import Label

/// End-to-end runs against the fake OpenAI-compatible server on loopback.
final class LabelRunTests: XCTestCase {
  func testZeroShotWithResponseFormatWritesLabelsAndAnswers() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports(["Large positive finding.", "Clear lungs. [[answer:Present]]", "Nothing."])
    let summaries = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.zeroShot()],
                                           reports: reports, out: out)
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("zero-shot.csv"), encoding: .utf8),
                   "id,Pneumothorax,Fracture\nr0,1.0,1.0\nr1,1.0,1.0\nr2,0.0,0.0\n")
    let s = summaries[0]
    XCTAssertEqual(s.reports, 3)
    XCTAssertEqual(s.requests, 6)
    XCTAssertEqual(s.outcomes, ["strict": 6, "recovered": 0, "default": 0, "error": 0, "truncated": 0, "failed": 0])
    XCTAssertEqual(s.latencies.count, 6)
    XCTAssertGreaterThan(s.completionTokens, 0)

    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertEqual(answers.count, 6)
    let zs = try Fixtures.zeroShot()
    let hash = zs.rendered(for: zs.findings[0]).hash(temperature: 0, seed: 7)
    let first = answers.first { $0["id"] as? String == "r1" && $0["finding"] as? String == "Pneumothorax" }!
    XCTAssertEqual(first["template_hash"] as? String, hash)
    XCTAssertEqual(first["template"] as? String, "zero-shot")
    XCTAssertEqual(first["model"] as? String, "test-model")
    XCTAssertEqual(first["response"] as? String, #"{"answer": "Present"}"#)
    XCTAssertEqual(first["parsed"] as? String, "Present")
    XCTAssertEqual(first["value"] as? Double, 1.0)
    XCTAssertEqual(first["outcome"] as? String, "strict")
    XCTAssertEqual(first["response_format"] as? Bool, true)
    XCTAssertEqual(first["completion_tokens"] as? Int, 2)
    XCTAssertGreaterThan(first["prompt_tokens"] as? Int ?? 0, 20)
    XCTAssertNotNil(first["latency_s"] as? Double)

    // The wire: model, temperature 0, seed, max_tokens, response_format (no stop with a schema).
    let posts = server.chatRequests
    XCTAssertEqual(posts.count, 6)
    for p in posts {
      XCTAssertEqual(p["model"] as? String, "test-model")
      XCTAssertEqual(p["temperature"] as? Int, 0)
      XCTAssertEqual(p["seed"] as? Int, 7)
      XCTAssertEqual(p["max_tokens"] as? Int, 64)
      XCTAssertEqual(p["response_format"] as? Bool, true)
      XCTAssertEqual(p["roles"] as? [String], ["system", "user"])
    }
    XCTAssertEqual(server.requests.filter { $0["method"] as? String == "GET" }.count, 1, "one health check")
  }

  func testServerThatRejectsResponseFormatFallsBackToTags() async throws {
    let server = try FakeServer(["--reject-response-format"])
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports(["a positive one", "a clear one", "another positive"])
    let summaries = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                                           reports: reports, out: out, inFlight: 1)
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("single.csv"), encoding: .utf8),
                   "id,Pneumothorax\nr0,1.0\nr1,0.0\nr2,1.0\n")
    XCTAssertEqual(summaries[0].outcomes["strict"], 3)
    let posts = server.chatRequests
    // One rejected request, then plain requests with the stop sequence and tag answers.
    XCTAssertEqual(posts.map { $0["status"] as? Int }, [400, 200, 200, 200])
    XCTAssertEqual(posts.map { $0["response_format"] as? Bool }, [true, false, false, false])
    XCTAssertEqual(posts[1]["stop"] as? [String], ["</answer>"])
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertEqual(answers[0]["response"] as? String, #"The report was read. <answer>{"answer": "Present"}"#)
    XCTAssertEqual(answers[0]["response_format"] as? Bool, false)
  }

  func testRetriesOn429And5xxAndTimeoutsThenErrorRowsNeverACrash() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports(["positive [[status:503x2]]", "clear [[status:429x1]]",
                                    "positive [[slow:3x1]]", "positive [[status:500x99]]", "clear [[status:502x1]]"])
    var settings = Fixtures.settings([server])
    settings.timeout = 1.0
    let log = LogLines()
    let summaries = try await Fixtures.run(settings, templates: [try Fixtures.single()], reports: reports, out: out,
                                           inFlight: 5, log: log)
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    let byId = Dictionary(uniqueKeysWithValues: answers.map { ($0["id"] as! String, $0) })
    XCTAssertEqual(byId["r0"]?["attempts"] as? Int, 3)
    XCTAssertEqual(byId["r1"]?["attempts"] as? Int, 2)
    XCTAssertEqual(byId["r2"]?["attempts"] as? Int, 2, "the slow first attempt timed out and was retried")
    XCTAssertEqual(byId["r4"]?["attempts"] as? Int, 2)
    XCTAssertEqual(byId["r3"]?["attempts"] as? Int, 4, "1 + maxRetries 3")
    XCTAssertEqual(byId["r3"]?["outcome"] as? String, "failed")
    XCTAssertEqual(byId["r3"]?["parsed"] as? String, "ERROR")
    XCTAssertTrue(byId["r3"]?["response"] is NSNull)
    XCTAssertEqual(byId["r3"]?["error"] as? String, "\(server.url.absoluteString)/v1: HTTP 500 (gave up after 4 attempts)")
    XCTAssertEqual(summaries[0].outcomes, ["strict": 4, "recovered": 0, "default": 0, "error": 0, "truncated": 0, "failed": 1])
    // The failed report gets no row: a blank would read as "not mentioned".
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("single.csv"), encoding: .utf8),
                   "id,Pneumothorax\nr0,1.0\nr1,0.0\nr2,1.0\nr4,0.0\n")
    XCTAssertEqual(summaries[0].rowsLeftOut, 1)
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("errors.csv")),
                   "template,id,finding,kind,reason\nsingle,r3,Pneumothorax,failed,\(server.url.absoluteString)/v1: HTTP 500 (gave up after 4 attempts)\n")
    XCTAssertTrue(log.all.contains("single: r3 Pneumothorax: \(server.url.absoluteString)/v1: HTTP 500 (gave up after 4 attempts)"), "\(log.all)")
    XCTAssertTrue(log.all.contains { $0.hasPrefix("retrying in ") && $0.hasSuffix("/v1: timed out") }, "\(log.all)")

    // A rerun asks again only for the failed request (the server still fails it: same error row).
    let before = server.chatRequests.count
    _ = try await Fixtures.run(settings, templates: [try Fixtures.single()], reports: reports, out: out)
    XCTAssertEqual(server.chatRequests.count - before, 4)
  }

  func testRecoveryOutcomesAreCountedAndRawTextKept() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports([
      "positive [[style:fenced]]", "positive [[style:prose]]", "clear [[style:yes]]", "positive [[style:bool]]",
      "positive [[style:misspelled]]", "positive [[style:malformed]]", "clear [[style:bare]]", "clear",
    ])
    var settings = Fixtures.settings([server])
    settings.responseFormat = false
    let summaries = try await Fixtures.run(settings, templates: [try Fixtures.single()], reports: reports, out: out)
    XCTAssertEqual(summaries[0].outcomes, ["strict": 1, "recovered": 6, "default": 0, "error": 1, "truncated": 0, "failed": 0])
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("single.csv"), encoding: .utf8),
                   "id,Pneumothorax\nr0,1.0\nr1,1.0\nr2,0.0\nr3,1.0\nr4,1.0\nr6,0.0\nr7,0.0\n")
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    let bad = answers.first { $0["id"] as? String == "r5" }!
    XCTAssertEqual(bad["parsed"] as? String, "ERROR")
    XCTAssertEqual(bad["outcome"] as? String, "error")
    XCTAssertEqual(bad["response"] as? String, #"Sure! {"answer": Present"#)
    XCTAssertTrue(bad["value"] is NSNull)
    XCTAssertTrue(server.chatRequests.allSatisfy { $0["response_format"] as? Bool == false })
  }

  func testResumeAfterAKillAsksOnlyForWhatIsMissing() async throws {
    let server = try FakeServer(["--delay", "0.05"])
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports((0..<30).map { $0 % 3 == 0 ? "positive \($0)" : "clear \($0)" })
    let settings = Fixtures.settings([server])
    let template = try Fixtures.single()
    // Kill the run part way: cancel the task while requests are in flight.
    let task = Task { try await Fixtures.run(settings, templates: [template], reports: reports, out: out, inFlight: 2) }
    let answersURL = out.appendingPathComponent("answers.jsonl")
    guard try await Fixtures.waitForAnswers(answersURL, count: 6) else {
      task.cancel()
      return XCTFail("the run stored no 6 answers in 30 s")
    }
    task.cancel()
    do { _ = try await task.value; XCTFail("the cancelled run should throw") } catch is CancellationError {}
    let kept = try Fixtures.jsonl(answersURL)
    XCTAssertGreaterThanOrEqual(kept.count, 6)
    XCTAssertLessThan(kept.count, 30)
    XCTAssertTrue(kept.allSatisfy { $0["outcome"] as? String == "strict" }, "a cut-off request is not written")
    // A kill in the middle of a write leaves half a line: it is dropped on reopen.
    let h = try FileHandle(forWritingTo: answersURL)
    try h.seekToEnd()
    try h.write(contentsOf: Data(#"{"id": "r29", "template_ha"#.utf8))
    try h.close()

    // Requests cut off by the cancel may still reach the server's log: let them land first.
    try await Task.sleep(nanoseconds: 300_000_000)
    let postsBefore = server.chatRequests.count
    let log = LogLines()
    let summaries = try await Fixtures.run(settings, templates: [template], reports: reports, out: out, inFlight: 4, log: log)
    XCTAssertEqual(server.chatRequests.count - postsBefore, 30 - kept.count)
    XCTAssertEqual(summaries[0].skippedDone, kept.count)
    XCTAssertEqual(summaries[0].requests, 30 - kept.count)
    XCTAssertTrue(log.all.contains("answers.jsonl ended in a line cut short (an interrupted run); dropped it"))
    let all = try Fixtures.jsonl(answersURL)
    XCTAssertEqual(all.count, 30)
    XCTAssertEqual(Set(all.map { $0["id"] as! String }).count, 30)
    let expected = "id,Pneumothorax\n" + (0..<30).map { "r\($0),\($0 % 3 == 0 ? "1.0" : "0.0")\n" }.joined()
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("single.csv"), encoding: .utf8), expected)

    // Another model or another template is new work; the same one is all done.
    let again = try await Fixtures.run(settings, templates: [template], reports: reports, out: out)
    XCTAssertEqual(again[0].requests, 0)
    XCTAssertEqual(again[0].skippedDone, 30)
  }

  /// A second run on the folder of a run still going stops at once with one error naming the
  /// file, before it sends a question; the first run's answers are whole and its own; once it has
  /// ended (its lock goes with it), the same command finds everything answered.
  func testASecondRunOnAFolderInUseStopsBeforeAsking() async throws {
    let server = try FakeServer(["--delay", "0.1"])
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports((0..<12).map { "clear \($0)" })
    let settings = Fixtures.settings([server])
    let template = try Fixtures.single()
    let first = Task { try await Fixtures.run(settings, templates: [template], reports: reports, out: out, inFlight: 1) }
    let answersURL = out.appendingPathComponent("answers.jsonl")
    guard try await Fixtures.waitForAnswers(answersURL, count: 2) else {
      first.cancel()
      return XCTFail("the first run stored no 2 answers in 30 s")
    }
    let postsBefore = server.chatRequests.count
    do {
      _ = try await Fixtures.run(settings, templates: [template], reports: reports, out: out, inFlight: 4)
      XCTFail("the second run should stop")
    } catch {
      XCTAssertEqual("\(error)", "\(answersURL.path) is in use by another cxr label run (it holds the file's lock); wait for that run to end or give this one another --out")
    }
    XCTAssertLessThanOrEqual(server.chatRequests.count, postsBefore + 1, "only the first run's next question")
    let summaries = try await first.value
    XCTAssertEqual(summaries[0].requests, 12)
    let all = try Fixtures.jsonl(answersURL)
    XCTAssertEqual(all.map { $0["id"] as! String }, (0..<12).map { "r\($0)" })
    let again = try await Fixtures.run(settings, templates: [template], reports: reports, out: out)
    XCTAssertEqual(again[0].requests, 0)
    XCTAssertEqual(again[0].skippedDone, 12)
  }

  /// An answer that cannot be stored (here: the file-size limit, as a full disk would) ends the
  /// run with one error naming the file; no further request goes out, and the answers stored
  /// before it stay, whole (the part of a line the disk took is taken back).
  func testAnAnswerThatCannotBeStoredEndsTheRun() async throws {
    let server = try FakeServer(["--delay", "0.05"])
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports((0..<40).map { "clear \($0)" })
    // Writes past 1,500 bytes fail with EFBIG instead of raising SIGXFSZ, in this process only,
    // until the limit is put back.
    var saved = rlimit()
    getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
    let oldHandler = signal(SIGXFSZ, SIG_IGN)
    var limit = saved
    limit.rlim_cur = 1_500
    XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
    var thrown: Error?
    do {
      _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()], reports: reports, out: out, inFlight: 2)
    } catch { thrown = error }
    setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
    signal(SIGXFSZ, oldHandler)
    let message = "\(try XCTUnwrap(thrown, "the run should fail"))"
    XCTAssertTrue(message.contains("cannot append to \(out.appendingPathComponent("answers.jsonl").path): File too large"), message)
    // Whole answers only: the part of the line the limit let through was taken back.
    XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("answers.jsonl")).last, 0x0A)
    let stored = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertGreaterThan(stored.count, 0)
    XCTAssertLessThan(stored.count, 40)
    // The requests already in flight when it failed, and no new one.
    try await Task.sleep(nanoseconds: 200_000_000)
    XCTAssertLessThanOrEqual(server.chatRequests.count, stored.count + 2, "requests after the failure")
  }

  func testTwoServersShareTheLoad() async throws {
    let a = try FakeServer(["--delay", "0.05"]), b = try FakeServer(["--delay", "0.05"])
    let out = try TestEnv.scratch("cxr-label-run")
    let reports = Fixtures.reports((0..<40).map { "report \($0)" })
    _ = try await Fixtures.run(Fixtures.settings([a, b]), templates: [try Fixtures.single()], reports: reports,
                               out: out, inFlight: 8)
    let na = a.chatRequests.count, nb = b.chatRequests.count
    XCTAssertEqual(na + nb, 40)
    XCTAssertGreaterThanOrEqual(min(na, nb), 15, "least-outstanding balancing: \(na) vs \(nb)")
    XCTAssertLessThanOrEqual(a.chatRequests.compactMap { $0["max_in_flight"] as? Int }.max() ?? 0, 8)
  }

  func testRetriesMoveToTheOtherServer() async throws {
    let good = try FakeServer()
    let bad = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-run")
    // Health checks pass, then one server dies: its requests are retried on the other.
    let settings = Fixtures.settings([bad, good])
    let client = ChatClient(settings: settings, maxInFlight: 2)
    try await client.healthCheck()
    bad.stop()
    let runner = try LabelRunner(client: client, templates: [try Fixtures.single()],
                                 reports: Fixtures.reports((0..<6).map { "positive \($0)" }), outDir: out, inFlight: 2,
                                 log: { _ in })
    // The runner's own health check would refuse the dead server, so send directly.
    let prompt = try Fixtures.single()
    for r in runner.reports.reports {
      let c = await client.converse(prompt.rendered(for: prompt.findings[0]), report: r.text)
      XCTAssertEqual(c.text, #"{"answer": "Present"}"#)
      XCTAssertEqual(c.server, "\(good.url.absoluteString)/v1")
    }
    XCTAssertEqual(good.chatRequests.count, 6)
    await client.shutdown()
  }

  func testInFlightIsBoundedAndReached() async throws {
    let server = try FakeServer(["--delay", "0.1"])
    let out = try TestEnv.scratch("cxr-label-run")
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                               reports: Fixtures.reports((0..<24).map { "r\($0)" }), out: out, inFlight: 6)
    XCTAssertEqual(server.chatRequests.compactMap { $0["max_in_flight"] as? Int }.max(), 6)
  }

  func testMultiTurnConversationKeepsTheAnswers() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-run")
    let template = try Fixtures.single("two-turns", turns: ["[[turn1]] Report: {{report}} Think about {{finding}}.",
                                                           "Now answer. {{format}}"])
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [template],
                               reports: Fixtures.reports(["positive"]), out: out)
    let posts = server.chatRequests
    XCTAssertEqual(posts.map { $0["roles"] as! [String] }, [["system", "user"], ["system", "user", "assistant", "user"]])
    XCTAssertEqual(posts.map { $0["response_format"] as? Bool }, [false, true], "only the last turn is constrained")
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("two-turns.csv"), encoding: .utf8), "id,Pneumothorax\nr0,1.0\n")
  }

  func testDeadServerUnservedModelAndAPIKey() async throws {
    let dead = try FakeServer()
    dead.stop()
    let out = try TestEnv.scratch("cxr-label-run")
    do {
      _ = try await Fixtures.run(Fixtures.settings([dead]), templates: [try Fixtures.single()],
                                 reports: Fixtures.reports(["x"]), out: out)
      XCTFail("a dead server must stop the run")
    } catch {
      XCTAssertEqual("\(error)", "server \(dead.url.absoluteString)/v1 is unreachable (connection refused); check --server and that the server is running")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("answers.jsonl").path))

    let server = try FakeServer(["--api-key", "sk-secret-123"])
    do {
      _ = try await Fixtures.run(Fixtures.settings([server], model: "llama-3-8b"), templates: [try Fixtures.single()],
                                 reports: Fixtures.reports(["x"]), out: out)
      XCTFail("no key must fail")
    } catch {
      XCTAssertEqual("\(error)", "server \(server.url.absoluteString)/v1 refused the API key (HTTP 401); set the right key in the environment variable named by --api-key-env")
    }
    var settings = Fixtures.settings([server], model: "llama-3-8b")
    settings.apiKey = "sk-secret-123"
    do {
      _ = try await Fixtures.run(settings, templates: [try Fixtures.single()], reports: Fixtures.reports(["x"]), out: out)
      XCTFail("an unserved model must fail")
    } catch {
      XCTAssertEqual("\(error)", "server \(server.url.absoluteString)/v1 does not serve model 'llama-3-8b'; it serves: test-model; pass --model with one of them")
    }
    settings.model = "test-model"
    settings.responseFormat = false  // so that the injected 400 is a plain client error, not a schema refusal
    let log = LogLines()
    _ = try await Fixtures.run(settings, templates: [try Fixtures.single()],
                               reports: Fixtures.reports(["CONFIDENTIAL-TEXT positive [[status:503x1]]", "x [[status:400x1]]"]),
                               out: out, log: log)
    XCTAssertTrue(server.chatRequests.allSatisfy { $0["authorized"] as? Bool == true })
    // A 400 without response_format is not retried: an error row with the server's message.
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertEqual(answers.first { $0["id"] as? String == "r1" }?["error"] as? String,
                   "\(server.url.absoluteString)/v1: HTTP 400: injected failure")
    // Neither the key nor report text reaches the log, even with retries and failures.
    XCTAssertFalse(log.all.isEmpty)
    for line in log.all {
      XCTAssertFalse(line.contains("sk-secret"), line)
      XCTAssertFalse(line.contains("CONFIDENTIAL"), line)
    }
    XCTAssertFalse(try String(contentsOf: out.appendingPathComponent("answers.jsonl"), encoding: .utf8).contains("sk-secret"))
  }

  func testMIMICReportsGiveSubjectAndStudyColumns() async throws {
    let server = try FakeServer()
    let root = try TestEnv.scratch("cxr-label-mimic-run")
    for (path, text) in [("p10/p10000032/s50414267.txt", "FINDINGS: positive-looking words.\n\nIMPRESSION: Nothing acute."),
                         ("p10/p10000032/s53189527.txt", "IMPRESSION: positive rib fracture and pneumothorax."),
                         ("p10/p10000040/s50000001.txt", "IMPRESSION:\n")] {
      let url = root.appendingPathComponent("files/\(path)")
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try text.write(to: url, atomically: true, encoding: .utf8)
    }
    let out = try TestEnv.scratch("cxr-label-run")
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.zeroShot()],
                               reports: try ReportSet.mimic(root), out: out)
    // The impression is what the model sees: the findings' "positive" never reaches it.
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("zero-shot.csv"), encoding: .utf8),
                   "subject_id,study_id,Pneumothorax,Fracture\n10000032,50414267,0.0,0.0\n10000032,53189527,1.0,1.0\n")
    let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as! [String: Any]
    XCTAssertEqual(summary["empty_reports_skipped"] as? Int, 1)
    XCTAssertEqual((summary["strategies"] as! [[String: Any]])[0]["reports"] as? Int, 2)
  }

  func testRunnerRejectsBadSettings() async throws {
    let settings = ClientSettings(servers: [URL(string: "http://127.0.0.1:9")!], model: "m")
    let client = ChatClient(settings: settings, maxInFlight: 1)
    XCTAssertThrowsError(try LabelRunner(client: client, templates: [try Fixtures.single()], reports: Fixtures.reports([]),
                                         outDir: URL(fileURLWithPath: "/tmp"), inFlight: 0, log: { _ in })) {
      XCTAssertEqual("\($0)", "--in-flight must be at least 1 (got 0)")
    }
    XCTAssertThrowsError(try LabelRunner(client: client, templates: [try Fixtures.single(), try Fixtures.single()],
                                         reports: Fixtures.reports([]), outDir: URL(fileURLWithPath: "/tmp"), inFlight: 1,
                                         log: { _ in })) {
      XCTAssertEqual("\($0)", "two prompt templates share the name 'single'; names pick the label file, so make them unique")
    }
    await client.shutdown()
    XCTAssertEqual(ClientSettings.apiRoot(URL(string: "http://h:8000")!).absoluteString, "http://h:8000/v1")
    XCTAssertEqual(ClientSettings.apiRoot(URL(string: "http://h:8000/v1/")!).absoluteString, "http://h:8000/v1")
  }

  /// With a real server named by CXR_LLM_SERVER (and CXR_LLM_MODEL), label two reports end to end.
  func testOptionalRealServer() async throws {
    let env = ProcessInfo.processInfo.environment
    guard let url = env["CXR_LLM_SERVER"], let model = env["CXR_LLM_MODEL"] else {
      throw XCTSkip("set CXR_LLM_SERVER and CXR_LLM_MODEL to check against a real OpenAI-compatible server")
    }
    var settings = ClientSettings(servers: [URL(string: url)!], model: model, apiKey: env["CXR_LLM_API_KEY"])
    settings.timeout = 120
    let out = try TestEnv.scratch("cxr-label-real")
    let summaries = try await Fixtures.run(settings, templates: [try Fixtures.zeroShot()],
      reports: Fixtures.reports(["Large right pneumothorax. Acute fractures of the right fifth and sixth ribs.",
                                 "The lungs are clear. No pneumothorax. No fracture."]), out: out)
    XCTAssertEqual(summaries[0].outcomes["failed"], 0)
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("zero-shot.csv"), encoding: .utf8),
                   "id,Pneumothorax,Fracture\nr0,1.0,1.0\nr1,0.0,0.0\n")
  }
}
