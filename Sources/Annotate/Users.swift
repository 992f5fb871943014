import Common
import Foundation
import GRDB
import HummingbirdBcrypt

/// A signed-in user as the server sees them.
public struct SessionUser: Sendable, Equatable {
  public var id: Int64
  public var name: String
  public var role: Project.Role
  public var csrf: String
}

extension Project {
  /// bcrypt cost; 12 (about 0.25 s a hash) unless a test asks for less.
  public static let defaultBcryptCost: UInt8 = 12

  /// Adds a user; the password is stored only as a bcrypt hash. A taken name is an error.
  public func addUser(name: String, role: Role, password: String, cost: UInt8 = Project.defaultBcryptCost) throws {
    guard !name.isEmpty, name.count <= 200, !name.contains(where: { $0.isNewline }) else {
      throw FileError("user name must be 1 to 200 characters on one line, got '\(name)'")
    }
    guard password.count >= 8 else { throw FileError("the password for '\(name)' is too short: use at least 8 characters") }
    guard password.utf8.count <= 72 else {
      throw FileError("the password for '\(name)' is longer than 72 bytes, which bcrypt would silently cut; use a shorter one")
    }
    guard (4...31).contains(cost) else { throw FileError("bcrypt cost must be 4...31, got \(cost)") }
    let hash = Bcrypt.hash(password, cost: cost)
    try pool.write { db in
      if try Int.fetchOne(db, sql: "SELECT 1 FROM user WHERE name = ?", arguments: [name]) != nil {
        throw FileError("user '\(name)' already exists in \(path); choose another name")
      }
      try db.execute(sql: "INSERT INTO user(name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                     arguments: [name, role.rawValue, hash, Clock.stamp()])
      try Project.audit(db, user: "cli", action: "user_add", target: name, old: nil, new: role.rawValue)
    }
  }

  /// Annotator names the project assigned reports to.
  public var assignedAnnotators: [String] {
    get throws { try pool.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT annotator FROM assignment ORDER BY annotator") } }
  }

  /// Checks a password (bcrypt, off the caller's thread). Nil for an unknown name or a wrong password.
  func verify(name: String, password: String) async throws -> (id: Int64, role: Role)? {
    let row = try await pool.read { db -> (id: Int64, role: String, hash: String)? in
      try Row.fetchOne(db, sql: "SELECT id, role, password_hash FROM user WHERE name = ?", arguments: [name])
        .map { ($0["id"], $0["role"], $0["password_hash"]) }
    }
    // An unknown name still costs one hash, so timing does not tell names apart.
    let hash = row?.hash ?? Project.dummyHash
    let ok = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
      DispatchQueue.global().async { c.resume(returning: Bcrypt.verify(password, hash: hash)) }
    }
    guard ok, let row, let role = Role(rawValue: row.role) else { return nil }
    return (row.id, role)
  }

  static let dummyHash = Bcrypt.hash("cxr-annotate-no-such-user", cost: defaultBcryptCost)

  /// Starts a session; returns the cookie token (only its SHA-256 is stored).
  func startSession(userID: Int64, name: String, lifetime: TimeInterval) async throws -> String {
    let token = Tokens.random(), csrf = Tokens.random()
    let now = Date().timeIntervalSince1970
    try await pool.write { db in
      try db.execute(sql: "DELETE FROM session WHERE expires_at < ?", arguments: [now])
      try db.execute(sql: "INSERT INTO session(token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                     arguments: [SHA256.hex(token), userID, csrf, now, now + lifetime])
      try Project.audit(db, user: name, action: "login", target: name, old: nil, new: nil)
    }
    return token
  }

  /// The user of a live session, or nil (unknown or expired token).
  func sessionUser(token: String) async throws -> SessionUser? {
    let now = Date().timeIntervalSince1970
    return try await pool.read { db in
      guard let row = try Row.fetchOne(db.cachedStatement(sql: """
        SELECT user.id AS id, user.name AS name, user.role AS role, session.csrf AS csrf
        FROM session JOIN user ON user.id = session.user_id
        WHERE session.token_hash = ? AND session.expires_at > ?
        """), arguments: [SHA256.hex(token), now]), let role = Role(rawValue: row["role"]) else { return nil }
      return SessionUser(id: row["id"], name: row["name"], role: role, csrf: row["csrf"])
    }
  }

  func endSession(token: String, user: String) async throws {
    try await pool.write { db in
      try db.execute(sql: "DELETE FROM session WHERE token_hash = ?", arguments: [SHA256.hex(token)])
      try Project.audit(db, user: user, action: "logout", target: user, old: nil, new: nil)
    }
  }
}

enum Tokens {
  /// 32 random bytes (the system CSPRNG) as hex.
  static func random() -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
  }

  /// Compares without an early exit, so timing does not reveal a prefix.
  static func equal(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var d: UInt8 = 0
    for i in x.indices { d |= x[i] ^ y[i] }
    return d == 0
  }
}

/// Failed logins per user name and per client address: after `limit` failures within
/// `window` seconds further attempts are refused (429) until the window has passed.
actor LoginLimiter {
  let limit: Int
  let window: TimeInterval
  private var failures: [String: [Date]] = [:]

  init(limit: Int = 5, window: TimeInterval = 300) { self.limit = limit; self.window = window }

  /// Seconds until `keys` may try again, or nil if they may try now.
  func blocked(_ keys: [String], now: Date = Date()) -> Int? {
    var wait: TimeInterval = 0
    for k in keys {
      let recent = (failures[k] ?? []).filter { now.timeIntervalSince($0) < window }
      failures[k] = recent
      if recent.count >= limit, let first = recent.first { wait = max(wait, window - now.timeIntervalSince(first)) }
    }
    return wait > 0 ? Int(wait.rounded(.up)) : nil
  }

  func fail(_ keys: [String], now: Date = Date()) { for k in keys { failures[k, default: []].append(now) } }
  func succeed(_ keys: [String]) { for k in keys { failures[k] = nil } }
}
