import Foundation
import Label
import TestSupport
import XCTest

/// The test-only OpenAI-compatible server (fake_openai_server.py) on a free loopback port.
final class FakeServer {
  let process = Process()
  let port: Int
  let logURL: URL
  var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

  init(_ args: [String] = [], lifetime: Double = 120) throws {
    guard let py = TestEnv.python else {
      throw FakeServerError("reference Python not found: run `make setup` (it creates .deps/venv)")
    }
    let dir = try TestEnv.scratch("cxr-fake-llm")
    logURL = dir.appendingPathComponent("requests.jsonl")
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fake_openai_server.py")
    process.executableURL = py
    process.arguments = [script.path, "--log", logURL.path, "--lifetime", String(lifetime)] + args
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    // The first line is `PORT <n>`.
    var line = Data()
    let handle = out.fileHandleForReading
    while true {
      let byte = handle.readData(ofLength: 1)
      if byte.isEmpty || byte == Data([0x0A]) { break }
      line.append(byte)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard text.hasPrefix("PORT "), let p = Int(text.dropFirst(5)) else {
      process.terminate()
      throw FakeServerError("fake server did not start: '\(text)'")
    }
    port = p
  }

  func stop() {
    // SIGKILL: Foundation starts children with signals blocked, and waitUntilExit spins while
    // the child lives.
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }
  deinit { stop() }

  /// The requests the server saw, one dictionary each.
  var requests: [[String: Any]] {
    guard let data = try? String(contentsOf: logURL, encoding: .utf8) else { return [] }
    return data.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
  }
  var chatRequests: [[String: Any]] { requests.filter { $0["method"] as? String == "POST" } }
}

struct FakeServerError: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}

/// Collects log lines from the runner and the client (any thread).
final class LogLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
  var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

enum Fixtures {
  static let promptsDir = TestEnv.root.appendingPathComponent("configs/prompts")
  static func zeroShot() throws -> PromptTemplate { try PromptTemplate.load(promptsDir.appendingPathComponent("zero-shot.yaml")) }
  static func chainOfThought() throws -> PromptTemplate {
    try PromptTemplate.load(promptsDir.appendingPathComponent("chain-of-thought.yaml"))
  }

  /// A one-finding template, so each report is one request.
  static func single(_ name: String = "single", turns: [String]? = nil, extra: String = "") throws -> PromptTemplate {
    let t = turns ?? ["Report: {{report}}\nIs there {{finding}}? {{format}}"]
    let turnYAML = t.map { "  - \"\($0.replacingOccurrences(of: "\n", with: "\\n"))\"" }.joined(separator: "\n")
    return try PromptTemplate.parse("""
      name: \(name)
      system: You read reports.
      turns:
      \(turnYAML)
      format: 'Answer {"answer": one of {{options}}} in <answer></answer>.'
      max_tokens: 32
      stop: ["</answer>"]
      \(extra)
      findings:
        - column: Pneumothorax
          name: pneumothorax
          options:
            - {answer: Present, value: 1.0}
            - {answer: Absent, value: 0.0}
            - {answer: Uncertain, value: -1.0}
      """, source: "\(name).yaml")
  }

  static func reports(_ texts: [String]) -> ReportSet {
    ReportSet(idHeader: ["id"], reports: texts.enumerated().map { Report(key: "r\($0.offset)", idColumns: ["r\($0.offset)"], text: $0.element) },
              emptySkipped: 0, duplicatesSkipped: 0)
  }

  static func settings(_ servers: [FakeServer], model: String = "test-model") -> ClientSettings {
    var s = ClientSettings(servers: servers.map(\.url), model: model)
    s.timeout = 5
    s.maxRetries = 3
    s.backoffBase = 0.01
    s.backoffCap = 0.05
    s.seed = 7
    return s
  }

  static func run(_ settings: ClientSettings, templates: [PromptTemplate], reports: ReportSet, out: URL,
                  inFlight: Int = 4, log: LogLines = LogLines()) async throws -> [StrategySummary] {
    let client = ChatClient(settings: settings, maxInFlight: inFlight, log: { log.add($0) })
    do {
      let runner = try LabelRunner(client: client, templates: templates, reports: reports, outDir: out,
                                   inFlight: inFlight, log: { log.add($0) })
      let summaries = try await runner.run()
      await client.shutdown()
      return summaries
    } catch {
      await client.shutdown()
      throw error
    }
  }

  static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

  static func jsonl(_ url: URL) throws -> [[String: Any]] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
      try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
  }
  /// Waits until `url` holds at least `count` answers, for at most `seconds`: a run that never
  /// answers fails the test (the caller cancels it) instead of holding it.
  static func waitForAnswers(_ url: URL, count: Int, seconds: Double = 30) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while ((try? jsonl(url).count) ?? 0) < count {
      guard Date() < deadline else { return false }
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    return true
  }
}
