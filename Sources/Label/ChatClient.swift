import Common
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An error about the run itself (server, settings), worded for the user.
public typealias LabelError = UserError

/// How to talk to the servers. The API key is held here and sent only in the Authorization header.
public struct ClientSettings {
  public var servers: [URL]
  public var model: String
  public var apiKey: String?
  /// Seconds one attempt may take before it counts as timed out (and is retried).
  public var timeout: TimeInterval = 120
  /// Attempts after the first, on 429, 5xx, timeouts and dropped connections.
  public var maxRetries: Int = 5
  public var backoffBase: TimeInterval = 1
  public var backoffCap: TimeInterval = 60
  public var temperature: Double = 0
  public var seed: Int = 42
  /// Ask for JSON-schema constrained output; a server that answers 400 is asked again without it.
  public var responseFormat: Bool = true

  public init(servers: [URL], model: String, apiKey: String? = nil) {
    self.servers = servers
    self.model = model
    self.apiKey = apiKey
  }

  /// `http://host:8000`, `http://host:8000/` and `http://host:8000/v1` all mean the same API root.
  public static func apiRoot(_ url: URL) -> URL {
    var s = url.absoluteString
    while s.hasSuffix("/") { s.removeLast() }
    if !s.hasSuffix("/v1") { s += "/v1" }
    return URL(string: s)!
  }
}

/// One chat message on the wire.
public struct ChatMessage {
  public let role: String
  public let content: String
}

/// What one conversation (all turns, retries included) came to.
public struct Completion {
  /// The last turn's text; nil when a request kept failing.
  public var text: String?
  public var error: String?
  public var attempts = 0
  public var promptTokens = 0
  public var completionTokens = 0
  public var usedSchema = false
  public var server = ""
  public var latency: TimeInterval = 0
}

/// Least-outstanding-requests choice over several servers; remembers which take `response_format`.
final class ServerPool: @unchecked Sendable {
  let roots: [URL]
  private let lock = NSLock()
  private var outstanding: [Int]
  private var acceptsSchema: [Bool]
  private var turn = 0

  init(roots: [URL], schema: Bool) {
    self.roots = roots
    outstanding = Array(repeating: 0, count: roots.count)
    acceptsSchema = Array(repeating: schema, count: roots.count)
  }

  /// The server with the fewest requests in flight (ties rotate); `avoiding` a server that just
  /// failed when another one exists.
  func acquire(avoiding: Int? = nil) -> Int {
    lock.lock(); defer { lock.unlock() }
    var best = -1
    for k in 0..<roots.count {
      let i = (turn + k) % roots.count
      if i == avoiding && roots.count > 1 { continue }
      if best < 0 || outstanding[i] < outstanding[best] { best = i }
    }
    turn = (turn + 1) % roots.count
    outstanding[best] += 1
    return best
  }
  func release(_ i: Int) { lock.lock(); outstanding[i] -= 1; lock.unlock() }
  func schema(_ i: Int) -> Bool { lock.lock(); defer { lock.unlock() }; return acceptsSchema[i] }
  func rejectSchema(_ i: Int) { lock.lock(); acceptsSchema[i] = false; lock.unlock() }
}

/// An OpenAI-compatible chat completions client (vLLM, llama.cpp server, Ollama, TGI).
public final class ChatClient: @unchecked Sendable {
  public let settings: ClientSettings
  let pool: ServerPool
  let session: URLSession
  /// Called with one line per retry or failure; never with report text or the key.
  let log: @Sendable (String) -> Void

  public init(settings: ClientSettings, maxInFlight: Int, log: @escaping @Sendable (String) -> Void = { _ in }) {
    self.settings = settings
    self.log = log
    pool = ServerPool(roots: settings.servers.map(ClientSettings.apiRoot), schema: settings.responseFormat)
    deadlines = Deadlines(timeout: settings.timeout)
    let config = URLSessionConfiguration.ephemeral
    config.httpMaximumConnectionsPerHost = max(6, maxInFlight)
    // FoundationNetworking re-arms a dispatch timer on every callback of a request that has a
    // timeout, which cost 5-10 ms of CPU per request in scripts/bench/label.sh; `Deadlines` does
    // the per-request timeout instead, with one sweep timer for all requests.
    config.timeoutIntervalForRequest = ChatClient.noTimeout
    config.timeoutIntervalForResource = ChatClient.noTimeout
    config.requestCachePolicy = .reloadIgnoringLocalCacheData
    config.urlCache = nil
    config.httpCookieStorage = nil
    session = URLSession(configuration: config)
  }

  deinit {
    deadlines.stop()
    session.invalidateAndCancel()
  }

  static let noTimeout: TimeInterval = 7 * 86400
  private let deadlines: Deadlines

  private func request(_ url: URL, method: String, body: Data? = nil, timeout: TimeInterval = ChatClient.noTimeout) -> URLRequest {
    var r = URLRequest(url: url, timeoutInterval: timeout)
    r.httpMethod = method
    if let body {
      r.httpBody = body
      r.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    if let key = settings.apiKey, !key.isEmpty { r.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
    return r
  }

  /// Checks every server answers `/v1/models` and serves the model, before any report is sent.
  public func healthCheck() async throws {
    for root in pool.roots {
      let url = root.appendingPathComponent("models")
      let data: Data, response: URLResponse
      do { (data, response) = try await session.data(for: request(url, method: "GET", timeout: settings.timeout)) } catch {
        throw LabelError("server \(root.absoluteString) is unreachable (\(Self.describe(error))); check --server and that the server is running")
      }
      let status = (response as? HTTPURLResponse)?.statusCode ?? 0
      if status == 401 || status == 403 {
        throw LabelError("server \(root.absoluteString) refused the API key (HTTP \(status)); set the right key in the environment variable named by --api-key-env")
      }
      guard status == 200 else {
        throw LabelError("server \(root.absoluteString) answered HTTP \(status) to GET /v1/models; is it an OpenAI-compatible server?")
      }
      guard let obj = JSONValue.parse(String(decoding: data, as: UTF8.self)) as? [String: Any],
            let list = obj["data"] as? [[String: Any]] else {
        throw LabelError("server \(root.absoluteString) answered GET /v1/models without a model list; is it an OpenAI-compatible server?")
      }
      let ids = list.compactMap { $0["id"] as? String }
      guard ids.contains(settings.model) else {
        throw LabelError("server \(root.absoluteString) does not serve model '\(settings.model)'; it serves: \(ids.isEmpty ? "(none)" : ids.joined(separator: ", ")); pass --model with one of them")
      }
    }
  }

  /// Runs the conversation of one prompt over one report: every user turn in order, each answer
  /// kept as an assistant message. Never throws: a request that keeps failing comes back with
  /// `error` set.
  public func converse(_ prompt: RenderedPrompt, report: String) async -> Completion {
    let start = DispatchTime.now().uptimeNanoseconds
    var result = Completion()
    var messages: [ChatMessage] = []
    let system = prompt.systemText(report: report)
    if !system.isEmpty { messages.append(ChatMessage(role: "system", content: system)) }
    for turn in prompt.turns.indices {
      messages.append(ChatMessage(role: "user", content: prompt.userTurn(turn, report: report)))
      let last = turn == prompt.turns.count - 1
      let reply = await complete(messages, prompt: prompt, constrain: last, into: &result)
      guard let reply else { break }
      messages.append(ChatMessage(role: "assistant", content: reply))
      if last { result.text = reply }
    }
    result.latency = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return result
  }

  enum Attempt {
    case ok(String, prompt: Int, completion: Int)
    case retry(String, after: TimeInterval?)
    case fail(String)
    case schemaRejected
  }

  /// One request with retries; returns the reply text or nil (with `into.error` set).
  private func complete(_ messages: [ChatMessage], prompt: RenderedPrompt, constrain: Bool,
                        into result: inout Completion) async -> String? {
    var avoid: Int? = nil
    var retriesLeft = settings.maxRetries
    var backoffStep = 0
    while true {
      if Task.isCancelled { result.error = "cancelled"; return nil }
      let server = pool.acquire(avoiding: avoid)
      let useSchema = constrain && pool.schema(server)
      result.attempts += 1
      result.server = pool.roots[server].absoluteString
      let outcome = await attempt(messages, prompt: prompt, schema: useSchema, server: server)
      pool.release(server)
      switch outcome {
      case let .ok(text, p, c):
        result.promptTokens += p
        result.completionTokens += c
        result.usedSchema = result.usedSchema || useSchema
        return text
      case .schemaRejected:
        pool.rejectSchema(server)
        log("server \(pool.roots[server].absoluteString) rejected response_format (HTTP 400); using tag extraction there")
      case let .fail(message):
        result.error = message
        return nil
      case let .retry(message, retryAfter):
        guard retriesLeft > 0, !Task.isCancelled else {
          result.error = "\(message) (gave up after \(result.attempts) attempts)"
          return nil
        }
        retriesLeft -= 1
        avoid = server
        let exp = min(settings.backoffCap, settings.backoffBase * pow(2, Double(backoffStep)))
        backoffStep += 1
        // Equal jitter: half fixed, half random, so a fleet of clients does not retry in step.
        var delay = exp / 2 + Double.random(in: 0...(exp / 2))
        if let retryAfter { delay = max(delay, min(retryAfter, settings.backoffCap)) }
        log("retrying in \(String(format: "%.2f", delay)) s: \(message)")
        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
      }
    }
  }

  func body(_ messages: [ChatMessage], prompt: RenderedPrompt, schema: Bool) -> Data {
    var fields: [(String, JSONValue)] = [
      ("model", .string(settings.model)),
      ("messages", .array(messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) })),
      ("temperature", .number(settings.temperature)),
      ("seed", .number(Double(settings.seed))),
      ("max_tokens", .number(Double(prompt.template.maxTokens))),
    ]
    if !prompt.template.stop.isEmpty && !schema { fields.append(("stop", .array(prompt.template.stop.map { .string($0) }))) }
    if schema {
      fields.append(("response_format", .object([
        ("type", .string("json_schema")),
        ("json_schema", .object([("name", .string("answer")), ("strict", .bool(true)), ("schema", prompt.responseSchema)])),
      ])))
    }
    return Data(JSONValue.object(fields).bytes)
  }

  private func attempt(_ messages: [ChatMessage], prompt: RenderedPrompt, schema: Bool, server: Int) async -> Attempt {
    let url = pool.roots[server].appendingPathComponent("chat/completions")
    let req = request(url, method: "POST", body: body(messages, prompt: prompt, schema: schema))
    let data: Data, response: URLResponse
    do { (data, response) = try await send(req) } catch {
      return .retry("\(pool.roots[server].absoluteString): \(Self.describe(error))", after: nil)
    }
    let http = response as? HTTPURLResponse
    let status = http?.statusCode ?? 0
    let text = String(decoding: data, as: UTF8.self)
    switch status {
    case 200:
      guard let obj = JSONValue.parse(text) as? [String: Any],
            let choices = obj["choices"] as? [[String: Any]], let first = choices.first,
            let message = first["message"] as? [String: Any] else {
        return .retry("\(pool.roots[server].absoluteString): HTTP 200 without choices[0].message", after: nil)
      }
      let content = message["content"] as? String ?? ""
      let usage = obj["usage"] as? [String: Any]
      return .ok(content, prompt: usage?["prompt_tokens"] as? Int ?? 0, completion: usage?["completion_tokens"] as? Int ?? 0)
    case 400 where schema:
      return .schemaRejected
    case 408, 429, 500...599:
      let after = http?.value(forHTTPHeaderField: "Retry-After").flatMap(Double.init)
      return .retry("\(pool.roots[server].absoluteString): HTTP \(status)", after: after)
    default:
      return .fail("\(pool.roots[server].absoluteString): HTTP \(status): \(Self.serverMessage(text))")
    }
  }

  /// One request under the client's own deadline; cancelling the Swift task cancels the request.
  private func send(_ req: URLRequest) async throws -> (Data, URLResponse) {
    let handle = TaskHandle()
    let result: (Data, URLResponse)
    do {
      result = try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (cont: CheckedContinuation<(Data, URLResponse), Error>) in
        let task = session.dataTask(with: req) { data, response, error in
          if let error { cont.resume(throwing: error) } else if let response {
            cont.resume(returning: (data ?? Data(), response))
          } else { cont.resume(throwing: URLError(.badServerResponse)) }
        }
        handle.set(task, id: deadlines.add(task))
        task.resume()
      }
      } onCancel: { handle.cancel() }
    } catch {
      if deadlines.remove(handle.id) { throw DeadlineExceeded() }
      throw error
    }
    _ = deadlines.remove(handle.id)
    return result
  }

  /// The `error.message` of an OpenAI-style error body, cut short.
  static func serverMessage(_ body: String) -> String {
    if let obj = JSONValue.parse(body) as? [String: Any] {
      if let e = obj["error"] as? [String: Any], let m = e["message"] as? String { return String(m.prefix(300)) }
      if let m = obj["message"] as? String { return String(m.prefix(300)) }
    }
    return String(body.prefix(300))
  }

  static func describe(_ error: Error) -> String {
    if error is DeadlineExceeded { return "timed out" }
    if let u = error as? URLError {
      switch u.code {
      case .timedOut: return "timed out"
      case .cannotConnectToHost: return "connection refused"
      case .networkConnectionLost: return "connection lost"
      case .cancelled: return "cancelled"
      default: return "network error \(u.code.rawValue)"
      }
    }
    return "\(error)"
  }
}

/// The URLSessionTask behind one request, so that task cancellation can reach it.
final class TaskHandle: @unchecked Sendable {
  private let lock = NSLock()
  private var task: URLSessionTask?
  private var cancelled = false
  private(set) var id = -1
  func set(_ t: URLSessionTask, id: Int) {
    lock.lock(); task = t; self.id = id; let c = cancelled; lock.unlock()
    if c { t.cancel() }
  }
  func cancel() { lock.lock(); cancelled = true; let t = task; lock.unlock(); t?.cancel() }
}

struct DeadlineExceeded: Error {}

/// Per-request timeouts with one sweep timer: requests past their deadline are cancelled, and the
/// error they end with is reported as a timeout.
final class Deadlines: @unchecked Sendable {
  private let lock = NSLock()
  private var entries: [Int: (task: URLSessionTask, deadline: UInt64)] = [:]
  private var expired = Set<Int>()
  private var nextId = 0
  private let timeoutNanos: UInt64
  private let timer: DispatchSourceTimer

  init(timeout: TimeInterval) {
    timeoutNanos = UInt64(timeout * 1e9)
    timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
    // Sweep about ten times per timeout, at most every 20 ms and at least every second.
    let period = min(1.0, max(0.02, timeout / 10))
    timer.schedule(deadline: .now() + period, repeating: period, leeway: .milliseconds(Int(period * 100)))
    timer.setEventHandler { [weak self] in self?.sweep() }
    timer.resume()
  }

  func stop() { timer.cancel() }

  func add(_ task: URLSessionTask) -> Int {
    let deadline = DispatchTime.now().uptimeNanoseconds + timeoutNanos
    lock.lock(); defer { lock.unlock() }
    nextId += 1
    entries[nextId] = (task, deadline)
    return nextId
  }

  /// Forgets a request; true when it had been cancelled for its deadline.
  func remove(_ id: Int) -> Bool {
    lock.lock(); defer { lock.unlock() }
    entries[id] = nil
    return expired.remove(id) != nil
  }

  private func sweep() {
    let now = DispatchTime.now().uptimeNanoseconds
    var late: [URLSessionTask] = []
    lock.lock()
    for (id, e) in entries where e.deadline <= now {
      late.append(e.task)
      expired.insert(id)
      entries[id] = nil
    }
    lock.unlock()
    for t in late { t.cancel() }
  }
}
