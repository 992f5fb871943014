import Common
import Foundation
import TestSupport
import XCTest
@testable import Label

/// A fleet that survives its members: early closes, servers down at the start or dying mid-run,
/// health checks that honour Retry-After, and response_format refusals in every server's words.
final class FleetTests: XCTestCase {
  func testConnectionClosedWithoutAnAnswerIsRetriedAtOnceOnAnotherServer() async throws {
    let closing = try FakeServer(["--close-first", "1"]), good = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-fleet")
    var settings = Fixtures.settings([closing, good])
    settings.backoffBase = 30  // a backoff would show as a 15+ s wait: there is none
    settings.backoffCap = 60
    let log = LogLines()
    _ = try await Fixtures.run(settings, templates: [try Fixtures.single()], reports: Fixtures.reports(["positive"]),
                               out: out, inFlight: 1, log: log)
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,1.0\n")
    XCTAssertEqual(closing.chatRequests.map { $0["status"] is NSNull }, [true], "the closer read one request and hung up")
    XCTAssertEqual(good.chatRequests.map { $0["status"] as? Int }, [200])
    XCTAssertEqual(good.chatRequests[0]["messages"] as? Int, 2, "the resend carries its whole body")
    let answer = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))[0]
    XCTAssertEqual(answer["attempts"] as? Int, 2)
    XCTAssertEqual(answer["server"] as? String, "\(good.url.absoluteString)/v1")
    XCTAssertLessThan(answer["latency_s"] as? Double ?? 99, 15, "retried without a backoff")
    XCTAssertTrue(log.all.contains("retrying on another server: \(closing.url.absoluteString)/v1: connection closed without an answer"), "\(log.all)")
  }

  func testConnectionClosedWithoutAnAnswerOnTheOnlyServerIsRetried() async throws {
    let server = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-fleet")
    let log = LogLines()
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                               reports: Fixtures.reports(["positive [[close:x1]]", "clear"]), out: out, inFlight: 1, log: log)
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,1.0\nr1,0.0\n")
    XCTAssertEqual(server.chatRequests.map { $0["attempt"] as? Int }, [1, 2, 1])
    XCTAssertEqual(server.chatRequests.map { $0["messages"] as? Int }, [2, 2, 2])
    XCTAssertTrue(log.all.contains { $0.hasPrefix("retrying in ") && $0.hasSuffix("/v1: connection closed without an answer") }, "\(log.all)")
  }

  func testAServerDownAtTheStartIsNamedAndTheRunGoesOn() async throws {
    let down = try FakeServer(), up = try FakeServer()
    down.stop()
    let out = try TestEnv.scratch("cxr-label-fleet")
    let log = LogLines()
    let summaries = try await Fixtures.run(Fixtures.settings([down, up]), templates: [try Fixtures.single()],
                                           reports: Fixtures.reports((0..<6).map { $0 % 2 == 0 ? "positive \($0)" : "clear \($0)" }),
                                           out: out, inFlight: 2, log: log)
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")),
                   "id,Pneumothorax\nr0,1.0\nr1,0.0\nr2,1.0\nr3,0.0\nr4,1.0\nr5,0.0\n")
    XCTAssertEqual(up.chatRequests.count, 6)
    XCTAssertEqual(summaries[0].unlabelled, 0)
    XCTAssertTrue(log.all.contains("warning: server \(down.url.absoluteString)/v1 is unreachable (connection refused); check --server and that the server is running; starting with the other server(s), it is checked again during the run"), "\(log.all)")
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertEqual(answers.map { $0["attempts"] as? Int }, Array(repeating: 1, count: 6), "no first attempt went to the dead server")
  }

  func testAServerDyingMidRunIsEjectedAndGetsNoMoreFirstAttempts() async throws {
    let dying = try FakeServer(["--die-after", "2"]), good = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-fleet")
    let log = LogLines()
    let reports = Fixtures.reports((0..<12).map { $0 % 3 == 0 ? "positive \($0)" : "clear \($0)" })
    let summaries = try await Fixtures.run(Fixtures.settings([dying, good]), templates: [try Fixtures.single()],
                                           reports: reports, out: out, inFlight: 1, log: log)
    let expected = "id,Pneumothorax\n" + (0..<12).map { "r\($0),\($0 % 3 == 0 ? "1.0" : "0.0")\n" }.joined()
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), expected)
    XCTAssertEqual(dying.chatRequests.count, 2, "two answers, then it died")
    XCTAssertEqual(good.chatRequests.count, 10)
    XCTAssertEqual(summaries[0].unlabelled, 0)
    // Before the ejection at most two first attempts meet the dead server (a kept-alive
    // connection it closed, then a refused one); after it, none.
    let attempts = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl")).map { $0["attempts"] as! Int }
    XCTAssertLessThanOrEqual(attempts.reduce(0, +), 14, "\(attempts)")
    XCTAssertGreaterThanOrEqual(attempts.reduce(0, +), 13, "\(attempts)")
    XCTAssertTrue(log.all.contains("server \(dying.url.absoluteString)/v1 ejected (connection refused); it is probed again before it gets requests"), "\(log.all)")
  }

  func testEveryServerDownStopsTheRunResumably() async throws {
    let only = try FakeServer(["--die-after", "1"])
    let out = try TestEnv.scratch("cxr-label-fleet")
    var settings = Fixtures.settings([only])
    settings.timeout = 0.5
    let log = LogLines()
    do {
      _ = try await Fixtures.run(settings, templates: [try Fixtures.single()],
                                 reports: Fixtures.reports((0..<20).map { "clear \($0)" }), out: out, inFlight: 1, log: log)
      XCTFail("a dead fleet must stop the run")
    } catch {
      XCTAssertTrue("\(error)".hasPrefix("stopped early: no server could take the request for "), "\(error)")
      XCTAssertTrue("\(error)".hasSuffix("; run the same command again when a server is back (only the missing answers are asked for)"), "\(error)")
    }
    let answers = try Fixtures.jsonl(out.appendingPathComponent("answers.jsonl"))
    XCTAssertEqual(answers.first?["outcome"] as? String, "strict")
    XCTAssertLessThan(answers.count, 20, "it stopped instead of failing every report")
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,0.0\n")
  }

  func testHealthCheckRetries429AndHonoursRetryAfter() async throws {
    let server = try FakeServer(["--models-status", "429x2", "--retry-after", "1"])
    let out = try TestEnv.scratch("cxr-label-fleet")
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                               reports: Fixtures.reports(["positive"]), out: out)
    let gets = server.requests.filter { $0["method"] as? String == "GET" }
    XCTAssertEqual(gets.map { $0["status"] as? Int }, [429, 429, 200])
    let times = gets.map { $0["t"] as! Double }
    // The test settings' backoff is 10-50 ms: the waits are the server's Retry-After.
    XCTAssertGreaterThanOrEqual(times[1] - times[0], 0.95)
    XCTAssertGreaterThanOrEqual(times[2] - times[1], 0.95)
    XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,1.0\n")

    // 5xx past the retries: the only server is down, and that is the error.
    let failing = try FakeServer(["--models-status", "503x99"])
    do {
      _ = try await Fixtures.run(Fixtures.settings([failing]), templates: [try Fixtures.single()],
                                 reports: Fixtures.reports(["x"]), out: try TestEnv.scratch("cxr-label-fleet"))
      XCTFail("a server that keeps answering 503 cannot start the run")
    } catch {
      XCTAssertEqual("\(error)", "server \(failing.url.absoluteString)/v1 answered HTTP 503 to GET /v1/models 4 times")
    }
    XCTAssertEqual(failing.requests.filter { $0["method"] as? String == "GET" }.count, 4, "1 + 3 retries")
  }

  func testResponseFormatRefusalsInEachServersWordsFallBack() async throws {
    let expected: [(String, Int, String)] = [
      ("422", 422, "Unsupported response_format type 'json_schema'"),
      ("vllm", 400, "The provided JSON schema contains features not supported by xgrammar."),
      ("llamacpp", 400, #"response_format type must be one of "text" or "json_object", but got: json_schema"#),
      ("tgi", 422, "Failed to deserialize the JSON body into the target type: response_format: unknown variant `json_schema`, expected `json` or `regex` at line 1 column 120"),
    ]
    for (style, status, message) in expected {
      let server = try FakeServer(["--reject-response-format", style])
      let out = try TestEnv.scratch("cxr-label-fleet")
      let log = LogLines()
      let summaries = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                                             reports: Fixtures.reports(["positive", "clear"]), out: out, inFlight: 1, log: log)
      XCTAssertEqual(try Fixtures.text(out.appendingPathComponent("single.csv")), "id,Pneumothorax\nr0,1.0\nr1,0.0\n", style)
      XCTAssertEqual(server.chatRequests.map { $0["status"] as? Int }, [status, 200, 200], style)
      XCTAssertEqual(server.chatRequests.map { $0["response_format"] as? Bool }, [true, false, false], style)
      XCTAssertEqual(summaries[0].unlabelled, 0, style)
      XCTAssertTrue(log.all.contains("server \(server.url.absoluteString)/v1 refused response_format (HTTP \(status): \(message)); reading answers from the text there"), "\(style): \(log.all)")
    }
  }

  func testResponseFormatFallsBackPerServerAndOtherClientErrorsDoNot() async throws {
    let refusing = try FakeServer(["--reject-response-format", "tgi"]), taking = try FakeServer()
    let out = try TestEnv.scratch("cxr-label-fleet")
    _ = try await Fixtures.run(Fixtures.settings([refusing, taking]), templates: [try Fixtures.single()],
                               reports: Fixtures.reports((0..<8).map { "positive \($0)" }), out: out, inFlight: 1)
    XCTAssertEqual(refusing.chatRequests.filter { $0["response_format"] as? Bool == true }.count, 1, "refused once, then never asked")
    XCTAssertTrue(taking.chatRequests.allSatisfy { $0["response_format"] as? Bool == true }, "the other server keeps it")
    XCTAssertEqual(refusing.chatRequests.filter { $0["status"] as? Int == 200 }.count + taking.chatRequests.count, 8)

    // A 400 that is not about response_format is an error of that request, not a refusal.
    let server = try FakeServer()
    let out2 = try TestEnv.scratch("cxr-label-fleet")
    _ = try await Fixtures.run(Fixtures.settings([server]), templates: [try Fixtures.single()],
                               reports: Fixtures.reports(["x [[status:400x1]]", "positive"]), out: out2, inFlight: 1)
    XCTAssertEqual(server.chatRequests.map { $0["response_format"] as? Bool }, [true, true])
    XCTAssertEqual(try Fixtures.text(out2.appendingPathComponent("errors.csv")),
                   "template,id,finding,kind,reason\nsingle,r0,Pneumothorax,failed,\(server.url.absoluteString)/v1: HTTP 400: injected failure\n")
  }

  func testPoolEjectsProbesAndPauses() {
    let roots = [URL(string: "http://a:1/v1")!, URL(string: "http://b:1/v1")!]
    let pool = ServerPool(roots: roots, schema: true, backoffBase: 60, backoffCap: 60)
    var probes: [Int] = []
    // A refused connection ejects at once; two timeouts do not, the third does.
    XCTAssertTrue(pool.failed(0, problem: "connection refused", ejectNow: true))
    for _ in 0..<5 {
      guard case .server(let i) = pool.acquire(probe: &probes) else { return XCTFail("b is up") }
      XCTAssertEqual(i, 1)
      pool.release(i)
    }
    XCTAssertFalse(pool.failed(1, problem: "timed out"))
    XCTAssertFalse(pool.failed(1, problem: "timed out"))
    XCTAssertTrue(pool.failed(1, problem: "timed out"))
    guard case .none(let wait, let why) = pool.acquire(probe: &probes) else { return XCTFail("both are out") }
    XCTAssertEqual(wait, 1, "polls at most every second while the ejections last")
    XCTAssertEqual(why, "http://a:1/v1: connection refused; http://b:1/v1: timed out")
    XCTAssertEqual(probes, [], "no probe before the backoff is over")
    // A passed probe brings a server back; a success resets the count of failures in a row.
    pool.probed(1, ok: true, problem: "")
    guard case .server(1) = pool.acquire(probe: &probes) else { return XCTFail("b is back") }
    pool.release(1)
    XCTAssertFalse(pool.failed(1, problem: "HTTP 500"))
    pool.succeeded(1)
    XCTAssertFalse(pool.failed(1, problem: "HTTP 500"))
    XCTAssertFalse(pool.failed(1, problem: "HTTP 500"))
    // Retry-After pauses without ejecting.
    XCTAssertFalse(pool.failed(1, problem: "HTTP 503", pauseFor: 30))
    guard case .none = pool.acquire(probe: &probes) else { return XCTFail("b is paused") }

    let quick = ServerPool(roots: roots, schema: true, backoffBase: 0, backoffCap: 0)
    quick.startEjected(0, problem: "down")
    guard case .server(1) = quick.acquire(probe: &probes) else { return XCTFail("b serves") }
    XCTAssertEqual(probes, [0], "a's backoff is over: the caller probes it")
    probes = []
    guard case .server(1) = quick.acquire(probe: &probes) else { return XCTFail("b serves") }
    XCTAssertEqual(probes, [], "one probe at a time")
    quick.exclude(1, problem: "no model")
    quick.probed(0, ok: true, problem: "")
    guard case .server(0) = quick.acquire(probe: &probes) else { return XCTFail("a is back, b is out for good") }
  }

  func testRetryAfterAndServerMessages() {
    XCTAssertEqual(ChatClient.parseRetryAfter("2"), 2)
    XCTAssertEqual(ChatClient.parseRetryAfter(" 0.5 "), 0.5)
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
    let later = ChatClient.parseRetryAfter(f.string(from: Date().addingTimeInterval(120)))!
    XCTAssertGreaterThan(later, 110)
    XCTAssertLessThanOrEqual(later, 120)
    XCTAssertEqual(ChatClient.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), 0, "a date past is now")
    XCTAssertNil(ChatClient.parseRetryAfter("soon"))
    XCTAssertEqual(ChatClient.serverMessage(#"{"error": {"message": "m1", "type": "x"}}"#), "m1")
    XCTAssertEqual(ChatClient.serverMessage(#"{"object": "error", "message": "m2"}"#), "m2")
    XCTAssertEqual(ChatClient.serverMessage(#"{"error": "Input validation error: grammar is not supported", "error_type": "validation"}"#),
                   "Input validation error: grammar is not supported")
    XCTAssertEqual(ChatClient.serverMessage("plain text\n"), "plain text")
    XCTAssertTrue(ChatClient.refusesResponseFormat("Input validation error: grammar is not supported"))
    XCTAssertFalse(ChatClient.refusesResponseFormat(#"{"error": {"message": "prompt is too long"}}"#))
  }
}
