import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Throughput and outcomes of one strategy (template) in one run, like the study's Table 3.
public struct StrategySummary {
  public var template: String
  public var labelFile: URL
  public var reports = 0
  public var requests = 0
  public var skippedDone = 0
  public var wallSeconds = 0.0
  public var promptTokens = 0
  public var completionTokens = 0
  public var latencies: [Double] = []
  public var outcomes: [String: Int] = ["strict": 0, "recovered": 0, "error": 0, "failed": 0]
  public var rowsWritten = 0
  public var rowsIncomplete = 0
  public var cpuSeconds = 0.0

  public var reportsPerMinute: Double { wallSeconds > 0 ? Double(reports) / wallSeconds * 60 : 0 }
  public var tokensPerSecond: Double { wallSeconds > 0 ? Double(completionTokens) / wallSeconds : 0 }
  public var cpuMillisPerRequest: Double { requests > 0 ? cpuSeconds * 1000 / Double(requests) : 0 }
  public func latencyPercentile(_ p: Double) -> Double {
    guard !latencies.isEmpty else { return 0 }
    let s = latencies.sorted()
    // Nearest rank.
    let rank = Int((p / 100 * Double(s.count)).rounded(.up))
    return s[max(0, min(s.count - 1, rank - 1))]
  }

  public var json: JSONValue {
    .object([
      ("template", .string(template)), ("label_file", .string(labelFile.lastPathComponent)),
      ("reports", .number(Double(reports))), ("requests", .number(Double(requests))),
      ("already_done", .number(Double(skippedDone))), ("wall_s", .number(round3(wallSeconds))),
      ("reports_per_min", .number(round3(reportsPerMinute))), ("tokens_per_s", .number(round3(tokensPerSecond))),
      ("prompt_tokens", .number(Double(promptTokens))), ("completion_tokens", .number(Double(completionTokens))),
      ("latency_p50_s", .number(round3(latencyPercentile(50)))), ("latency_p95_s", .number(round3(latencyPercentile(95)))),
      ("cpu_ms_per_request", .number(round3(cpuMillisPerRequest))),
      ("outcomes", .object(["strict", "recovered", "error", "failed"].map { ($0, .number(Double(outcomes[$0] ?? 0))) })),
      ("rows_written", .number(Double(rowsWritten))), ("rows_left_out", .number(Double(rowsIncomplete))),
    ])
  }
  private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

  public var line: String {
    String(format: "%@: %d reports (%d requests, %d already done) in %.1f s: %.1f reports/min, %.1f tokens/s, latency p50 %.3f s p95 %.3f s, client CPU %.3f ms/request; answers: %d strict, %d recovered, %d ERROR, %d failed; %@: %d rows, %d left out (an answer is ERROR or failed)",
           template, reports, requests, skippedDone, wallSeconds, reportsPerMinute, tokensPerSecond,
           latencyPercentile(50), latencyPercentile(95), cpuMillisPerRequest,
           outcomes["strict"]!, outcomes["recovered"]!, outcomes["error"]!, outcomes["failed"]!,
           labelFile.lastPathComponent, rowsWritten, rowsIncomplete)
  }
}

/// Labels a set of reports with one or more templates against the servers, appending every answer
/// to `answers.jsonl` in `outDir` and writing one CheXpert-format label file per template.
public final class LabelRunner {
  public let client: ChatClient
  public let templates: [PromptTemplate]
  public let reports: ReportSet
  public let outDir: URL
  public let inFlight: Int
  let log: (String) -> Void
  /// Progress lines at most this often (seconds).
  public var progressEvery: TimeInterval = 10

  public init(client: ChatClient, templates: [PromptTemplate], reports: ReportSet, outDir: URL, inFlight: Int,
              log: @escaping (String) -> Void) throws {
    guard inFlight >= 1 else { throw LabelError("--in-flight must be at least 1 (got \(inFlight))") }
    let names = templates.map(\.name)
    if Set(names).count != names.count {
      throw LabelError("two prompt templates share the name '\(names.first { n in names.filter { $0 == n }.count > 1 }!)'; names pick the label file, so make them unique")
    }
    self.client = client
    self.templates = templates
    self.reports = reports
    self.outDir = outDir
    self.inFlight = inFlight
    self.log = log
  }

  public var answersURL: URL { outDir.appendingPathComponent("answers.jsonl") }
  public func labelURL(_ t: PromptTemplate) -> URL { outDir.appendingPathComponent("\(t.name).csv") }

  struct Work {
    let report: Report
    let prompt: RenderedPrompt
    let hash: String
  }

  public func run() async throws -> [StrategySummary] {
    try await client.healthCheck()
    let store = try AnswerStore(url: answersURL)
    if store.droppedPartialLine { log("answers.jsonl ended in a line cut short (an interrupted run); dropped it") }
    var done = store.doneKeys()
    let model = client.settings.model
    var summaries: [StrategySummary] = []
    for template in templates {
      let prompts = template.findings.map { template.rendered(for: $0) }
      let hashes = prompts.map { $0.hash(temperature: client.settings.temperature, seed: client.settings.seed) }
      var summary = StrategySummary(template: template.name, labelFile: labelURL(template))
      var work: [Work] = []
      for r in reports.reports {
        for (p, h) in zip(prompts, hashes) {
          if done.contains(AnswerRecord.key(id: r.key, hash: h, model: model)) { summary.skippedDone += 1 } else {
            work.append(Work(report: r, prompt: p, hash: h))
          }
        }
      }
      log("\(template.name): \(work.count) requests to send, \(summary.skippedDone) already answered")
      let cpu0 = LabelRunner.cpuSeconds()
      let t0 = Date()
      try await send(work, template: template, store: store, summary: &summary)
      summary.wallSeconds = Date().timeIntervalSince(t0)
      summary.cpuSeconds = LabelRunner.cpuSeconds() - cpu0
      // A report is one request per finding.
      summary.reports = Int((Double(summary.requests) / Double(prompts.count)).rounded())
      done = store.doneKeys()
      try writeLabels(template, hashes: hashes, store: store, summary: &summary)
      summaries.append(summary)
    }
    try AtomicFile.write(JSONValue.object([
      ("model", .string(model)), ("servers", .array(client.settings.servers.map { .string($0.absoluteString) })),
      ("in_flight", .number(Double(inFlight))), ("empty_reports_skipped", .number(Double(reports.emptySkipped))),
      ("duplicate_ids_skipped", .number(Double(reports.duplicatesSkipped))),
      ("strategies", .array(summaries.map(\.json))),
    ]).serialized + "\n", to: outDir.appendingPathComponent("summary.json"))
    return summaries
  }

  /// Keeps `inFlight` conversations going; a new one starts only when one ends (back-pressure),
  /// and each answer is on disk before the next request goes out in its place.
  private func send(_ work: [Work], template: PromptTemplate, store: AnswerStore, summary: inout StrategySummary) async throws {
    let client = self.client
    let model = client.settings.model
    var next = 0
    var lastProgress = Date()
    try await withThrowingTaskGroup(of: (Work, Completion).self) { group in
      func launch() {
        guard next < work.count, !Task.isCancelled else { return }
        let w = work[next]
        next += 1
        group.addTask { (w, await client.converse(w.prompt, report: w.report.text)) }
      }
      for _ in 0..<min(inFlight, work.count) { launch() }
      while let (w, c) = try await group.next() {
        // A request cut off by cancellation is not an answer: it is asked again on the next run.
        if Task.isCancelled && c.text == nil { continue }
        let parsed = c.text.map { AnswerParser.parse($0, key: template.answerKey, options: w.prompt.finding.options) }
        let outcome = c.text == nil ? "failed" : parsed!.outcome.rawValue
        let record = AnswerRecord(id: w.report.key, template: template.name, templateHash: w.hash, model: model,
                                  finding: w.prompt.finding.column, response: c.text, parsed: parsed?.display ?? "ERROR",
                                  value: parsed?.option?.value, outcome: outcome, error: c.error, latency: c.latency,
                                  promptTokens: c.promptTokens, completionTokens: c.completionTokens,
                                  attempts: c.attempts, schema: c.usedSchema, server: c.server)
        try store.append(record)
        summary.requests += 1
        summary.latencies.append(c.latency)
        summary.promptTokens += c.promptTokens
        summary.completionTokens += c.completionTokens
        if outcome == "failed" { log("\(template.name): \(w.report.key) \(w.prompt.finding.column): \(c.error ?? "failed")") }
        launch()
        if Date().timeIntervalSince(lastProgress) >= progressEvery {
          lastProgress = Date()
          log("\(template.name): \(summary.requests)/\(work.count) requests answered")
        }
      }
    }
    if Task.isCancelled { throw CancellationError() }
  }

  /// The CheXpert-format label file: id columns, then one column per finding (1.0/0.0/-1.0). A
  /// report with an ERROR or failed answer gets no row: a blank cell would read as "not mentioned".
  private func writeLabels(_ template: PromptTemplate, hashes: [String], store: AnswerStore, summary: inout StrategySummary) throws {
    let model = client.settings.model
    var latest: [String: AnswerRecord] = [:]
    let wanted = Set(hashes)
    for r in store.records where r.model == model && wanted.contains(r.templateHash) { latest[r.key] = r }
    for r in latest.values { summary.outcomes[r.outcome, default: 0] += 1 }
    var csv = CSVWriter(header: reports.idHeader + template.findings.map(\.column))
    for report in reports.reports {
      var cells: [String] = []
      for h in hashes {
        guard let v = latest[AnswerRecord.key(id: report.key, hash: h, model: model)]?.value else { break }
        cells.append(String(format: "%.1f", v))
      }
      if cells.count == hashes.count {
        csv.append(report.idColumns + cells)
        summary.rowsWritten += 1
      } else {
        summary.rowsIncomplete += 1
      }
    }
    try csv.write(to: labelURL(template))
  }

  static func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(0, &u)  // RUSAGE_SELF
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
  }
}
