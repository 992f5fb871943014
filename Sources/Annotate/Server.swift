import Common
import Evaluate
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging

/// Options of `cxr annotate serve`.
public struct ServeOptions: Sendable {
  public var host = "127.0.0.1"
  public var port = 8080
  public var tlsCert: String?
  public var tlsKey: String?
  /// How long a session lasts after sign-in.
  public var sessionLifetime: TimeInterval = 8 * 3600
  /// Failed sign-ins per name or address within `loginWindow` seconds before they are refused.
  public var loginLimit = 5
  public var loginWindow: TimeInterval = 300
  /// Bootstrap rounds for the adjudication page's CIs.
  public var rounds = 1000
  public var logLevel: Logger.Level = .info
  public init() {}

  public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }
  public var tls: Bool { tlsCert != nil && tlsKey != nil }
}

/// The request context: Hummingbird's core storage plus the peer address (for rate limits).
public struct AnnotateContext: RequestContext {
  public var coreContext: CoreRequestContextStorage
  public let peer: String
  public init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    peer = source.channel.remoteAddress?.ipAddress ?? "unknown"
  }
}

/// Who may use a route.
public enum Access: Sendable, Equatable {
  case open
  case signedIn([Project.Role])
}

struct Route: Sendable {
  var method: HTTPRequest.Method
  var path: String
  var access: Access
  var handler: @Sendable (App, inout Request, AnnotateContext, SessionUser?, [String: String]) async throws -> Response
}

public enum AnnotateServer {
  static let sessionCookie = "cxr_session"
  static let loginCookie = "cxr_login"

  /// Every route: method, path (`:id` a number) and who may use it. Tests walk this table.
  public static var routeTable: [(method: String, path: String, access: Access)] {
    routes.map { ($0.method.rawValue, $0.path, $0.access) }
  }

  /// Serves `project` until SIGTERM/SIGINT; `onListening` gets the bound port.
  public static func serve(_ project: Project, options: ServeOptions, onListening: @escaping @Sendable (Int) -> Void) async throws {
    var logger = Logger(label: "cxr.annotate")
    logger.logLevel = options.logLevel
    let app = App(project: project, options: options, logger: logger,
                  limiter: LoginLimiter(limit: options.loginLimit, window: options.loginWindow))
    let router = Router(context: AnnotateContext.self)
    for r in routes {
      router.on(RouterPath(r.path), method: r.method) { req, ctx in try await app.dispatch(r, req, ctx) }
    }
    let server: HTTPServerBuilder
    if let cert = options.tlsCert, let key = options.tlsKey {
      let chain: [NIOSSLCertificate]
      let pkey: NIOSSLPrivateKey
      do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
        throw FileError("\(cert): cannot read a PEM certificate chain (\(error)); give --tls-cert a PEM file")
      }
      do { pkey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
        throw FileError("\(key): cannot read a PEM private key (\(error)); give --tls-key a PEM file")
      }
      let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(pkey))
      server = try .tls(.http1(), tlsConfiguration: tls)
    } else {
      server = .http1()
    }
    let application = Application(
      router: router, server: server,
      configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
      onServerRunning: { channel in onListening(channel.localAddress?.port ?? options.port) },
      logger: logger)
    try await application.runService()
  }

  static let routes: [Route] = {
    let annotator: Access = .signedIn([.annotator])
    let adjudicator: Access = .signedIn([.adjudicator])
    let anyone: Access = .signedIn(Project.Role.allCases)
    return [
      Route(method: .get, path: "/login", access: .open) { app, _, _, _, _ in try await app.loginPage() },
      Route(method: .post, path: "/login", access: .open) { app, req, ctx, _, form in try await app.login(req, ctx, form) },
      Route(method: .get, path: "/static/app.js", access: .open) { app, _, _, _, _ in
        App.text(Pages.js, type: "text/javascript; charset=utf-8", cache: true)
      },
      Route(method: .get, path: "/static/app.css", access: .open) { app, _, _, _, _ in
        App.text(Pages.css, type: "text/css; charset=utf-8", cache: true)
      },
      Route(method: .get, path: "/favicon.ico", access: .open) { _, _, _, _, _ in  // no icon; say so without a 404 in the console
        Response(status: .noContent, headers: [.cacheControl: "private, max-age=86400"])
      },
      Route(method: .get, path: "/", access: anyone) { app, _, _, user, _ in
        switch user!.role {
        case .annotator: return App.redirect("/annotate")
        case .adjudicator: return App.redirect("/adjudicate")
        case .admin: return App.redirect("/admin")
        }
      },
      Route(method: .post, path: "/logout", access: anyone) { app, req, _, user, _ in try await app.logout(req, user!) },
      Route(method: .get, path: "/annotate", access: annotator) { app, _, _, user, _ in
        guard let id = try await app.project.resumeItem(for: user!.name) else {
          return App.html(Pages.message("Nothing to do", "No reports are assigned to \(user!.name).", user: user), status: .ok)
        }
        return App.redirect("/item/\(id)")
      },
      Route(method: .get, path: "/items", access: annotator) { app, _, _, user, _ in
        let list = try await app.project.items(for: user!.name)
        return App.html(Pages.items(list, findings: try app.project.findings.count, progress: try await app.project.progress(for: user!.name), user: user!))
      },
      Route(method: .get, path: "/item/:id", access: annotator) { app, _, ctx, user, _ in
        let id = try App.id(ctx)
        guard let item = try await app.project.item(id, for: user!.name) else { throw HTTPFailure(status: 404, message: "no such item") }
        return App.html(Pages.item(item, findings: try app.project.findings, progress: try await app.project.progress(for: user!.name),
                                   previous: try await app.project.neighbour(of: id, step: -1, for: user!.name),
                                   next: try await app.project.neighbour(of: id, step: 1, for: user!.name), user: user!))
      },
      Route(method: .get, path: "/api/item/:id", access: annotator) { app, _, ctx, user, _ in
        guard let item = try await app.project.item(try App.id(ctx), for: user!.name) else { throw HTTPFailure(status: 404, message: "no such item") }
        return App.json(App.ItemBody(report: item.reportID, answers: item.answers, note: item.note))
      },
      Route(method: .post, path: "/item/:id/answer", access: annotator) { app, req, ctx, user, form in
        let id = try App.id(ctx)
        let p = try await app.project.saveAnswer(assignment: id, annotator: user!.name, finding: form["finding"] ?? "", value: form["value"] ?? "")
        return App.wantsJSON(req) ? App.json(App.SavedBody(done: p.done, assigned: p.assigned)) : App.redirect("/item/\(id)")
      },
      Route(method: .post, path: "/item/:id/note", access: annotator) { app, req, ctx, user, form in
        let id = try App.id(ctx)
        try await app.project.saveNote(assignment: id, annotator: user!.name, note: form["note"] ?? "")
        return App.wantsJSON(req) ? App.json(App.SavedBody()) : App.redirect("/item/\(id)")
      },
      Route(method: .get, path: "/adjudicate", access: adjudicator) { app, _, _, user, _ in
        let pairs = try await app.project.pairings()
        let agreement = try await app.project.agreement(rounds: app.options.rounds)
        return App.html(Pages.adjudication(pairs, agreement: agreement, rounds: app.options.rounds, user: user!))
      },
      Route(method: .get, path: "/adjudicate/:id", access: adjudicator) { app, _, ctx, user, _ in
        let id = try App.id(ctx)
        guard let c = try await app.project.adjudicationCase(id) else { throw HTTPFailure(status: 404, message: "no such report") }
        let pairs = try await app.project.pairings()
        let next = pairs.first { $0.needsAdjudication && $0.adjudicated == nil && $0.reportKey != id }?.reportKey
        return App.html(Pages.adjudicationCase(c, findings: try app.project.findings, next: next, user: user!))
      },
      Route(method: .post, path: "/adjudicate/:id", access: adjudicator) { app, req, ctx, user, form in
        let id = try App.id(ctx)
        try await app.project.adjudicate(report: id, finding: form["finding"] ?? "", value: form["value"] ?? "", adjudicator: user!.name)
        return App.wantsJSON(req) ? App.json(App.SavedBody()) : App.redirect("/adjudicate/\(id)")
      },
      Route(method: .get, path: "/admin", access: .signedIn([.admin])) { app, _, _, user, _ in
        App.html(Pages.admin(try await app.project.allProgress(), user: user!))
      },
      Route(method: .get, path: "/admin/audit.csv", access: .signedIn([.admin])) { app, _, _, _, _ in
        App.text(try app.project.auditCSV(), type: "text/csv; charset=utf-8", cache: false,
                 extra: [.contentDisposition: "attachment; filename=\"audit.csv\""])
      },
    ]
  }()
}

/// The server's state and the steps every request goes through.
final class App: Sendable {
  let project: Project
  let options: ServeOptions
  let logger: Logger
  let limiter: LoginLimiter

  init(project: Project, options: ServeOptions, logger: Logger, limiter: LoginLimiter) {
    self.project = project; self.options = options; self.logger = logger; self.limiter = limiter
  }

  static func id(_ ctx: AnnotateContext) throws -> Int64 {
    guard let s = ctx.parameters.get("id"), let id = Int64(s), id > 0 else { throw HTTPFailure(status: 404, message: "no such page") }
    return id
  }

  /// Session, role and CSRF checks, then the handler; errors become status pages; one log line
  /// per request (method, path, status, user; never a report's text or a form's content).
  func dispatch(_ route: Route, _ request: Request, _ ctx: AnnotateContext) async throws -> Response {
    let start = Date()
    var req = request
    var user: SessionUser?
    var response: Response
    do {
      var form: [String: String] = [:]
      if req.method == .post {
        let body = try await req.collectBody(upTo: 64 * 1024)
        form = App.parseForm(String(decoding: body.readableBytesView, as: UTF8.self))
      }
      if case .signedIn(let roles) = route.access {
        guard let token = req.cookies[AnnotateServer.sessionCookie]?.value, let u = try await project.sessionUser(token: token) else {
          throw HTTPFailure(status: req.method == .get ? 303 : 401, message: "sign in first")
        }
        user = u
        guard roles.contains(u.role) else { throw HTTPFailure(status: 403, message: "\(u.role.rawValue)s may not use this page") }
        if req.method != .get && req.method != .head {
          let sent = req.headers[.init("X-CSRF-Token")!] ?? form["csrf"] ?? ""
          guard Tokens.equal(sent, u.csrf) else {
            throw HTTPFailure(status: 403, message: "the CSRF token is missing or wrong; reload the page and try again")
          }
        }
      }
      response = try await route.handler(self, &req, ctx, user, form)
    } catch let f as HTTPFailure {
      if f.status == 303 {
        response = App.redirect("/login")
      } else if App.wantsJSON(req) || req.method != .get {
        response = App.json(App.ErrorBody(error: f.message), status: .init(code: f.status))
      } else {
        response = App.html(Pages.message("\(f.status)", f.message, user: user), status: .init(code: f.status))
      }
    } catch let e as HTTPError {
      throw e
    } catch {
      logger.error("\(req.method.rawValue) \(req.uri.path) failed: \(type(of: error))")
      response = App.html(Pages.message("Server error", "the request failed and nothing was saved; try again", user: user), status: .internalServerError)
    }
    App.secure(&response.headers)
    if logger.logLevel <= .info {
      let tenths = Int((Date().timeIntervalSince(start) * 10_000).rounded())
      logger.info("\(req.method.rawValue) \(req.uri.path) \(response.status.code) \(tenths / 10).\(tenths % 10)ms user=\(user?.name ?? "-")")
    }
    return response
  }

  static func secure(_ h: inout HTTPFields) {
    h[.init("Content-Security-Policy")!] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    h[.init("X-Content-Type-Options")!] = "nosniff"
    h[.init("X-Frame-Options")!] = "DENY"
    h[.init("Referrer-Policy")!] = "no-referrer"
    if h[.cacheControl] == nil { h[.cacheControl] = "no-store" }
  }

  static func parseForm(_ s: String) -> [String: String] {
    var out: [String: String] = [:]
    for pair in s.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      func decode(_ x: Substring) -> String { x.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
      let k = decode(kv[0]), v = kv.count > 1 ? decode(kv[1]) : ""
      if out[k] == nil { out[k] = v }
    }
    return out
  }

  static func wantsJSON(_ req: Request) -> Bool { (req.headers[.accept] ?? "").contains("application/json") }

  static func html(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
    text(s, type: "text/html; charset=utf-8", cache: false, status: status)
  }

  static func text(_ s: String, type: String, cache: Bool, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) -> Response {
    var h: HTTPFields = [.contentType: type]
    h[.cacheControl] = cache ? "private, max-age=300" : "no-store"
    for f in extra { h[f.name] = f.value }
    return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(string: s)))
  }

  static func json<Body: Encodable>(_ body: Body, status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
    return text(String(decoding: data, as: UTF8.self), type: "application/json", cache: false, status: status)
  }

  /// `GET /api/item/:id`: the annotator's own answers and note for one report.
  struct ItemBody: Encodable { let report: String; let answers: [String: String]; let note: String }
  /// What a saving POST answers when JSON is asked for (`done`/`assigned` only for answers).
  struct SavedBody: Encodable { var saved = true; var done: Int? = nil; var assigned: Int? = nil }
  struct ErrorBody: Encodable { let error: String }

  static func redirect(_ to: String) -> Response {
    Response(status: .seeOther, headers: [.location: to, .cacheControl: "no-store"])
  }

  func cookie(_ name: String, _ value: String, maxAge: Int?) -> Cookie {
    Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: options.tls, httpOnly: true, sameSite: .strict)
  }

  // MARK: sign-in

  func loginPage(message: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
    let token = Tokens.random()
    var r = App.html(Pages.login(token: token, message: message), status: status)
    r.setCookie(cookie(AnnotateServer.loginCookie, token, maxAge: 3600))
    return r
  }

  func login(_ req: Request, _ ctx: AnnotateContext, _ form: [String: String]) async throws -> Response {
    // Double-submit token: the form's hidden value must match the cookie set with the form.
    guard let cookie = req.cookies[AnnotateServer.loginCookie]?.value, Tokens.equal(cookie, form["csrf"] ?? "") else {
      return try await loginPage(message: "The sign-in form expired or was not sent by this site; try again.", status: .forbidden)
    }
    let name = form["name"] ?? "", password = form["password"] ?? ""
    let keys = ["name:" + name, "peer:" + ctx.peer]
    if let wait = await limiter.blocked(keys) {
      var r = try await loginPage(message: "Too many failed sign-ins; try again in \(wait) s.", status: .tooManyRequests)
      r.headers[.retryAfter] = "\(wait)"
      try await project.pool.write { db in try Project.audit(db, user: name, action: "login_refused", target: ctx.peer, old: nil, new: nil) }
      return r
    }
    guard let u = try await project.verify(name: name, password: password) else {
      await limiter.fail(keys)
      try await project.pool.write { db in try Project.audit(db, user: name, action: "login_failed", target: ctx.peer, old: nil, new: nil) }
      return try await loginPage(message: "Wrong name or password.", status: .unauthorized)
    }
    await limiter.succeed(["name:" + name])
    let token = try await project.startSession(userID: u.id, name: name, lifetime: options.sessionLifetime)
    var r = App.redirect("/")
    r.setCookie(self.cookie(AnnotateServer.sessionCookie, token, maxAge: Int(options.sessionLifetime)))
    r.setCookie(self.cookie(AnnotateServer.loginCookie, "", maxAge: 0))
    return r
  }

  func logout(_ req: Request, _ user: SessionUser) async throws -> Response {
    if let token = req.cookies[AnnotateServer.sessionCookie]?.value { try await project.endSession(token: token, user: user.name) }
    var r = App.redirect("/login")
    r.setCookie(cookie(AnnotateServer.sessionCookie, "", maxAge: 0))
    return r
  }
}
