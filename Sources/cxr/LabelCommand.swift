import ArgumentParser
import Foundation
import Label

/// `cxr label`: make a label schema from reports with an LLM behind any OpenAI-compatible server.
struct LabelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "label",
    abstract: "Label reports with an LLM served by an OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI).",
    discussion: "Writes <out>/answers.jsonl (every answer, appended as it arrives), one CheXpert-format label "
      + "file <out>/<template name>.csv per prompt template (a finding without a label leaves its cell empty), "
      + "<out>/errors.csv (every answer without a label: id, finding, kind, reason) and <out>/summary.json. "
      + "An answer cut off by max_tokens is TRUNCATED, never a label. The exit status is 3 when answers have "
      + "no label (see --allow-failures). Interrupting is safe: run the same command again and only the "
      + "missing answers are asked for. Report text is never printed (except by --verbose, which shows "
      + "unparsable answers).")

  @Option(name: .customLong("reports"), help: "A CSV with an id and a report column, or MIMIC-CXR's report folder (files/pXX/pSUBJECT/sSTUDY.txt).")
  var reports: String
  @Option(help: "Id column of a report CSV (CANDID-PTX: SOPInstanceUID).") var idColumn = "SOPInstanceUID"
  @Option(help: "Report text column of a report CSV (CANDID-PTX: Report).") var textColumn = "Report"
  @Option(name: .customLong("prompt"), help: "Prompt template file (YAML or JSON, or a RadPrompter .toml prompt); repeat for several strategies.")
  var prompts: [String] = []
  @Option(name: .customLong("server"), help: "Server URL, e.g. http://127.0.0.1:8000; repeat to share the load over a fleet.")
  var servers: [String] = []
  @Option(help: "Model name as the server lists it in /v1/models.") var model: String
  @Option(help: "Environment variable that holds the API key (never printed).") var apiKeyEnv = "OPENAI_API_KEY"
  @Option(help: "Output folder.") var out: String
  @Option(help: "Requests in flight (the study used 12 to 24 per GPU).") var inFlight = 16
  @Option(help: "Seconds one request may take before it is retried.") var timeout: Double = 120
  @Option(help: "Retries on 429, 5xx, timeouts and dropped connections.") var retries = 5
  @Option(help: ArgumentHelp("Answers that may end without a label (unparsable, truncated, failed) before the exit status says so: a count or a percentage of the answers.", valueName: "N|P%"))
  var allowFailures = "0"
  @Option(help: "Sampling seed sent with every request.") var seed = 42
  @Option(help: "Sampling temperature.") var temperature: Double = 0
  @Flag(help: "Never send response_format (JSON-schema constrained output); read answers from the text.")
  var noResponseFormat = false
  @Flag(help: "Also write <out>/<template>.radprompter.csv in RadPrompter's output layout (index, <variable>_response, #Key: value lines).")
  var radprompterCsv = false
  @Flag(help: "Also print the raw text of answers that could not be parsed (may quote reports).")
  var verbose = false

  func validate() throws {
    if prompts.isEmpty { throw ValidationError("give at least one --prompt (e.g. configs/prompts/zero-shot.yaml)") }
    if servers.isEmpty { throw ValidationError("give at least one --server URL") }
    for s in servers {
      guard let u = URL(string: s), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
        throw ValidationError("--server '\(s)' is not an http(s) URL like http://127.0.0.1:8000")
      }
    }
    if inFlight < 1 { throw ValidationError("--in-flight must be at least 1") }
    if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    if retries < 0 { throw ValidationError("--retries must be 0 or more") }
    _ = try FailureBudget(allowFailures)
  }

  func run() throws {
    let stderr = FileHandle.standardError
    let log: @Sendable (String) -> Void = { stderr.write(Data(($0 + "\n").utf8)) }
    let templates = try prompts.map { try PromptTemplate.load(URL(fileURLWithPath: $0)) }
    let input = URL(fileURLWithPath: reports)
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: input.path, isDirectory: &isDir) else {
      throw ValidationError("--reports \(input.path) does not exist")
    }
    let set = isDir.boolValue ? try ReportSet.mimic(input)
      : try ReportSet.csv(input, idColumn: idColumn, textColumn: textColumn)
    log("\(set.reports.count) reports; \(set.emptySkipped) empty report(s) skipped" +
        (set.duplicatesSkipped > 0 ? "; \(set.duplicatesSkipped) rows repeat an id and were skipped" : ""))
    var settings = ClientSettings(servers: servers.map { URL(string: $0)! }, model: model,
                                  apiKey: ProcessInfo.processInfo.environment[apiKeyEnv])
    settings.timeout = timeout
    settings.maxRetries = retries
    settings.seed = seed
    settings.temperature = temperature
    settings.responseFormat = !noResponseFormat
    let client = ChatClient(settings: settings, maxInFlight: inFlight, log: log)
    let outDir = URL(fileURLWithPath: out)
    let runner = try LabelRunner(client: client, templates: templates, reports: set, outDir: outDir,
                                 inFlight: inFlight, log: log)
    runner.radPrompterCSV = radprompterCsv
    let summaries = try blocking {
      do {
        let s = try await runner.run()
        await client.shutdown()
        return s
      } catch {
        await client.shutdown()
        throw error
      }
    }
    if verbose {
      let store = try AnswerStore(url: runner.answersURL)
      for r in store.records where r.outcome == "error" {
        log("unparsable answer for \(r.id) \(r.finding): \(r.response ?? "")")
      }
    }
    for s in summaries { print(s.line) }
    let unlabelled = summaries.map(\.unlabelled).reduce(0, +)
    let answers = summaries.map { s in s.outcomes.values.reduce(0, +) }.reduce(0, +)
    let budget = try FailureBudget(allowFailures)
    if unlabelled > budget.allowed(of: answers) {
      log("\(unlabelled) of \(answers) answers have no label (listed in \(runner.errorsURL.path)); running the same command again asks again for the failed ones; --allow-failures \(budget.text) allows \(budget.allowed(of: answers))")
      throw ExitCode(3)
    }
  }
}

/// `--allow-failures`: a count (`25`) or a share of the answers (`0.5%`).
struct FailureBudget {
  let text: String
  let count: Int?
  let percent: Double?

  init(_ text: String) throws {
    self.text = text
    let t = text.trimmingCharacters(in: .whitespaces)
    if t.hasSuffix("%"), let p = Double(t.dropLast()), p >= 0, p <= 100 {
      count = nil; percent = p
    } else if let n = Int(t), n >= 0 {
      count = n; percent = nil
    } else {
      throw ValidationError("--allow-failures '\(text)' is neither a count (e.g. 25) nor a percentage (e.g. 0.5%)")
    }
  }

  func allowed(of answers: Int) -> Int {
    if let count { return count }
    return Int((Double(answers) * percent! / 100).rounded(.down))
  }
}

/// Runs async work from the synchronous command tree and waits for it.
private final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

private func blocking<T>(_ work: @escaping () async throws -> T) throws -> T {
  let box = ResultBox<T>()
  let done = DispatchSemaphore(value: 0)
  Task.detached {
    do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
    done.signal()
  }
  done.wait()
  return try box.result!.get()
}
