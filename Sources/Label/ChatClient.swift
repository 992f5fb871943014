import AsyncHTTPClient
import Common
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An error about the run itself (server, settings), worded for the user.
public typealias LabelError = UserError

/// How to talk to the servers. The API key is held here and sent only in the Authorization header.
public struct ClientSettings {
  public var servers: [URL]
  public var model: String
  public var apiKey: String?
  /// Seconds one attempt may take, from sending to the end of the answer (an answer is generated
  /// before its headers go out: the body follows at once), before it counts as timed out and is
  /// retried; also the longest a request waits for a server of a fleet that is all ejected.
  public var timeout: TimeInterval = 120
  /// Seconds to open a connection; a server that takes longer is treated like a dead one.
  public var connectTimeout: TimeInterval = 10
  /// Attempts after the first, on 429, 5xx, timeouts and dropped connections.
  public var maxRetries: Int = 5
  public var backoffBase: TimeInterval = 1
  public var backoffCap: TimeInterval = 60
  /// The longest `Retry-After` honoured (a server asking for an hour is waited on this long).
  public var retryAfterCap: TimeInterval = 300
  public var temperature: Double = 0
  public var seed: Int = 42
  /// Ask for JSON-schema constrained output; a server that refuses it (a 4xx naming
  /// response_format, the schema or grammars) is asked again without it, and from then on.
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

  /// The retry delay after `step` failures: exponential with equal jitter (half fixed, half
  /// random, so a fleet of clients does not retry in step), at least what Retry-After asked for.
  func backoff(step: Int, retryAfter: TimeInterval?) -> TimeInterval {
    let exp = min(backoffCap, backoffBase * pow(2, Double(step)))
    var delay = exp / 2 + Double.random(in: 0...(exp / 2))
    if let retryAfter { delay = max(delay, min(retryAfter, retryAfterCap)) }
    return delay
  }
}

/// One chat message on the wire.
public struct ChatMessage {
  public let role: String
  public let content: String
}

/// What one conversation (all turns, retries included) came to.
public struct Completion {
  /// The last turn's text (a prefilled start included); nil when a request kept failing. A
  /// truncated answer keeps its text here for review, with `truncated` set.
  public var text: String?
  public var error: String?
  /// The answer stopped for another reason than the template expects (`finish_reason: length`
  /// when `max_tokens` cut it): never read as a label.
  public var truncated = false
  /// The last turn's `finish_reason` as the server sent it (nil when it sent none).
  public var finishReason: String?
  /// The `max_tokens` of the last request (larger after a truncation retry).
  public var maxTokens = 0
  /// Completion tokens of the answer that was kept (the last turn's last attempt).
  public var answerTokens = 0
  /// Requests sent (every turn, every retry).
  public var attempts = 0
  public var promptTokens = 0
  public var completionTokens = 0
  public var usedSchema = false
  public var server = ""
  public var latency: TimeInterval = 0
}

/// The fleet: least-outstanding-requests choice over the servers that are up, with ejection.
/// A server whose connection is refused (or that fails 3 times in a row: timeouts, early closes,
/// 5xx without Retry-After) is ejected for a backoff period, then probed with GET /v1/models
/// before it gets requests again; a 429 or 503 with Retry-After pauses it for that long. It also
/// remembers which servers take `response_format`.
final class ServerPool: @unchecked Sendable {
  let roots: [URL]
  static let failuresToEject = 3

  struct Member {
    var outstanding = 0
    var acceptsSchema: Bool
    var consecutiveFailures = 0
    /// Ejections in a row (the next ejection lasts longer); a passed probe resets it.
    var ejections = 0
    /// No first attempt before this time (uptime nanoseconds).
    var unavailableUntil: UInt64 = 0
    /// Ejected: it needs a passed probe before it gets requests again.
    var ejected = false
    var probing = false
    /// Refused the key or does not serve the model: never used in this run.
    var excluded = false
    var lastProblem = ""
  }

  enum Choice {
    case server(Int)
    /// Every server is ejected, paused or excluded: try again after this many seconds.
    case none(wait: TimeInterval, why: String)
  }

  private let lock = NSLock()
  private var members: [Member]
  private var turn = 0
  private let backoffBase: TimeInterval
  private let backoffCap: TimeInterval

  init(roots: [URL], schema: Bool, backoffBase: TimeInterval, backoffCap: TimeInterval) {
    self.roots = roots
    members = roots.map { _ in Member(acceptsSchema: schema) }
    self.backoffBase = backoffBase
    self.backoffCap = backoffCap
  }

  static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

  /// The up server with the fewest requests in flight (ties rotate), `avoiding` one that just
  /// failed when another is up. `probe` lists ejected servers whose backoff is over and whose
  /// probe the caller must start.
  func acquire(avoiding: Int? = nil, probe: inout [Int]) -> Choice {
    lock.lock(); defer { lock.unlock() }
    let now = ServerPool.now()
    var best = -1, fallback = -1
    var soonest = UInt64.max
    for k in 0..<roots.count {
      let i = (turn + k) % roots.count
      let m = members[i]
      if m.excluded { continue }
      if m.ejected {
        if !m.probing {
          if m.unavailableUntil <= now { members[i].probing = true; probe.append(i) } else { soonest = min(soonest, m.unavailableUntil) }
        }
        continue
      }
      if m.unavailableUntil > now { soonest = min(soonest, m.unavailableUntil); continue }
      if i == avoiding { fallback = i; continue }
      if best < 0 || m.outstanding < members[best].outstanding { best = i }
    }
    if best < 0 { best = fallback }
    turn = (turn + 1) % roots.count
    guard best >= 0 else {
      // Probes in flight answer within the connect timeout; poll for them briefly.
      let wait = soonest == .max ? 0.05 : max(0.001, Double(soonest - now) / 1e9)
      let why = members.enumerated().map { "\(roots[$0.offset].absoluteString): \($0.element.lastProblem)" }
        .joined(separator: "; ")
      return .none(wait: min(wait, 1), why: why)
    }
    members[best].outstanding += 1
    return .server(best)
  }

  func release(_ i: Int) { lock.lock(); members[i].outstanding -= 1; lock.unlock() }
  func schema(_ i: Int) -> Bool { lock.lock(); defer { lock.unlock() }; return members[i].acceptsSchema }
  func rejectSchema(_ i: Int) { lock.lock(); members[i].acceptsSchema = false; lock.unlock() }

  func succeeded(_ i: Int) {
    lock.lock(); members[i].consecutiveFailures = 0; lock.unlock()
  }

  /// Records a failed attempt; true when the server was ejected by it.
  @discardableResult
  func failed(_ i: Int, problem: String, ejectNow: Bool = false, pauseFor: TimeInterval? = nil) -> Bool {
    lock.lock(); defer { lock.unlock() }
    members[i].lastProblem = problem
    if let pauseFor {
      members[i].unavailableUntil = max(members[i].unavailableUntil, ServerPool.now() + UInt64(pauseFor * 1e9))
      return false
    }
    members[i].consecutiveFailures += 1
    guard !members[i].ejected, ejectNow || members[i].consecutiveFailures >= ServerPool.failuresToEject else { return false }
    eject(i)
    return true
  }

  /// Ejected for a backoff that doubles with each ejection in a row (lock held).
  private func eject(_ i: Int) {
    let period = min(backoffCap, backoffBase * pow(2, Double(members[i].ejections)))
    members[i].ejections += 1
    members[i].ejected = true
    members[i].probing = false
    members[i].unavailableUntil = ServerPool.now() + UInt64(period * 1e9)
  }

  /// A probe's result: back in the fleet, or ejected again for longer.
  func probed(_ i: Int, ok: Bool, problem: String) {
    lock.lock(); defer { lock.unlock() }
    members[i].probing = false
    if ok {
      members[i].ejected = false
      members[i].ejections = 0
      members[i].consecutiveFailures = 0
      members[i].unavailableUntil = 0
    } else {
      members[i].lastProblem = problem
      eject(i)
    }
  }

  /// Start-up check results: a server that is down is ejected (and probed later); one that
  /// refused the key or lacks the model is left out of the run.
  func startEjected(_ i: Int, problem: String) { lock.lock(); members[i].lastProblem = problem; eject(i); lock.unlock() }
  func exclude(_ i: Int, problem: String) { lock.lock(); members[i].excluded = true; members[i].lastProblem = problem; lock.unlock() }

  var upCount: Int { lock.lock(); defer { lock.unlock() }; return members.filter { !$0.excluded && !$0.ejected }.count }
}

/// One HTTP exchange as the client sees it.
struct HTTPReply: Sendable {
  let status: Int
  let retryAfter: TimeInterval?
  let body: ByteBuffer
  var text: String { String(decoding: body.readableBytesView, as: UTF8.self) }

  /// The body decoded as JSON. An ASCII body (what servers send: JSON escapes the rest) is
  /// decoded from its bytes; any other goes through `text` first, as every body did before, so
  /// that invalid UTF-8 is repaired the same way.
  func decode<T: Decodable>(_ type: T.Type, with decoder: JSONDecoder) -> T? {
    let ascii = body.withUnsafeReadableBytes { raw -> Bool in
      var bits: UInt8 = 0
      for b in raw { bits |= b }
      return bits < 0x80
    }
    let data = ascii ? Data(body.readableBytesView) : Data(text.utf8)
    return try? decoder.decode(type, from: data)
  }
}

/// Collects one response on the event loop: status, Retry-After and the body in one ByteBuffer
/// (up to `limit` bytes; more fails the request the way `collect(upTo:)` did).
final class ReplyCollector: HTTPClientResponseDelegate, @unchecked Sendable {
  typealias Response = HTTPReply
  let limit: Int
  private var status = 0
  private var retryAfter: TimeInterval?
  private var body: ByteBuffer?

  init(limit: Int) { self.limit = limit }

  func didReceiveHead(task: HTTPClient.Task<HTTPReply>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
    status = Int(head.status.code)
    retryAfter = head.headers.first(name: "Retry-After").flatMap(ChatClient.parseRetryAfter)
    if let length = head.headers.first(name: "Content-Length").flatMap({ Int($0) }), length > limit {
      return task.eventLoop.makeFailedFuture(NIOTooManyBytesError(maxBytes: limit))
    }
    return task.eventLoop.makeSucceededVoidFuture()
  }

  func didReceiveBodyPart(task: HTTPClient.Task<HTTPReply>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
    if body == nil {
      body = buffer
    } else {
      var part = buffer
      body!.writeBuffer(&part)
    }
    if body!.readableBytes > limit { return task.eventLoop.makeFailedFuture(NIOTooManyBytesError(maxBytes: limit)) }
    return task.eventLoop.makeSucceededVoidFuture()
  }

  func didFinishRequest(task: HTTPClient.Task<HTTPReply>) throws -> HTTPReply {
    HTTPReply(status: status, retryAfter: retryAfter, body: body ?? ByteBuffer())
  }
}

/// Sends a request's head and body in one write. AsyncHTTPClient flushes the head on its own and
/// then the body, in the same event loop tick: each flush was a write syscall and a TCP segment
/// (on loopback the sender also pays the receiver's TCP processing). Flushes here wait for the
/// end of the tick, so the two go out together; the bytes and their order are unchanged, and a
/// close sends what is pending first.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
  typealias OutboundIn = NIOAny
  private var pending = false

  func flush(context: ChannelHandlerContext) {
    guard !pending else { return }
    pending = true
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    context.eventLoop.execute {
      let (handler, context) = loopBound.value
      guard handler.pending else { return }
      handler.pending = false
      context.flush()
    }
  }

  func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
    if pending {
      pending = false
      context.flush()
    }
    context.close(mode: mode, promise: promise)
  }
}

/// Why an attempt got no HTTP answer; decides how the fleet treats the server.
enum TransportFailure: Error {
  case refused(String)
  case closedEarly
  case timedOut
  case other(String)

  var message: String {
    switch self {
    case .refused(let why): return why
    case .closedEarly: return "connection closed without an answer"
    case .timedOut: return "timed out"
    case .other(let why): return why
    }
  }
}

/// An OpenAI-compatible chat completions client (vLLM, llama.cpp server, Ollama, TGI) over
/// AsyncHTTPClient: pooled keep-alive connections per server, a deadline per request, and no
/// retries inside the HTTP layer (the client decides where a failed request goes next).
public final class ChatClient: @unchecked Sendable {
  public let settings: ClientSettings
  let pool: ServerPool
  let http: HTTPClient
  /// One event loop for the HTTP connections and, through `executor`, for the tasks that wait
  /// on them (see EventLoopTaskExecutor for why one thread).
  let eventLoopGroup: MultiThreadedEventLoopGroup
  let executor: EventLoopTaskExecutor
  /// The fixed parts of the requests to each server (URL parsed once, headers), by server index:
  /// a request only copies one and sets its body. An invalid URL is kept as the error it gave.
  let chatRequests: [Result<HTTPClient.Request, Error>]
  let modelRequests: [Result<HTTPClient.Request, Error>]
  let decoder = JSONDecoder()
  /// The fixed parts of a chat request body: `{"model":...,"messages":[` and
  /// `],"temperature":...,"seed":...,"max_tokens":`.
  let bodyHead: [UInt8]
  let bodySampling: [UInt8]
  /// Called with one line per retry, ejection or failure; never with report text or the key.
  let log: @Sendable (String) -> Void
  private let stateLock = NSLock()
  private var isShutDown = false
  private var fleetProblem: String?
  /// Set when a request found no server up for a whole timeout (cleared by the next answer):
  /// the runner then stops sending instead of failing every report the same way.
  public var fleetDown: String? { stateLock.lock(); defer { stateLock.unlock() }; return fleetProblem }
  private func setFleetProblem(_ p: String?) { stateLock.lock(); fleetProblem = p; stateLock.unlock() }

  public init(settings: ClientSettings, maxInFlight: Int, log: @escaping @Sendable (String) -> Void = { _ in }) {
    self.settings = settings
    self.log = log
    var head = Array(#"{"model":"#.utf8)
    JSONValue.writeString(settings.model, to: &head)
    head.append(contentsOf: #","messages":["#.utf8)
    bodyHead = head
    var sampling = Array(#"],"temperature":"#.utf8)
    JSONValue.writeNumber(settings.temperature, to: &sampling)
    sampling.append(contentsOf: #","seed":"#.utf8)
    JSONValue.writeNumber(Double(settings.seed), to: &sampling)
    sampling.append(contentsOf: #","max_tokens":"#.utf8)
    bodySampling = sampling
    let apiRoots = settings.servers.map(ClientSettings.apiRoot)
    pool = ServerPool(roots: apiRoots, schema: settings.responseFormat,
                      backoffBase: settings.backoffBase, backoffCap: settings.backoffCap)
    var config = HTTPClient.Configuration()
    config.timeout.connect = .milliseconds(Int64(settings.connectTimeout * 1000))
    // No read timeout: each request's deadline (`timeout`, from before it is sent to the end of
    // the answer) always comes first, and an idle-read timer is rescheduled on every read.
    // Every request in flight can have its own connection to any one server (+ a probe).
    config.connectionPool = .init(idleTimeout: .seconds(60),
                                  concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, maxInFlight + 1))
    // A refused connection fails the request at once (the fleet sends it elsewhere) instead of
    // being retried by the pool until the connect deadline.
    config.connectionPool.retryConnectionEstablishment = false
    config.httpVersion = .http1Only
    config.decompression = .disabled
    config.redirectConfiguration = .disallow
    // No tracer is set up; without this every request starts a no-op span with its attributes.
    config.tracing.tracer = nil
    // One write (and one TCP segment) per request for its head and body; see FlushCoalescer.
    config.http1_1ConnectionDebugInitializer = { channel in
      channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(FlushCoalescer(), position: .first) }
    }
    let roots = apiRoots.map(\.absoluteString)
    let apiKey = settings.apiKey
    chatRequests = roots.map { root in
      Result { try HTTPClient.Request(url: root + "/chat/completions", method: .POST, headers: ChatClient.headers(json: true, apiKey: apiKey)) }
    }
    modelRequests = roots.map { root in
      Result { try HTTPClient.Request(url: root + "/models", method: .GET, headers: ChatClient.headers(json: false, apiKey: apiKey)) }
    }
    eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    executor = EventLoopTaskExecutor(eventLoopGroup.next())
    http = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: config)
  }

  /// Closes the connections. Call once when done; a client that was never shut down closes them
  /// when it goes away.
  public func shutdown() async {
    let was = stateLock.withLock { () -> Bool in
      defer { isShutDown = true }
      return isShutDown
    }
    if !was {
      try? await http.shutdown()
      try? await eventLoopGroup.shutdownGracefully()
    }
  }

  deinit {
    if !isShutDown {
      let group = eventLoopGroup
      http.shutdown { _ in group.shutdownGracefully { _ in } }
    }
  }

  /// Runs `body` with its tasks (and their child tasks) on the client's event loop.
  public func onEventLoop<T>(_ body: () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(executor, operation: body)
  }

  static func headers(json: Bool, apiKey: String?) -> HTTPHeaders {
    var h = HTTPHeaders()
    h.add(name: "Accept", value: "application/json")
    if json { h.add(name: "Content-Type", value: "application/json") }
    if let key = apiKey, !key.isEmpty { h.add(name: "Authorization", value: "Bearer \(key)") }
    return h
  }

  /// One exchange under a deadline, from the prepared request of a server (`chatRequests`,
  /// `modelRequests`) with `body` if any. Errors come back as a `TransportFailure`.
  ///
  /// On AsyncHTTPClient's delegate API rather than its async `execute`: that one starts a Swift
  /// task per request (its cancel handler registers the request from an unstructured `Task`),
  /// which woke a thread of the global executor for every answer, re-parsed the URL string and
  /// streamed the body through an async sequence. Here the response is collected on the event
  /// loop and the waiting task resumes there once.
  func exchange(_ prepared: Result<HTTPClient.Request, Error>, body: [UInt8]?, timeout: TimeInterval) async throws -> HTTPReply {
    do {
      var request = try prepared.get()
      if let body { request.body = .byteBuffer(ByteBuffer(bytes: body)) }
      let task = http.execute(request: request, delegate: ReplyCollector(limit: 64 << 20), eventLoop: .indifferent,
                              deadline: .now() + .milliseconds(Int64(timeout * 1000)), logger: nil)
      return try await withTaskCancellationHandler {
        try await task.futureResult.get()
      } onCancel: {
        task.cancel()
      }
    } catch {
      if Task.isCancelled { throw CancellationError() }
      throw ChatClient.classify(error)
    }
  }

  static func classify(_ error: Error) -> TransportFailure {
    if let e = error as? TransportFailure { return e }
    if let e = error as? HTTPClientError {
      switch e {
      case .deadlineExceeded, .readTimeout, .writeTimeout: return .timedOut
      case .remoteConnectionClosed: return .closedEarly
      case .connectTimeout: return .refused("connection timed out")
      default: return .other("\(e)")
      }
    }
    if let e = error as? NIOConnectionError {
      let refused = e.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
      return .refused(refused ? "connection refused" : "cannot connect (\(e.connectionErrors.map { "\($0.error)" }.joined(separator: ", ")))")
    }
    if let e = error as? IOError {
      if e.errnoCode == ECONNREFUSED { return .refused("connection refused") }
      if e.errnoCode == ECONNRESET || e.errnoCode == EPIPE { return .closedEarly }
      return .other("\(e)")
    }
    if let e = error as? ChannelError, case .connectTimeout = e { return .refused("connection timed out") }
    if error is NIOConnectionError || "\(error)".contains("Connection refused") { return .refused("connection refused") }
    return .other("\(error)")
  }

  /// `Retry-After` as seconds or an HTTP date.
  static func parseRetryAfter(_ value: String) -> TimeInterval? {
    let v = value.trimmingCharacters(in: .whitespaces)
    if let s = Double(v) { return max(0, s) }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return f.date(from: v).map { max(0, $0.timeIntervalSinceNow) }
  }

  // MARK: Health

  /// What one server's GET /v1/models came to.
  enum Health {
    case serves
    /// Down or failing (connection, 5xx after the retries): ejected, probed again later.
    case down(String)
    /// Misconfigured for this run (key refused, model not served, not an OpenAI API): left out.
    case unusable(String)
  }

  /// GET /v1/models with the request retry policy when `retries` > 0 (429/5xx/timeouts retried,
  /// Retry-After honoured; a refused connection is not retried: nothing listens there).
  func checkHealth(_ i: Int, retries: Int) async -> Health {
    let root = pool.roots[i].absoluteString
    var step = 0
    while true {
      let reply: HTTPReply
      do { reply = try await exchange(modelRequests[i], body: nil, timeout: min(settings.timeout, 30)) } catch {
        if error is CancellationError { return .down("cancelled") }
        let failure = ChatClient.classify(error)
        if case .refused = failure { return .down("server \(root) is unreachable (\(failure.message)); check --server and that the server is running") }
        guard step < retries else { return .down("server \(root) is unreachable (\(failure.message)); check --server and that the server is running") }
        let delay = settings.backoff(step: step, retryAfter: nil)
        log("health check of \(root): \(failure.message); retrying in \(String(format: "%.2f", delay)) s")
        step += 1
        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
        continue
      }
      switch reply.status {
      case 200:
        guard let list = reply.decode(ModelList.self, with: decoder) else {
          return .unusable("server \(root) answered GET /v1/models without a model list; is it an OpenAI-compatible server?")
        }
        let ids = list.data.compactMap(\.id)
        guard ids.contains(settings.model) else {
          return .unusable("server \(root) does not serve model '\(settings.model)'; it serves: \(ids.isEmpty ? "(none)" : ids.joined(separator: ", ")); pass --model with one of them")
        }
        return .serves
      case 401, 403:
        return .unusable("server \(root) refused the API key (HTTP \(reply.status)); set the right key in the environment variable named by --api-key-env")
      case 408, 429, 500...599:
        guard step < retries else {
          return .down("server \(root) answered HTTP \(reply.status) to GET /v1/models \(step + 1) times")
        }
        let delay = settings.backoff(step: step, retryAfter: reply.retryAfter)
        log("health check of \(root): HTTP \(reply.status); retrying in \(String(format: "%.2f", delay)) s")
        step += 1
        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
      default:
        return .unusable("server \(root) answered HTTP \(reply.status) to GET /v1/models; is it an OpenAI-compatible server?")
      }
    }
  }

  /// Checks every server (at once) before any report is sent. The run starts when at least one
  /// serves the model; the others are named in a warning: down ones are ejected and probed
  /// again during the run, misconfigured ones are left out. With none, the first server's
  /// problem is the error.
  public func healthCheck() async throws {
    let results = await withTaskGroup(of: (Int, Health).self) { group in
      for i in pool.roots.indices { group.addTask { (i, await self.checkHealth(i, retries: self.settings.maxRetries)) } }
      var out = [Health](repeating: .serves, count: pool.roots.count)
      for await (i, h) in group { out[i] = h }
      return out
    }
    var problems: [String] = []
    for (i, h) in results.enumerated() {
      switch h {
      case .serves: break
      case .down(let why): pool.startEjected(i, problem: why); problems.append(why)
      case .unusable(let why): pool.exclude(i, problem: why); problems.append(why)
      }
    }
    if results.allSatisfy({ if case .serves = $0 { return false }; return true }) {
      if problems.count == 1 { throw LabelError(problems[0]) }
      throw LabelError("no server can be used: " + problems.joined(separator: "; "))
    }
    for p in problems { log("warning: \(p); starting with the other server(s), it is checked again during the run") }
  }

  /// A probe of an ejected server: one GET /v1/models, no retries.
  private func startProbe(_ i: Int) {
    Task.detached { [self] in
      let h = await checkHealth(i, retries: 0)
      switch h {
      case .serves:
        pool.probed(i, ok: true, problem: "")
        log("server \(pool.roots[i].absoluteString) answers again; back in the fleet")
      case .down(let why), .unusable(let why):
        pool.probed(i, ok: false, problem: why)
      }
    }
  }

  // MARK: Conversations

  /// Runs the conversation of one prompt over one report: every user turn in order, each answer
  /// kept as an assistant message. Never throws: a request that keeps failing comes back with
  /// `error` set, a truncated one with `truncated` set.
  public func converse(_ prompt: RenderedPrompt, report: String) async -> Completion {
    let start = DispatchTime.now().uptimeNanoseconds
    var result = Completion()
    var messages: [ChatMessage] = []
    messages.reserveCapacity(1 + 2 * prompt.turns.count)
    let system = prompt.systemText(report: report)
    if !system.isEmpty { messages.append(ChatMessage(role: "system", content: system)) }
    for turn in prompt.turns.indices {
      messages.append(ChatMessage(role: "user", content: prompt.userTurn(turn, report: report)))
      let last = turn == prompt.turns.count - 1
      let prefill = prompt.prefill(turn)
      guard let reply = await complete(messages, prompt: prompt, prefill: prefill, constrain: last, into: &result) else { break }
      let full = prefill + reply
      if result.truncated { result.text = full; break }
      messages.append(ChatMessage(role: "assistant", content: full))
      if last { result.text = full }
    }
    result.latency = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return result
  }

  enum Attempt {
    case ok(String, finish: String?, prompt: Int, completion: Int)
    case retry(String, after: TimeInterval?)
    case fail(String)
    case schemaRejected(String)
  }

  /// One turn with retries; returns the reply text (nil with `into.error` set). A reply that
  /// stopped for an unexpected reason is retried once with the template's larger `max_tokens`,
  /// if it has one, and else comes back with `into.truncated` set.
  private func complete(_ messages: [ChatMessage], prompt: RenderedPrompt, prefill: String, constrain: Bool,
                        into result: inout Completion) async -> String? {
    var avoid: Int? = nil
    var retriesLeft = settings.maxRetries
    var backoffStep = 0
    var maxTokens = prompt.template.maxTokens
    var waitedForFleet: TimeInterval = 0
    while true {
      if Task.isCancelled { result.error = "cancelled"; return nil }
      var probes: [Int] = []
      let choice = pool.acquire(avoiding: avoid, probe: &probes)
      for p in probes { startProbe(p) }
      guard case let .server(server) = choice else {
        guard case let .none(wait, why) = choice else { continue }
        // The whole fleet is out: wait for a pause to end or a probe to pass, up to one timeout.
        if waitedForFleet >= settings.timeout {
          result.error = "no server could take the request for \(Int(waitedForFleet.rounded())) s (\(why))"
          setFleetProblem(result.error)
          return nil
        }
        waitedForFleet += wait
        try? await Task.sleep(nanoseconds: UInt64(wait * 1e9))
        continue
      }
      let root = pool.roots[server].absoluteString
      // A prefilled answer is text that continues the prefill: no schema can constrain that.
      let useSchema = constrain && prefill.isEmpty && pool.schema(server)
      result.attempts += 1
      result.server = root
      let outcome = await attempt(messages, prompt: prompt, prefill: prefill, schema: useSchema, maxTokens: maxTokens,
                                  server: server)
      pool.release(server)
      switch outcome {
      case let .ok(text, finish, p, c):
        pool.succeeded(server)
        if fleetDown != nil { setFleetProblem(nil) }
        result.promptTokens += p
        result.completionTokens += c
        result.usedSchema = result.usedSchema || useSchema
        result.finishReason = finish
        result.maxTokens = maxTokens
        result.answerTokens = c
        if let finish, !prompt.template.finishReasons.contains(finish) {
          if let larger = prompt.template.truncationMaxTokens, maxTokens < larger {
            log("answer stopped with finish_reason '\(finish)' after \(c) tokens; asking again with max_tokens \(larger)")
            maxTokens = larger
            continue
          }
          result.truncated = true
          result.error = "finish_reason '\(finish)' after \(c) completion tokens (max_tokens \(maxTokens))"
        }
        return text
      case let .schemaRejected(message):
        pool.rejectSchema(server)
        log("server \(root) refused response_format (\(message)); reading answers from the text there")
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
        // Another server that is up takes the retry at once; with none, back off.
        var probes: [Int] = []
        let otherUp: Bool
        if pool.roots.count > 1, case let .server(other) = pool.acquire(avoiding: server, probe: &probes), other != server {
          pool.release(other)
          otherUp = true
        } else {
          otherUp = false
        }
        for p in probes { startProbe(p) }
        if otherUp {
          log("retrying on another server: \(message)")
          continue
        }
        let delay = settings.backoff(step: backoffStep, retryAfter: retryAfter)
        backoffStep += 1
        log("retrying in \(String(format: "%.2f", delay)) s: \(message)")
        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
      }
    }
  }

  /// The request body, written straight to bytes: the same text as the JSONValue object
  /// `{model, messages, temperature, seed, max_tokens, stop?, continue_final_message?,
  /// add_generation_prompt?, response_format?}` serializes to, with the parts that are fixed for
  /// the client (`bodyHead`, `bodySampling`) and the prompt (`responseFormatField`) written once.
  func body(_ messages: [ChatMessage], prompt: RenderedPrompt, prefill: String, schema: Bool, maxTokens: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(messages.reduce(bodyHead.count + 64) { $0 + $1.content.utf8.count + 40 }
                        + prefill.utf8.count + (schema ? prompt.responseFormatField.count : 0) + 160)
    out.append(contentsOf: bodyHead)
    func message(_ role: String, _ content: String, first: Bool) {
      if !first { out.append(UInt8(ascii: ",")) }
      out.append(literal: #"{"role":"#)
      JSONValue.writeString(role, to: &out)
      out.append(literal: #","content":"#)
      JSONValue.writeString(content, to: &out)
      out.append(UInt8(ascii: "}"))
    }
    var userTurns = 0
    for (i, m) in messages.enumerated() {
      message(m.role, m.content, first: i == 0)
      if m.role == "user" { userTurns += 1 }
    }
    if !prefill.isEmpty { message("assistant", prefill, first: messages.isEmpty) }
    out.append(contentsOf: bodySampling)
    JSONValue.writeNumber(Double(maxTokens), to: &out)
    let stop = prompt.stop(for: userTurns - 1)
    if !stop.isEmpty && !schema {
      out.append(literal: #","stop":"#)
      JSONValue.array(stop.map { .string($0) }).write(to: &out)
    }
    if !prefill.isEmpty {
      // vLLM continues a final assistant message only when asked; llama.cpp and Ollama do it anyway.
      out.append(literal: #","continue_final_message":true,"add_generation_prompt":false"#)
    }
    if schema { out.append(contentsOf: prompt.responseFormatField) }
    out.append(UInt8(ascii: "}"))
    return out
  }

  private func attempt(_ messages: [ChatMessage], prompt: RenderedPrompt, prefill: String, schema: Bool, maxTokens: Int,
                       server: Int) async -> Attempt {
    let root = pool.roots[server].absoluteString
    let reply: HTTPReply
    do {
      reply = try await exchange(chatRequests[server],
                                 body: body(messages, prompt: prompt, prefill: prefill, schema: schema, maxTokens: maxTokens),
                                 timeout: settings.timeout)
    } catch {
      if error is CancellationError { return .fail("cancelled") }
      let failure = ChatClient.classify(error)
      let refused: Bool
      if case .refused = failure { refused = true } else { refused = false }
      if pool.failed(server, problem: failure.message, ejectNow: refused) {
        log("server \(root) ejected (\(failure.message)); it is probed again before it gets requests")
      }
      return .retry("\(root): \(failure.message)", after: nil)
    }
    switch reply.status {
    case 200:
      guard let completion = ChatCompletion.fast(reply.body) ?? reply.decode(ChatCompletion.self, with: decoder),
            let first = completion.choices.first, let message = first.message else {
        return .retry("\(root): HTTP 200 without choices[0].message", after: nil)
      }
      return .ok(message.content ?? "", finish: first.finishReason,
                 prompt: completion.usage?.promptTokens ?? 0, completion: completion.usage?.completionTokens ?? 0)
    case 400...499 where schema && ![401, 403, 404, 408, 429].contains(reply.status)
                          && ChatClient.refusesResponseFormat(reply.text):
      return .schemaRejected("HTTP \(reply.status): \(ChatClient.serverMessage(reply.text))")
    case 408, 429, 500...599:
      let message = "\(root): HTTP \(reply.status)"
      if reply.status == 429 || reply.retryAfter != nil {
        // The server asked for time: no first attempts there until then.
        pool.failed(server, problem: "HTTP \(reply.status)", pauseFor: min(reply.retryAfter ?? settings.backoffBase, settings.retryAfterCap))
      } else if pool.failed(server, problem: "HTTP \(reply.status)") {
        log("server \(root) ejected (HTTP \(reply.status) \(ServerPool.failuresToEject) times in a row); it is probed again before it gets requests")
      }
      return .retry(message, after: reply.retryAfter)
    default:
      return .fail("\(root): HTTP \(reply.status): \(ChatClient.serverMessage(reply.text))")
    }
  }

  /// Whether a 4xx body says the server cannot do constrained output: OpenAI-style and vLLM
  /// messages naming response_format or the JSON schema, llama.cpp's "response_format type must
  /// be one of", TGI's 422 for an unknown `json_schema` variant or "grammar is not supported".
  static func refusesResponseFormat(_ body: String) -> Bool {
    let text = body.lowercased()
    return ["response_format", "json_schema", "json schema", "grammar", "guided", "structured output", "schema"]
      .contains { text.contains($0) }
  }

  /// The message of an error body, cut short: `{"error": {"message"}}` (OpenAI, llama.cpp),
  /// `{"message"}` (vLLM), `{"error": "..."}` (TGI), or the text itself.
  static func serverMessage(_ body: String) -> String {
    if let e = try? JSONDecoder().decode(ErrorBody.self, from: Data(body.utf8)),
       let m = e.error?.message ?? e.error?.text ?? e.message {
      return String(m.prefix(300))
    }
    return String(body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300))
  }
}

// MARK: - response bodies (OpenAI-compatible; fields a server adds beyond these are ignored)

/// `GET /v1/models`: `{"data": [{"id": ...}, ...]}`.
struct ModelList: Decodable {
  struct Model: Decodable {
    let id: String?
    init(from decoder: Decoder) throws {
      id = try? decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .id)
    }
    enum CodingKeys: String, CodingKey { case id }
  }
  let data: [Model]
}

/// `POST /v1/chat/completions`: the first choice's message and finish reason, and the token usage.
/// A field of an unexpected type reads as missing, as it did before these types.
struct ChatCompletion: Decodable {
  struct Message: Decodable {
    let content: String?
    init(content: String?) { self.content = content }
    init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)  // a message that is no object is none
      content = try? c.decodeIfPresent(String.self, forKey: .content)
    }
    enum CodingKeys: String, CodingKey { case content }
  }
  struct Choice: Decodable {
    let message: Message?
    let finishReason: String?
    init(message: Message?, finishReason: String?) { self.message = message; self.finishReason = finishReason }
    init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      message = try? c.decodeIfPresent(Message.self, forKey: .message)
      finishReason = try? c.decodeIfPresent(String.self, forKey: .finishReason)
    }
    enum CodingKeys: String, CodingKey { case message, finishReason = "finish_reason" }
  }
  struct Usage: Decodable {
    let promptTokens: Int?
    let completionTokens: Int?
    init(promptTokens: Int?, completionTokens: Int?) { self.promptTokens = promptTokens; self.completionTokens = completionTokens }
    init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      promptTokens = try? c.decodeIfPresent(Int.self, forKey: .promptTokens)
      completionTokens = try? c.decodeIfPresent(Int.self, forKey: .completionTokens)
    }
    enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens" }
  }
  let choices: [Choice]
  let usage: Usage?
  init(choices: [Choice], usage: Usage?) { self.choices = choices; self.usage = usage }
  init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    choices = try c.decode([Choice].self, forKey: .choices)
    usage = try? c.decodeIfPresent(Usage.self, forKey: .usage)
  }
  enum CodingKeys: String, CodingKey { case choices, usage }
}

extension ChatCompletion {
  /// What `init(from:)` reads, for a body that FastJSON reads; nil when it does not (or when a
  /// token count is not a plain integer, or a key that is read repeats), and JSONDecoder
  /// decides. Read in place: the members that are not kept (id, model, created, ...) are checked
  /// and stepped over, not built.
  static func fast(_ body: ByteBuffer) -> ChatCompletion? {
    body.withUnsafeReadableBytes { bytes -> ChatCompletion? in
      var r = FastJSON.Reader(bytes: bytes)
      var choices: [Choice]? = nil
      var usage: Usage? = nil
      var sawUsage = false
      guard r.peek() != nil, r.object(depth: 0, { key, r in
        if FastJSON.isKey(key, "choices") {
          guard choices == nil else { return false }
          var list: [Choice] = []
          guard r.array(depth: 1, { r in
            guard let choice = readChoice(&r) else { return false }
            list.append(choice)
            return true
          }) else { return false }  // choices that are no array fail the decode
          choices = list
          return true
        }
        if FastJSON.isKey(key, "usage") {
          guard !sawUsage else { return false }
          sawUsage = true
          guard r.peek() == UInt8(ascii: "{") else { return r.skipValue(depth: 1) }  // not an object: no usage
          var counts: (Int?, Int?) = (nil, nil)
          var seen = (false, false)
          guard r.object(depth: 1, { key, r in
            let first = FastJSON.isKey(key, "prompt_tokens")
            guard first || FastJSON.isKey(key, "completion_tokens") else { return r.skipValue(depth: 2) }
            guard !(first ? seen.0 : seen.1) else { return false }
            if first { seen.0 = true } else { seen.1 = true }
            guard let c = r.peek(), c == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else {
              return r.skipValue(depth: 2)  // another type reads as missing
            }
            guard case .number(let int?)? = r.number() else { return false }  // 1.5: JSONDecoder decides
            if first { counts.0 = int } else { counts.1 = int }
            return true
          }) else { return false }
          usage = Usage(promptTokens: counts.0, completionTokens: counts.1)
          return true
        }
        return r.skipValue(depth: 1)
      }), r.atEnd(), let choices else { return nil }
      return ChatCompletion(choices: choices, usage: usage)
    }
  }

  /// One item of `choices`: `message.content` and `finish_reason` when they are strings; a
  /// message that is no object is none. An item that is no object fails the decode (nil).
  private static func readChoice(_ r: inout FastJSON.Reader) -> Choice? {
    var message: Message? = nil
    var finish: String? = nil
    var seen = (message: false, finish: false)
    guard r.object(depth: 2, { key, r in
      if FastJSON.isKey(key, "message") {
        guard !seen.message else { return false }
        seen.message = true
        guard r.peek() == UInt8(ascii: "{") else { return r.skipValue(depth: 3) }
        var content: String? = nil
        var sawContent = false
        guard r.object(depth: 3, { key, r in
          guard FastJSON.isKey(key, "content") else { return r.skipValue(depth: 4) }
          guard !sawContent else { return false }
          sawContent = true
          return r.optionalString(depth: 4, into: &content)
        }) else { return false }
        message = Message(content: content)
        return true
      }
      if FastJSON.isKey(key, "finish_reason") {
        guard !seen.finish else { return false }
        seen.finish = true
        return r.optionalString(depth: 3, into: &finish)
      }
      return r.skipValue(depth: 3)
    }) else { return nil }
    return Choice(message: message, finishReason: finish)
  }
}

/// An error body: `{"error": {"message"}}` (OpenAI, llama.cpp), `{"message"}` (vLLM) or
/// `{"error": "..."}` (TGI).
struct ErrorBody: Decodable {
  struct Detail: Decodable {
    var message: String?
    var text: String?
    init(from decoder: Decoder) throws {
      if let c = try? decoder.container(keyedBy: CodingKeys.self) {
        message = try? c.decodeIfPresent(String.self, forKey: .message)
      } else {
        text = try? decoder.singleValueContainer().decode(String.self)
      }
    }
    enum CodingKeys: String, CodingKey { case message }
  }
  let error: Detail?
  let message: String?
  init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    error = try? c.decodeIfPresent(Detail.self, forKey: .error)
    message = try? c.decodeIfPresent(String.self, forKey: .message)
  }
  enum CodingKeys: String, CodingKey { case error, message }
}
