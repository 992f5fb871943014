import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Throughput and outcomes of one strategy (template) in one run, like the study's Table 3.
public struct StrategySummary {
  /// strict, recovered and default (a depends_on fallback, no request) are labels; the rest not.
  public static let outcomeNames = ["strict", "recovered", "default", "error", "truncated", "failed"]
  public var template: String
  public var labelFile: URL
  /// Requests answered in this run, and of them the answers that gave a label.
  public var requests = 0
  public var succeeded = 0
  /// Findings per report (one conversation each).
  public var findingsPerReport = 1
  public var skippedDone = 0
  public var wallSeconds = 0.0
  public var promptTokens = 0
  public var completionTokens = 0
  public var latencies: [Double] = []
  /// Over every answer of this template and model (earlier runs included).
  public var outcomes: [String: Int] = Dictionary(uniqueKeysWithValues: StrategySummary.outcomeNames.map { ($0, 0) })
  /// Answers that were cut, fit on the retry with the template's truncation_max_tokens.
  public var fitAfterRetry = 0
  public var maxTokens = 0
  /// The most tokens a complete answer used, and the largest max_tokens a truncated one hit.
  public var longestCompleteAnswer = 0
  public var largestTruncatedLimit = 0
  /// Rows of the label file: all findings labelled, some (the others' cells empty), none (no row).
  public var rowsComplete = 0
  public var rowsPartial = 0
  public var rowsLeftOut = 0
  public var cpuSeconds = 0.0

  /// Answers without a label: unparsable, truncated or failed.
  public var unlabelled: Int { (outcomes["error"] ?? 0) + (outcomes["truncated"] ?? 0) + (outcomes["failed"] ?? 0) }
  public var rowsWritten: Int { rowsComplete + rowsPartial }
  /// Throughput counts the answers that gave a label, in reports (findingsPerReport answers each).
  public var reports: Int { Int((Double(succeeded) / Double(max(1, findingsPerReport))).rounded()) }
  public var reportsPerMinute: Double { wallSeconds > 0 ? Double(succeeded) / Double(max(1, findingsPerReport)) / wallSeconds * 60 : 0 }
  public var tokensPerSecond: Double { wallSeconds > 0 ? Double(completionTokens) / wallSeconds : 0 }
  public var cpuMillisPerRequest: Double { requests > 0 ? cpuSeconds * 1000 / Double(requests) : 0 }
  public func latencyPercentile(_ p: Double) -> Double {
    guard !latencies.isEmpty else { return 0 }
    let s = latencies.sorted()
    // Nearest rank.
    let rank = Int((p / 100 * Double(s.count)).rounded(.up))
    return s[max(0, min(s.count - 1, rank - 1))]
  }

  /// The max_tokens that would have fit, when answers were cut: a quarter above the longest
  /// complete answer, at least twice the largest limit an answer was still cut at, in steps of 64.
  public var suggestedMaxTokens: Int? {
    guard (outcomes["truncated"] ?? 0) > 0 || fitAfterRetry > 0 else { return nil }
    let need = max(Int((Double(longestCompleteAnswer) * 1.25).rounded(.up)), 2 * largestTruncatedLimit, maxTokens + 1)
    return (need + 63) / 64 * 64
  }

  public var json: JSONValue {
    .object([
      ("template", .string(template)), ("label_file", .string(labelFile.lastPathComponent)),
      ("reports", .number(Double(reports))), ("requests", .number(Double(requests))),
      ("answers_labelled", .number(Double(succeeded))),
      ("already_done", .number(Double(skippedDone))), ("wall_s", .number(round3(wallSeconds))),
      ("reports_per_min", .number(round3(reportsPerMinute))), ("tokens_per_s", .number(round3(tokensPerSecond))),
      ("prompt_tokens", .number(Double(promptTokens))), ("completion_tokens", .number(Double(completionTokens))),
      ("latency_p50_s", .number(round3(latencyPercentile(50)))), ("latency_p95_s", .number(round3(latencyPercentile(95)))),
      ("cpu_ms_per_request", .number(round3(cpuMillisPerRequest))),
      ("outcomes", .object(StrategySummary.outcomeNames.map { ($0, .number(Double(outcomes[$0] ?? 0))) })),
      ("max_tokens", .number(Double(maxTokens))), ("fit_after_truncation_retry", .number(Double(fitAfterRetry))),
      ("longest_complete_answer_tokens", .number(Double(longestCompleteAnswer))),
      ("suggested_max_tokens", suggestedMaxTokens.map { .number(Double($0)) } ?? .null),
      ("rows_written", .number(Double(rowsWritten))), ("rows_partial", .number(Double(rowsPartial))),
      ("rows_left_out", .number(Double(rowsLeftOut))),
    ])
  }
  private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

  public var line: String {
    var s = String(format: "%@: %d requests (%d already done) in %.1f s: %d labelled answers, %.1f reports/min, %.1f tokens/s, latency p50 %.3f s p95 %.3f s, client CPU %.3f ms/request; answers: %d strict, %d recovered, %d ERROR, %d TRUNCATED, %d failed; %@: %d rows (%d with empty cells), %d reports left out",
                   template, requests, skippedDone, wallSeconds, succeeded, reportsPerMinute, tokensPerSecond,
                   latencyPercentile(50), latencyPercentile(95), cpuMillisPerRequest,
                   outcomes["strict"]!, outcomes["recovered"]!, outcomes["error"]!, outcomes["truncated"]!, outcomes["failed"]!,
                   labelFile.lastPathComponent, rowsWritten, rowsPartial, rowsLeftOut)
    if let suggested = suggestedMaxTokens {
      s += "; \(outcomes["truncated"]!) answers cut at max_tokens \(maxTokens)"
      if fitAfterRetry > 0 { s += " (\(fitAfterRetry) more fit on the retry)" }
      s += ": suggested max_tokens \(suggested) (the longest complete answer used \(longestCompleteAnswer) tokens)"
    }
    return s
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
  /// Also write `<out>/<template>.radprompter.csv`, RadPrompter's output layout.
  public var radPrompterCSV = false

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
  public var errorsURL: URL { outDir.appendingPathComponent("errors.csv") }
  public func labelURL(_ t: PromptTemplate) -> URL { outDir.appendingPathComponent("\(t.name).csv") }

  /// One request to make. A class: a worker hands it on by reference (a RenderedPrompt carries
  /// its whole template, dozens of references to retain per copy).
  final class Work: @unchecked Sendable {
    let report: Report
    let prompt: RenderedPrompt
    let hash: String
    init(report: Report, prompt: RenderedPrompt, hash: String) { self.report = report; self.prompt = prompt; self.hash = hash }
  }

  /// One answer without a label, as errors.csv lists it.
  struct Unlabelled {
    let template: String
    let report: Report
    let finding: String
    let kind: String
    let reason: String
  }

  public func run() async throws -> [StrategySummary] {
    try await client.healthCheck()
    let store = try AnswerStore(url: answersURL)
    if store.droppedPartialLine { log("answers.jsonl ended in a line cut short (an interrupted run); dropped it") }
    var done = store.doneKeys()
    let model = client.settings.model
    var summaries: [StrategySummary] = []
    var unlabelled: [Unlabelled] = []
    var fleetDown: String? = nil
    for template in templates {
      let prompts = template.findings.map { template.rendered(for: $0) }
      let hashes = prompts.map { $0.hash(temperature: client.settings.temperature, seed: client.settings.seed) }
      var summary = StrategySummary(template: template.name, labelFile: labelURL(template))
      summary.findingsPerReport = prompts.count
      summary.maxTokens = template.maxTokens
      // Findings that depend on another's answer go in a later wave than it.
      var depth = [Int](repeating: 0, count: prompts.count)
      for (i, f) in template.findings.enumerated() {
        if let d = f.dependsOn, let p = template.findings.firstIndex(where: { $0.column == d.finding }) { depth[i] = depth[p] + 1 }
      }
      let cpu0 = LabelRunner.cpuSeconds()
      let t0 = Date()
      for wave in 0...(depth.max() ?? 0) where fleetDown == nil {
        let latest = latestRecords(store, hashes: hashes)
        var work: [Work] = []
        for r in reports.reports {
          for i in prompts.indices where depth[i] == wave {
            let key = AnswerRecord.key(id: r.key, hash: hashes[i], model: model)
            if done.contains(key) { summary.skippedDone += 1; continue }
            let w = Work(report: r, prompt: prompts[i], hash: hashes[i])
            if let d = template.findings[i].dependsOn, let p = template.findings.firstIndex(where: { $0.column == d.finding }) {
              let parent = latest[AnswerRecord.key(id: r.key, hash: hashes[p], model: model)]
              if parent?.value == nil {
                try store.append(LabelRunner.notAsked(w, template: template, model: model,
                                                      why: "not asked: it depends on \(d.finding), which has no label"))
                continue
              }
              if parent?.parsed != d.condition {
                try store.append(LabelRunner.fallback(w, d, template: template, model: model))
                continue
              }
            }
            work.append(w)
          }
        }
        log("\(template.name): \(work.count) requests to send, \(summary.skippedDone) already answered")
        let before = summary
        let (down, after) = try await client.onEventLoop { [self] in
          var s = before
          let down = try await send(work, template: template, store: store, summary: &s)
          return (down, s)
        }
        fleetDown = down
        summary = after
        done = store.doneKeys()
      }
      summary.wallSeconds = Date().timeIntervalSince(t0)
      summary.cpuSeconds = LabelRunner.cpuSeconds() - cpu0
      unlabelled += try writeLabels(template, hashes: hashes, store: store, summary: &summary)
      if radPrompterCSV { try writeRadPrompterCSV(template, hashes: hashes, store: store) }
      summaries.append(summary)
    }
    try writeErrors(unlabelled)
    try AtomicFile.write(JSONValue.object([
      ("model", .string(model)), ("servers", .array(client.settings.servers.map { .string($0.absoluteString) })),
      ("in_flight", .number(Double(inFlight))), ("empty_reports_skipped", .number(Double(reports.emptySkipped))),
      ("duplicate_ids_skipped", .number(Double(reports.duplicatesSkipped))),
      ("unlabelled_answers", .number(Double(unlabelled.count))),
      ("strategies", .array(summaries.map(\.json))),
    ]).serialized + "\n", to: outDir.appendingPathComponent("summary.json"))
    if let fleetDown {
      throw LabelError("stopped early: \(fleetDown); the answers so far are in \(answersURL.path) and the label files; run the same command again when a server is back (only the missing answers are asked for)")
    }
    return summaries
  }

  /// Keeps `inFlight` conversations going; a new one starts only when one ends (back-pressure),
  /// and each answer is on disk before the next request goes out in its place. Returns why it
  /// stopped early when no server could take requests for a whole timeout.
  ///
  /// `inFlight` long-lived worker tasks each take the next report, converse, store the answer and
  /// take the next: no task is created per request, and an answer resumes only the worker that
  /// waits on it (a task per request, collected by the parent through the group, was a task
  /// creation and two more executor hops per answer).
  private func send(_ work: [Work], template: PromptTemplate, store: AnswerStore, summary: inout StrategySummary) async throws -> String? {
    let client = self.client
    let state = SendState(work: work, summary: summary, progressEvery: progressEvery)
    let log = self.log
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<min(inFlight, work.count) {
        group.addTask {
          while let w = state.take() {
            let c = await client.converse(w.prompt, report: w.report.text)
            // A request cut off by cancellation is not an answer: it is asked again on the next run.
            if Task.isCancelled && c.text == nil { continue }
            let record = LabelRunner.record(w, c, template: template, model: client.settings.model)
            for line in try state.finish(record, c, store: store, template: template, fleetDown: client.fleetDown) { log(line) }
          }
        }
      }
      // The first error (an answer that could not be stored) ends the run at once: leaving the
      // group by throwing cancels the conversations still in flight (waitForAll would wait for them).
      while try await group.next() != nil {}
    }
    summary = state.summary
    if Task.isCancelled { throw CancellationError() }
    return state.fleetDown
  }

  /// What the workers of one `send` share: the next report to ask about, the summary, and why the
  /// run stops early. The workers run on the client's one event loop; the lock keeps it right on
  /// any executor.
  private final class SendState: @unchecked Sendable {
    let work: [Work]
    private(set) var summary: StrategySummary
    private(set) var fleetDown: String? = nil
    private var next = 0
    private var failed = false
    private let progressEvery: UInt64
    private var lastProgress = DispatchTime.now().uptimeNanoseconds
    private let lock = NSLock()

    init(work: [Work], summary: StrategySummary, progressEvery: TimeInterval) {
      self.work = work
      self.summary = summary
      self.progressEvery = UInt64(max(0, progressEvery) * 1e9)
    }

    /// The next report to ask about; nil once all are taken, the task is cancelled, the fleet is
    /// down or storing an answer failed.
    func take() -> Work? {
      lock.lock(); defer { lock.unlock() }
      guard next < work.count, !Task.isCancelled, fleetDown == nil, !failed else { return nil }
      next += 1
      return work[next - 1]
    }

    /// Stores one answer and counts it; returns the lines to log.
    func finish(_ record: AnswerRecord, _ c: Completion, store: AnswerStore, template: PromptTemplate,
                fleetDown fleetProblem: String?) throws -> [String] {
      lock.lock(); defer { lock.unlock() }
      do { try store.append(record) } catch { failed = true; throw error }
      summary.requests += 1
      if record.value != nil { summary.succeeded += 1 }
      summary.latencies.append(c.latency)
      summary.promptTokens += c.promptTokens
      summary.completionTokens += c.completionTokens
      var lines: [String] = []
      if record.outcome == "failed" || record.outcome == "truncated" {
        lines.append("\(template.name): \(record.id) \(record.finding): \(record.outcome == "truncated" ? "TRUNCATED: " : "")\(c.error ?? "failed")")
      }
      if fleetDown == nil, let why = fleetProblem {
        fleetDown = why
        lines.append("\(template.name): no server could take requests for a whole timeout; finishing the requests in flight and stopping")
      }
      let now = DispatchTime.now().uptimeNanoseconds
      if now - lastProgress >= progressEvery {
        lastProgress = now
        lines.append("\(template.name): \(summary.requests)/\(work.count) requests answered")
      }
      return lines
    }
  }

  /// The latest record per key among this model's answers with these template hashes.
  func latestRecords(_ store: AnswerStore, hashes: [String]) -> [String: AnswerRecord] {
    let model = client.settings.model
    let wanted = Set(hashes)
    var latest: [String: AnswerRecord] = [:]
    for r in store.records where r.model == model && wanted.contains(r.templateHash) { latest[r.key] = r }
    return latest
  }

  /// A depends_on finding whose condition did not hold: its fallback answer, without a request.
  static func fallback(_ w: Work, _ d: Dependency, template: PromptTemplate, model: String) -> AnswerRecord {
    let option = w.prompt.finding.options.first { $0.answer == d.fallback }
    return AnswerRecord(id: w.report.key, template: template.name, templateHash: w.hash, model: model,
                        finding: w.prompt.finding.column, response: nil, parsed: d.fallback, value: option?.value,
                        outcome: "default", error: nil, latency: 0, promptTokens: 0, completionTokens: 0,
                        attempts: 0, schema: false, server: "")
  }

  /// A finding that could not be asked (its parent has no label): asked again on the next run.
  static func notAsked(_ w: Work, template: PromptTemplate, model: String, why: String) -> AnswerRecord {
    AnswerRecord(id: w.report.key, template: template.name, templateHash: w.hash, model: model,
                 finding: w.prompt.finding.column, response: nil, parsed: "ERROR", value: nil, outcome: "failed",
                 error: why, latency: 0, promptTokens: 0, completionTokens: 0, attempts: 0, schema: false, server: "")
  }

  /// What one conversation is stored as: a label only from a complete answer that parsed.
  static func record(_ w: Work, _ c: Completion, template: PromptTemplate, model: String) -> AnswerRecord {
    var parsed: ParsedAnswer? = nil
    let outcome: String
    if c.text == nil {
      outcome = "failed"
    } else if c.truncated {
      outcome = "truncated"
    } else {
      parsed = AnswerParser.parse(c.text!, key: w.prompt.answerKey, options: w.prompt.finding.options)
      outcome = parsed!.outcome.rawValue
    }
    let shown = outcome == "truncated" ? "TRUNCATED" : parsed?.display ?? "ERROR"
    var r = AnswerRecord(id: w.report.key, template: template.name, templateHash: w.hash, model: model,
                         finding: w.prompt.finding.column, response: c.text, parsed: shown,
                         value: parsed?.option?.value, outcome: outcome, error: c.error, latency: c.latency,
                         promptTokens: c.promptTokens, completionTokens: c.completionTokens,
                         attempts: c.attempts, schema: c.usedSchema, server: c.server)
    r.finishReason = c.finishReason
    r.maxTokens = c.maxTokens
    r.answerTokens = c.answerTokens
    return r
  }

  /// The CheXpert-format label file: id columns, then one column per finding (1.0/0.0/-1.0). A
  /// finding without a label (unparsable, truncated, failed) leaves its cell empty and is listed
  /// in errors.csv; a report without any label gets no row.
  private func writeLabels(_ template: PromptTemplate, hashes: [String], store: AnswerStore,
                           summary: inout StrategySummary) throws -> [Unlabelled] {
    let model = client.settings.model
    let latest = latestRecords(store, hashes: hashes)
    var csv = CSVWriter(header: reports.idHeader + template.findings.map(\.column))
    var unlabelled: [Unlabelled] = []
    for report in reports.reports {
      var cells: [String] = []
      for (h, finding) in zip(hashes, template.findings) {
        guard let r = latest[AnswerRecord.key(id: report.key, hash: h, model: model)] else { cells.append(""); continue }
        summary.outcomes[r.outcome, default: 0] += 1
        if let v = r.value {
          cells.append(String(format: "%.1f", v))
          summary.longestCompleteAnswer = max(summary.longestCompleteAnswer, r.answerTokens)
          if r.maxTokens > template.maxTokens { summary.fitAfterRetry += 1 }
        } else {
          cells.append("")
          if r.outcome == "truncated" { summary.largestTruncatedLimit = max(summary.largestTruncatedLimit, r.maxTokens) }
          if r.outcome == "error" {
            summary.longestCompleteAnswer = max(summary.longestCompleteAnswer, r.answerTokens)
          }
          unlabelled.append(Unlabelled(template: template.name, report: report, finding: finding.column,
                                       kind: r.outcome, reason: LabelRunner.reason(r, options: finding.options)))
        }
      }
      let filled = cells.filter { !$0.isEmpty }.count
      if filled == cells.count {
        summary.rowsComplete += 1
      } else if filled > 0 {
        summary.rowsPartial += 1
      } else {
        summary.rowsLeftOut += 1
        continue
      }
      csv.append(report.idColumns + cells)
    }
    try csv.write(to: labelURL(template))
    return unlabelled
  }

  public func radPrompterURL(_ t: PromptTemplate) -> URL { outDir.appendingPathComponent("\(t.name).radprompter.csv") }

  /// RadPrompter's output layout: `#Key: value` lines, then every field quoted: `index` (the
  /// report's place in the input, from 0), `<variable_name>_response` per finding (the answer as
  /// the options spell it, `ERROR` when there is no label: errors.csv says why), then the id
  /// columns (RadPrompter appends the input fields; the report text is left out here).
  private func writeRadPrompterCSV(_ template: PromptTemplate, hashes: [String], store: AnswerStore) throws {
    let model = client.settings.model
    let latest = latestRecords(store, hashes: hashes)
    func quoted(_ fields: [String]) -> String {
      fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",") + "\n"
    }
    var text = ""
    for (key, value) in [("Written by", "cxr label"), ("Model", model), ("Seed", "\(client.settings.seed)"),
                         ("Temperature", "\(client.settings.temperature)"), ("Prompt File", template.source),
                         ("Prompt Version", template.description),
                         ("Prompt Hash", String(SHA256.hex(hashes.joined(separator: ",")).prefix(16)))] {
      text += "#\(key): \(value)\n"
    }
    text += quoted(["index"] + template.findings.map { "\($0.name)_response" } + reports.idHeader)
    for (index, report) in reports.reports.enumerated() {
      let answers = hashes.map { h -> String in
        guard let r = latest[AnswerRecord.key(id: report.key, hash: h, model: model)], r.value != nil else { return "ERROR" }
        return r.parsed
      }
      text += quoted(["\(index)"] + answers + report.idColumns)
    }
    try AtomicFile.write(text, to: radPrompterURL(template))
  }

  /// A short reason for errors.csv (never report text: the raw answer stays in answers.jsonl).
  static func reason(_ r: AnswerRecord, options: [AnswerOption]) -> String {
    switch r.outcome {
    case "error":
      return "no answer among \(options.map(\.answer).joined(separator: "/")) could be read from the reply (\(r.response?.count ?? 0) characters; see answers.jsonl)"
    case "truncated":
      return r.error ?? "finish_reason '\(r.finishReason ?? "")'"
    default:
      return r.error ?? "no answer"
    }
  }

  /// `<out>/errors.csv`: every answer of this run's templates that gave no label, rewritten each
  /// run (an empty table when there are none).
  private func writeErrors(_ rows: [Unlabelled]) throws {
    var csv = CSVWriter(header: ["template"] + reports.idHeader + ["finding", "kind", "reason"])
    for u in rows { csv.append([u.template] + u.report.idColumns + [u.finding, u.kind, u.reason]) }
    try csv.write(to: errorsURL)
  }

  static func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(0, &u)  // RUSAGE_SELF
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
  }
}
