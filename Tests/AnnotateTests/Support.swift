import Annotate
import Common
import Foundation
import GRDB
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A plain HTTP/1.1 client over a socket: no redirects followed, no cookies kept, every read
/// bounded by a timeout, so a test sees exactly what the server sent.
struct HTTPResult {
  var status: Int
  var headers: [(String, String)]
  var body: String
  func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
  func all(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

enum HTTP {
  static func request(port: Int, method: String, path: String, headers: [String: String] = [:], body: String? = nil,
                      timeout: Int = 15) throws -> HTTPResult {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FileError("socket failed") }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw FileError("connect to 127.0.0.1:\(port) failed: \(String(cString: strerror(errno)))") }
    var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    var h = headers
    if let body {
      h["Content-Length"] = "\(body.utf8.count)"
      if h["Content-Type"] == nil { h["Content-Type"] = "application/x-www-form-urlencoded" }
    }
    for (k, v) in h.sorted(by: { $0.key < $1.key }) { text += "\(k): \(v)\r\n" }
    text += "\r\n" + (body ?? "")
    let bytes = Array(text.utf8)
    var sent = 0
    while sent < bytes.count {
      let n = bytes[sent...].withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, 0) }
      guard n > 0 else { throw FileError("send failed") }
      sent += n
    }
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = recv(fd, &buf, buf.count, 0)
      if n > 0 { data += buf[0..<n] } else if n == 0 { break } else { throw FileError("recv timed out or failed: \(String(cString: strerror(errno)))") }
    }
    let raw = String(decoding: data, as: UTF8.self)
    guard let split = raw.range(of: "\r\n\r\n") else { throw FileError("no HTTP header in reply: \(raw.prefix(200))") }
    let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
    let status = Int(lines[0].split(separator: " ")[1]) ?? 0
    var hs: [(String, String)] = []
    for l in lines.dropFirst() {
      guard let c = l.firstIndex(of: ":") else { continue }
      hs.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
    }
    var body = String(raw[split.upperBound...])
    if hs.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased() == "chunked" }) { body = dechunk(body) }
    return HTTPResult(status: status, headers: hs, body: body)
  }

  static func dechunk(_ s: String) -> String {
    var out = [UInt8](), bytes = Array(s.utf8), i = 0
    while i < bytes.count {
      var j = i
      while j + 1 < bytes.count, !(bytes[j] == 13 && bytes[j + 1] == 10) { j += 1 }
      guard let n = Int(String(decoding: bytes[i..<j], as: UTF8.self), radix: 16), n > 0 else { break }
      out += bytes[(j + 2)..<min(bytes.count, j + 2 + n)]
      i = j + 2 + n + 2
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func form(_ fields: [String: String]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
  }
}

/// A signed-in (or not) browser stand-in: keeps the session cookie and the CSRF token.
final class Client {
  let port: Int
  var cookies: [String: String] = [:]
  var csrf = ""
  init(port: Int) { self.port = port }

  var cookieHeader: [String: String] {
    cookies.isEmpty ? [:] : ["Cookie": cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")]
  }

  func absorb(_ r: HTTPResult) {
    for c in r.all("Set-Cookie") {
      let first = c.split(separator: ";")[0]
      let kv = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let v = kv.count > 1 ? String(kv[1]) : ""
      if v.isEmpty || c.contains("Max-Age=0") { cookies[String(kv[0])] = nil } else { cookies[String(kv[0])] = v }
    }
  }

  @discardableResult
  func get(_ path: String, json: Bool = false) throws -> HTTPResult {
    var h = cookieHeader
    if json { h["Accept"] = "application/json" }
    let r = try HTTP.request(port: port, method: "GET", path: path, headers: h)
    absorb(r)
    if let m = r.body.range(of: "data-csrf=\"") {
      csrf = String(r.body[m.upperBound...].prefix { $0 != "\"" })
    }
    return r
  }

  @discardableResult
  func post(_ path: String, _ fields: [String: String], csrf token: String?? = .none, json: Bool = true) throws -> HTTPResult {
    var f = fields
    switch token {
    case .none: f["csrf"] = csrf
    case .some(.none): break
    case .some(.some(let t)): f["csrf"] = t
    }
    var h = cookieHeader
    if json { h["Accept"] = "application/json" }
    let r = try HTTP.request(port: port, method: "POST", path: path, headers: h, body: HTTP.form(f))
    absorb(r)
    return r
  }

  /// Signs in through the form (login cookie + hidden token); returns the POST's reply.
  @discardableResult
  func login(_ name: String, _ password: String) throws -> HTTPResult {
    let page = try get("/login")
    guard let m = page.body.range(of: "name=\"csrf\" value=\"") else { throw FileError("no csrf on the login page") }
    let token = String(page.body[m.upperBound...].prefix { $0 != "\"" })
    let r = try post("/login", ["name": name, "password": password], csrf: .some(token), json: false)
    if r.status == 303, let home = try get("/").header("Location") { try get(home) }
    return r
  }
}

/// A project made for a test: reports, a label file, users (bcrypt cost 4: fast, tests only).
struct Fixture {
  let dir: URL
  let db: String
  static let password = "correct horse battery"

  /// `reports`: (id, text) rows; `labels`: id -> [finding: label cell].
  static func make(_ name: String, reports: [(String, String)], findings: [String] = ["Pneumothorax", "Fracture"],
                   annotators: [String] = ["alice", "bob"], sample: Int? = nil, seed: UInt64 = 7,
                   users: [(String, Project.Role)] = [("alice", .annotator), ("bob", .annotator), ("carol", .adjudicator), ("root", .admin)]) throws -> Fixture {
    let dir = try TestEnv.scratch(name)
    var csv = CSVWriter(header: ["id", "text"])
    for r in reports { csv.append([r.0, r.1]) }
    try csv.write(to: dir.appendingPathComponent("reports.csv"))
    let db = dir.appendingPathComponent("project.db").path
    let rows = try Sampling.readReports(dir.appendingPathComponent("reports.csv"), idColumn: "id", textColumn: "text")
    let plan = try Sampling.plan(reports: rows, strata: nil, sample: sample ?? reports.count, annotators: annotators, seed: seed,
                                 reportsSource: "reports.csv", labelSource: nil)
    try Project.create(db, plan: plan, findings: findings, seed: seed, source: "reports.csv")
    let p = try Project.open(db)
    for (u, role) in users { try p.addUser(name: u, role: role, password: password, cost: 4) }
    try p.close()
    return Fixture(dir: dir, db: db)
  }

  /// assignment id of `annotator` for report `id`.
  func assignment(_ annotator: String, report id: String) throws -> Int64 {
    let q = try DatabaseQueue(path: db)
    defer { try? q.close() }
    return try q.read { db in
      try Int64.fetchOne(db, sql: "SELECT assignment.id FROM assignment JOIN report ON report.id = assignment.report_id WHERE annotator = ? AND external_id = ?",
                         arguments: [annotator, id])!
    }
  }

  func reportKey(_ id: String) throws -> Int64 {
    let q = try DatabaseQueue(path: db)
    defer { try? q.close() }
    return try q.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM report WHERE external_id = ?", arguments: [id])! }
  }

  func sql<T: DatabaseValueConvertible>(_ query: String, _ type: T.Type = String.self) throws -> [T] {
    let q = try DatabaseQueue(path: db)
    defer { try? q.close() }
    return try q.read { db in try T.fetchAll(db, sql: query) }
  }
}

/// `cxr annotate serve` as a child process on a free port; killed at the end if still running.
final class ServerProcess {
  let process: WatchedProcess
  let port: Int

  init(_ db: String, for testCase: AnyClass, extra: [String] = [], scheme: String = "http") throws {
    process = try WatchedProcess(try CXRBinary.url(for: testCase), ["annotate", "serve", db, "--port", "0", "--bootstrap", "50"] + extra)
    var port = 0
    let ok = process.waitForStderr(timeout: 30) { text in
      guard let r = text.range(of: "on \(scheme)://127.0.0.1:") else { return false }
      let digits = text[r.upperBound...].prefix { $0.isNumber }
      guard let p = Int(digits), text[r.upperBound...].dropFirst(digits.count).hasPrefix("/") else { return false }
      port = p
      return true
    }
    guard ok, port > 0 else {
      _ = process.wait(timeout: 1)
      throw FileError("server did not start: \(process.stderr)")
    }
    self.port = port
  }

  /// SIGTERM, then the exit status (nil: it had to be killed).
  func stop() -> Int32? {
    process.signal(SIGTERM)
    return process.wait(timeout: 15)
  }
}
