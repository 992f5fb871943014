import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One answer as the JSONL file keeps it.
public struct AnswerRecord {
  public var id: String
  public var template: String
  public var templateHash: String
  public var model: String
  public var finding: String
  public var response: String?
  public var parsed: String
  public var value: Double?
  /// strict, recovered, error (unparsable answer), truncated (the answer stopped for another
  /// reason than the template expects, e.g. max_tokens) or failed (no answer: the request kept
  /// failing).
  public var outcome: String
  public var error: String?
  /// The last answer's `finish_reason`, the `max_tokens` it was asked with and its tokens.
  public var finishReason: String? = nil
  public var maxTokens = 0
  public var answerTokens = 0
  public var latency: Double
  public var promptTokens: Int
  public var completionTokens: Int
  public var attempts: Int
  public var schema: Bool
  public var server: String

  /// Answers are keyed by report id, template hash and model.
  public var key: String { AnswerRecord.key(id: id, hash: templateHash, model: model) }
  static func key(id: String, hash: String, model: String) -> String { "\(hash)\u{1F}\(model)\u{1F}\(id)" }

  /// One line of the JSONL file per answer, written straight to bytes (no JSONValue tree: every
  /// case of that indirect enum is a heap box). The tests hold the tree it spells, as the oracle.
  func writeJSON(to out: inout [UInt8]) {
    func key(_ k: StaticString, first: Bool = false) {
      if !first { out.append(UInt8(ascii: ",")) }
      out.append(UInt8(ascii: "\""))
      out.append(literal: k)
      out.append(literal: #"":"#)
    }
    func string(_ s: String?) { if let s { JSONValue.writeString(s, to: &out) } else { out.append(literal: "null") } }
    func number(_ d: Double?) { if let d { JSONValue.writeNumber(d, to: &out) } else { out.append(literal: "null") } }
    out.append(UInt8(ascii: "{"))
    key("id", first: true); string(id)
    key("template"); string(template)
    key("template_hash"); string(templateHash)
    key("model"); string(model)
    key("finding"); string(finding)
    key("response"); string(response)
    key("parsed"); string(parsed)
    key("value"); number(value)
    key("outcome"); string(outcome)
    key("error"); string(error)
    key("latency_s"); number((latency * 1e4).rounded() / 1e4)
    key("prompt_tokens"); number(Double(promptTokens))
    key("completion_tokens"); number(Double(completionTokens))
    key("attempts"); number(Double(attempts))
    key("response_format"); out.append(literal: schema ? "true" : "false")
    key("server"); string(server)
    key("finish_reason"); string(finishReason)
    key("max_tokens"); number(Double(maxTokens))
    key("answer_tokens"); number(Double(answerTokens))
    out.append(UInt8(ascii: "}"))
  }

  init(id: String, template: String, templateHash: String, model: String, finding: String, response: String?,
       parsed: String, value: Double?, outcome: String, error: String?, latency: Double, promptTokens: Int,
       completionTokens: Int, attempts: Int, schema: Bool, server: String) {
    self.id = id; self.template = template; self.templateHash = templateHash; self.model = model
    self.finding = finding; self.response = response; self.parsed = parsed; self.value = value
    self.outcome = outcome; self.error = error; self.latency = latency; self.promptTokens = promptTokens
    self.completionTokens = completionTokens; self.attempts = attempts; self.schema = schema; self.server = server
  }
}

/// Reading a line of the JSONL file: id, template_hash, model and outcome must be there; any other
/// field that is missing or of another type takes its default, and unknown fields are ignored.
extension AnswerRecord: Decodable {
  enum CodingKeys: String, CodingKey {
    case id, template, templateHash = "template_hash", model, finding, response, parsed, value, outcome, error
    case latency = "latency_s", promptTokens = "prompt_tokens", completionTokens = "completion_tokens", attempts
    case schema = "response_format", server, finishReason = "finish_reason", maxTokens = "max_tokens"
    case answerTokens = "answer_tokens"
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func opt<T: Decodable>(_ type: T.Type, _ key: CodingKeys) -> T? { (try? c.decodeIfPresent(type, forKey: key)) ?? nil }
    self.init(id: try c.decode(String.self, forKey: .id), template: opt(String.self, .template) ?? "",
              templateHash: try c.decode(String.self, forKey: .templateHash), model: try c.decode(String.self, forKey: .model),
              finding: opt(String.self, .finding) ?? "", response: opt(String.self, .response),
              parsed: opt(String.self, .parsed) ?? "ERROR", value: opt(Double.self, .value),
              outcome: try c.decode(String.self, forKey: .outcome), error: opt(String.self, .error),
              latency: opt(Double.self, .latency) ?? 0, promptTokens: opt(Int.self, .promptTokens) ?? 0,
              completionTokens: opt(Int.self, .completionTokens) ?? 0, attempts: opt(Int.self, .attempts) ?? 0,
              schema: opt(Bool.self, .schema) ?? false, server: opt(String.self, .server) ?? "")
    finishReason = opt(String.self, .finishReason)
    maxTokens = opt(Int.self, .maxTokens) ?? 0
    answerTokens = opt(Int.self, .answerTokens) ?? 0
  }
}

/// The append-only JSONL of answers. Each answer is one `write` of one line as soon as it arrives,
/// so a killed run loses only the requests in flight; a line cut short by the kill is dropped when
/// the file is opened again. One run at a time: the store holds an exclusive `flock` on the file
/// while it is open (the kernel lets go when the process ends, kill -9 included), so a second run
/// on the same folder stops at once instead of asking the same questions, appending between the
/// first one's lines or cutting its line in progress.
public final class AnswerStore {
  public let url: URL
  /// Every complete record in the file, in order (later records for a key win).
  public private(set) var records: [AnswerRecord] = []
  public private(set) var droppedPartialLine = false
  private let fd: Int32
  /// The line being written (its buffer is kept between answers).
  private var line: [UInt8] = []

  public init(url: URL) throws {
    self.url = url
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let handle = open(url.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    if handle < 0 { throw FileError("cannot open \(url.path) for appending: \(String(cString: strerror(errno)))") }
    do {
      // Only a lock held elsewhere stops the run; a file system without locks (ENOLCK,
      // EOPNOTSUPP) runs unlocked, as before.
      if flock(handle, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK {
        throw FileError("\(url.path) is in use by another cxr label run (it holds the file's lock); wait for that run to end or give this one another --out")
      }
      (records, droppedPartialLine) = try AnswerStore.read(url, handle: handle)
    } catch {
      close(handle)
      throw error
    }
    fd = handle
  }

  /// The complete records of the file; a last line cut short (an interrupted run) is cut off.
  private static func read(_ url: URL, handle: Int32) throws -> ([AnswerRecord], droppedPartialLine: Bool) {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw FileError("cannot read \(url.path): \(error.localizedDescription)")
    }
    let complete = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
    var records: [AnswerRecord] = []
    var lineNo = 0
    let decoder = JSONDecoder()
    for line in data[..<complete].split(separator: 0x0A, omittingEmptySubsequences: false) {
      lineNo += 1
      if line.isEmpty { continue }
      guard let rec = try? decoder.decode(AnswerRecord.self, from: Data(line)) else {
        throw FileError("\(url.path):\(lineNo): not an answer record; move the file away or fix that line")
      }
      records.append(rec)
    }
    if complete < data.count { _ = ftruncate(handle, off_t(complete)) }
    return (records, complete < data.count)
  }

  deinit { close(fd) }

  /// Keys of answers that need no new request: anything the server answered (an unparsable or
  /// truncated answer too: at temperature 0 asking again gives the same text; a larger max_tokens
  /// is another template hash). Failed requests are asked again.
  public func doneKeys() -> Set<String> {
    Set(records.filter { $0.outcome != "failed" }.map(\.key))
  }

  public func append(_ record: AnswerRecord) throws {
    line.removeAll(keepingCapacity: true)
    record.writeJSON(to: &line)
    line.append(0x0A)
    let bytes = line
    var written = 0
    while written < bytes.count {
      let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        let why = errno
        if why == EINTR { continue }
        // A full disk (or a file-size limit) can take part of the line: take it back, so the
        // file holds whole answers only.
        if written > 0 { _ = ftruncate(fd, lseek(fd, 0, SEEK_END) - off_t(written)) }
        throw FileError("cannot append to \(url.path): \(String(cString: strerror(why)))")
      }
      written += n
    }
    records.append(record)
  }
}
