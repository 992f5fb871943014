import Common
import Foundation
import GRDB

/// A `cxr annotate` project: one SQLite file (WAL mode, foreign keys on, synchronous=FULL so a
/// committed answer survives a crash of the process or the machine). All SQL is parameterised.
public final class Project: @unchecked Sendable {
  public static let application = "cxr-annotate"
  public let path: String
  public let pool: DatabasePool

  /// Roles of users.
  public enum Role: String, CaseIterable, Sendable {
    case annotator, adjudicator, admin
  }

  static let migrator: DatabaseMigrator = {
    var m = DatabaseMigrator()
    m.registerMigration("v1") { db in
      try db.execute(sql: """
        CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
        CREATE TABLE finding(position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE report(
          id INTEGER PRIMARY KEY,
          external_id TEXT NOT NULL UNIQUE,
          text TEXT NOT NULL,
          stratum TEXT NOT NULL,
          position INTEGER NOT NULL UNIQUE);
        CREATE TABLE user(
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          role TEXT NOT NULL CHECK(role IN ('annotator','adjudicator','admin')),
          password_hash TEXT NOT NULL,
          created_at TEXT NOT NULL);
        CREATE TABLE assignment(
          id INTEGER PRIMARY KEY,
          report_id INTEGER NOT NULL REFERENCES report(id),
          annotator TEXT NOT NULL,
          slot INTEGER NOT NULL CHECK(slot IN (1, 2)),
          position INTEGER NOT NULL,
          note TEXT NOT NULL DEFAULT '',
          UNIQUE(report_id, slot), UNIQUE(report_id, annotator), UNIQUE(annotator, position));
        CREATE TABLE answer(
          assignment_id INTEGER NOT NULL REFERENCES assignment(id),
          finding TEXT NOT NULL REFERENCES finding(name),
          value TEXT NOT NULL CHECK(value IN ('present','absent','uncertain')),
          updated_at TEXT NOT NULL,
          PRIMARY KEY(assignment_id, finding));
        CREATE TABLE adjudication(
          report_id INTEGER NOT NULL REFERENCES report(id),
          finding TEXT NOT NULL REFERENCES finding(name),
          value TEXT NOT NULL CHECK(value IN ('present','absent','equivocal')),
          adjudicator TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          PRIMARY KEY(report_id, finding));
        CREATE TABLE session(
          token_hash TEXT PRIMARY KEY NOT NULL,
          user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
          csrf TEXT NOT NULL,
          created_at REAL NOT NULL,
          expires_at REAL NOT NULL);
        CREATE TABLE audit(
          id INTEGER PRIMARY KEY,
          at TEXT NOT NULL,
          user TEXT NOT NULL,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          old_value TEXT,
          new_value TEXT);
        CREATE TABLE export_log(id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, at TEXT NOT NULL);
        CREATE INDEX assignment_by_annotator ON assignment(annotator, position);
        """)
    }
    // Progress per answer must not scan an annotator's whole list (it runs inside the answer's
    // write transaction): each assignment counts its answered findings and each annotator their
    // assigned and done items, all kept by triggers, so rows written outside the app keep them right.
    m.registerMigration("v2-progress-counts") { db in
      try db.execute(sql: """
        ALTER TABLE assignment ADD COLUMN answered INTEGER NOT NULL DEFAULT 0;
        UPDATE assignment SET answered = (SELECT COUNT(*) FROM answer WHERE answer.assignment_id = assignment.id);
        CREATE TABLE annotator_progress(annotator TEXT PRIMARY KEY NOT NULL, assigned INTEGER NOT NULL, done INTEGER NOT NULL);
        INSERT INTO annotator_progress(annotator, assigned, done)
          SELECT annotator, COUNT(*), SUM(answered >= (SELECT COUNT(*) FROM finding)) FROM assignment GROUP BY annotator;
        CREATE TRIGGER assignment_added AFTER INSERT ON assignment BEGIN
          INSERT INTO annotator_progress(annotator, assigned, done) VALUES (NEW.annotator, 1, 0)
            ON CONFLICT(annotator) DO UPDATE SET assigned = assigned + 1; END;
        CREATE TRIGGER answer_counted AFTER INSERT ON answer BEGIN
          UPDATE assignment SET answered = answered + 1 WHERE id = NEW.assignment_id; END;
        CREATE TRIGGER answer_uncounted AFTER DELETE ON answer BEGIN
          UPDATE assignment SET answered = answered - 1 WHERE id = OLD.assignment_id; END;
        CREATE TRIGGER assignment_done AFTER UPDATE OF answered ON assignment
          WHEN (NEW.answered >= (SELECT COUNT(*) FROM finding)) != (OLD.answered >= (SELECT COUNT(*) FROM finding)) BEGIN
          UPDATE annotator_progress SET done = done + (CASE WHEN NEW.answered >= (SELECT COUNT(*) FROM finding) THEN 1 ELSE -1 END)
            WHERE annotator = NEW.annotator; END;
        """)
    }
    return m
  }()

  static func configuration() -> Configuration {
    var c = Configuration()
    c.foreignKeysEnabled = true
    c.busyMode = .timeout(10)
    c.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = FULL")
      // 32 MiB of page cache per connection: a 2,000-report project with its answers and audit fits.
      try db.execute(sql: "PRAGMA cache_size = -32768")
    }
    return c
  }

  private init(path: String, pool: DatabasePool) {
    self.path = path
    self.pool = pool
  }

  /// Opens an existing project; a missing, foreign or corrupt file is a `FileError` naming it.
  public static func open(_ path: String) throws -> Project {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
      throw FileError("\(path): no such project file; make one with `cxr annotate init \(path) --reports ...`")
    }
    guard let h = FileHandle(forReadingAtPath: path) else { throw FileError("\(path): cannot be read (check its permissions)") }
    let head = (try? h.read(upToCount: 16)) ?? Data()
    try? h.close()
    guard head == Data("SQLite format 3\u{0}".utf8) else {
      throw FileError("\(path) is not a SQLite database (a foreign or corrupt file); give a project made by `cxr annotate init`")
    }
    let pool: DatabasePool
    do {
      pool = try DatabasePool(path: path, configuration: configuration())
    } catch {
      throw FileError("\(path): cannot be opened as a SQLite database (\(describe(error))); it may be corrupt — restore it from a backup")
    }
    do {
      let check = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
      guard check == ["ok"] else {
        throw FileError("\(path) is corrupt (SQLite quick_check: \(check.prefix(3).joined(separator: "; "))); restore it from a backup")
      }
      let app = try pool.read { db -> String? in
        guard try db.tableExists("meta") else { return nil }
        return try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'application'")
      }
      guard app == application else {
        throw FileError("\(path) is a SQLite database but not a cxr annotate project (no cxr-annotate meta table); give a project made by `cxr annotate init`")
      }
      if try pool.read({ db in try migrator.hasBeenSuperseded(db) }) {
        throw FileError("\(path) was made by a newer cxr (its schema has migrations this cxr does not know); use that cxr")
      }
      try migrator.migrate(pool)
    } catch let e as FileError {
      throw e
    } catch {
      throw FileError("\(path) cannot be read as a cxr annotate project (\(describe(error))); it may be corrupt — restore it from a backup")
    }
    return Project(path: path, pool: pool)
  }

  static func describe(_ error: Error) -> String {
    if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
    return "\(error)"
  }

  /// Creates a new project at `path` holding `plan`, atomically: it is built beside the target and
  /// renamed into place, so a failed init leaves nothing. An existing `path` is never overwritten.
  public static func create(_ path: String, plan: SamplePlan, findings: [String], seed: UInt64, source: String) throws {
    let fm = FileManager.default
    for p in [path, path + "-wal", path + "-shm"] where fm.fileExists(atPath: p) {
      throw FileError("\(p) already exists; cxr annotate init never overwrites a project — choose another name or move it away")
    }
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).init-\(getpid())").path
    for p in [tmp, tmp + "-wal", tmp + "-shm"] { try? fm.removeItem(atPath: p) }
    do {
      let pool = try DatabasePool(path: tmp, configuration: configuration())
      try migrator.migrate(pool)
      try pool.write { db in
        let now = Clock.stamp()
        for (k, v) in [("application", application), ("created_at", now), ("seed", "\(seed)"), ("reports_source", source),
                       ("annotators", plan.annotators.joined(separator: ","))] {
          try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?)", arguments: [k, v])
        }
        for (i, f) in findings.enumerated() {
          try db.execute(sql: "INSERT INTO finding(position, name) VALUES (?, ?)", arguments: [i, f])
        }
        for (i, r) in plan.reports.enumerated() {
          try db.execute(sql: "INSERT INTO report(id, external_id, text, stratum, position) VALUES (?, ?, ?, ?, ?)",
                         arguments: [i + 1, r.id, r.text, r.stratum, i])
        }
        for a in plan.assignments {
          try db.execute(sql: "INSERT INTO assignment(report_id, annotator, slot, position) VALUES (?, ?, ?, ?)",
                         arguments: [a.report + 1, a.annotator, a.slot, a.position])
        }
        try db.execute(sql: "INSERT INTO audit(at, user, action, target, old_value, new_value) VALUES (?, 'cli', 'init', ?, NULL, ?)",
                       arguments: [now, path, "\(plan.reports.count) reports, \(plan.assignments.count) assignments, seed \(seed)"])
      }
      try pool.close()
      guard rename(tmp, path) == 0 else {
        throw FileError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))")
      }
      try AtomicFile.syncDirectory(dir)
    } catch {
      for p in [tmp, tmp + "-wal", tmp + "-shm"] { try? fm.removeItem(atPath: p) }
      throw error
    }
  }

  public func close() throws { try pool.close() }

  public var findings: [String] {
    get throws { try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM finding ORDER BY position") } }
  }

  /// Writes one audit row inside the caller's transaction.
  static func audit(_ db: Database, user: String, action: String, target: String, old: String?, new: String?) throws {
    try db.cachedStatement(sql: "INSERT INTO audit(at, user, action, target, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?)")
      .execute(arguments: [Clock.stamp(), user, action, target, old, new])
  }
}

/// Timestamps as ISO 8601 UTC with milliseconds, e.g. 2026-12-01T20:25:09.123Z. Formatted by
/// hand: a Foundation date formatter per call went through ICU and was a tenth of the server's CPU.
enum Clock {
  static func stamp(_ date: Date = Date()) -> String {
    let total = Int64((date.timeIntervalSince1970 * 1000).rounded())
    var secs = time_t(total / 1000)
    let ms = Int(total % 1000)
    var parts = tm()
    gmtime_r(&secs, &parts)
    func pad(_ v: Int, _ width: Int) -> String {
      let s = String(v)
      return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
    return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
      + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(ms, 3))Z"
  }
}
