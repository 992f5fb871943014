import Common
import Evaluate
import Foundation
import GRDB

/// One assignment as its annotator sees it: the report and their own answers only.
public struct Item: Sendable, Equatable {
  public var assignmentID: Int64
  public var position: Int
  public var reportID: String
  public var text: String
  public var note: String
  /// finding -> present / absent / uncertain (the annotator's own).
  public var answers: [String: String]
}

public struct Progress: Sendable, Equatable {
  public var done: Int
  public var assigned: Int
}

/// An error the server turns into an HTTP status.
struct HTTPFailure: Error {
  var status: Int
  var message: String
}

extension Project {
  // MARK: annotators

  /// The annotator's assignment `id`, or nil if there is none or it belongs to someone else
  /// (the two look alike to the caller: 404).
  func item(_ id: Int64, for annotator: String) async throws -> Item? {
    try await pool.read { db in
      guard let row = try Row.fetchOne(db, sql: """
        SELECT assignment.id AS id, assignment.position AS position, assignment.note AS note,
               report.external_id AS rid, report.text AS text
        FROM assignment JOIN report ON report.id = assignment.report_id
        WHERE assignment.id = ? AND assignment.annotator = ?
        """, arguments: [id, annotator]) else { return nil }
      var answers: [String: String] = [:]
      for a in try Row.fetchAll(db, sql: "SELECT finding, value FROM answer WHERE assignment_id = ?", arguments: [id]) {
        answers[a["finding"]] = a["value"]
      }
      return Item(assignmentID: row["id"], position: row["position"], reportID: row["rid"], text: row["text"],
                  note: row["note"], answers: answers)
    }
  }

  /// The annotator's items in order: (assignment id, report id, answered findings).
  func items(for annotator: String) async throws -> [(id: Int64, position: Int, reportID: String, answered: Int)] {
    try await pool.read { db in
      try Row.fetchAll(db, sql: """
        SELECT assignment.id AS id, assignment.position AS position, report.external_id AS rid,
               assignment.answered AS answered
        FROM assignment JOIN report ON report.id = assignment.report_id
        WHERE assignment.annotator = ? ORDER BY assignment.position
        """, arguments: [annotator]).map { ($0["id"], $0["position"], $0["rid"], $0["answered"]) }
    }
  }

  func progress(for annotator: String) async throws -> Progress {
    try await pool.read { db in try Project.progress(db, annotator) }
  }

  static func progress(_ db: Database, _ annotator: String) throws -> Progress {
    guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT assigned, done FROM annotator_progress WHERE annotator = ?"), arguments: [annotator]) else {
      return Progress(done: 0, assigned: 0)
    }
    return Progress(done: row["done"], assigned: row["assigned"])
  }

  /// Where to resume: the first item not fully answered, else the last one.
  func resumeItem(for annotator: String) async throws -> Int64? {
    let list = try await items(for: annotator)
    let n = try findings.count
    return (list.first { $0.answered < n } ?? list.last)?.id
  }

  /// The neighbour of an item in the annotator's list (`step` -1 or +1).
  func neighbour(of id: Int64, step: Int, for annotator: String) async throws -> Int64? {
    try await pool.read { db in
      let sql = step > 0
        ? "SELECT id FROM assignment WHERE annotator = ? AND position > (SELECT position FROM assignment WHERE id = ?) ORDER BY position LIMIT 1"
        : "SELECT id FROM assignment WHERE annotator = ? AND position < (SELECT position FROM assignment WHERE id = ?) ORDER BY position DESC LIMIT 1"
      return try Int64.fetchOne(db, sql: sql, arguments: [annotator, id])
    }
  }

  /// Saves one answer in one transaction (with its audit row) and returns the new progress.
  func saveAnswer(assignment id: Int64, annotator: String, finding: String, value: String) async throws -> Progress {
    guard ReaderAnswer(name: value) != nil else { throw HTTPFailure(status: 400, message: "value must be present, absent or uncertain") }
    return try await pool.write { db in
      guard let rid = try String.fetchOne(db.cachedStatement(sql: """
        SELECT report.external_id FROM assignment JOIN report ON report.id = assignment.report_id
        WHERE assignment.id = ? AND assignment.annotator = ?
        """), arguments: [id, annotator]) else { throw HTTPFailure(status: 404, message: "no such item") }
      guard try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM finding WHERE name = ?"), arguments: [finding]) != nil else {
        throw HTTPFailure(status: 400, message: "unknown finding")
      }
      let old = try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM answer WHERE assignment_id = ? AND finding = ?"), arguments: [id, finding])
      if old != value {
        try db.cachedStatement(sql: """
          INSERT INTO answer(assignment_id, finding, value, updated_at) VALUES (?, ?, ?, ?)
          ON CONFLICT(assignment_id, finding) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
          """).execute(arguments: [id, finding, value, Clock.stamp()])
        try Project.audit(db, user: annotator, action: "answer", target: "item \(id) report \(rid) \(finding)", old: old, new: value)
      }
      return try Project.progress(db, annotator)
    }
  }

  func saveNote(assignment id: Int64, annotator: String, note: String) async throws {
    guard note.count <= 10_000 else { throw HTTPFailure(status: 400, message: "note too long (at most 10,000 characters)") }
    try await pool.write { db in
      guard let old = try String.fetchOne(db, sql: "SELECT note FROM assignment WHERE id = ? AND annotator = ?",
                                          arguments: [id, annotator]) else { throw HTTPFailure(status: 404, message: "no such item") }
      if old != note {
        try db.execute(sql: "UPDATE assignment SET note = ? WHERE id = ?", arguments: [note, id])
        try Project.audit(db, user: annotator, action: "note", target: "item \(id)", old: old, new: note)
      }
    }
  }

  // MARK: adjudication

  /// Both readers' answers and the adjudication of one report.
  public struct Case: Sendable, Equatable {
    public var reportKey: Int64
    public var reportID: String
    public var text: String
    public var readers: [String]
    /// finding -> [reader 1 answer, reader 2 answer] (nil = not answered yet).
    public var answers: [String: [String?]]
    public var notes: [String]
    /// finding -> present / absent / equivocal.
    public var adjudicated: [String: String]
  }

  public func adjudicationCase(_ reportKey: Int64) async throws -> Case? {
    try await pool.read { db in
      guard let r = try Row.fetchOne(db, sql: "SELECT id, external_id, text FROM report WHERE id = ?", arguments: [reportKey]) else { return nil }
      let asg = try Row.fetchAll(db, sql: "SELECT id, annotator, note FROM assignment WHERE report_id = ? ORDER BY slot", arguments: [reportKey])
      var answers: [String: [String?]] = [:]
      let findings = try String.fetchAll(db, sql: "SELECT name FROM finding ORDER BY position")
      for f in findings { answers[f] = Array(repeating: nil, count: asg.count) }
      for (k, a) in asg.enumerated() {
        for row in try Row.fetchAll(db, sql: "SELECT finding, value FROM answer WHERE assignment_id = ?", arguments: [a["id"] as Int64]) {
          answers[row["finding"], default: []][k] = row["value"]
        }
      }
      var adj: [String: String] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT finding, value FROM adjudication WHERE report_id = ?", arguments: [reportKey]) {
        adj[row["finding"]] = row["value"]
      }
      return Case(reportKey: r["id"], reportID: r["external_id"], text: r["text"], readers: asg.map { $0["annotator"] },
                  answers: answers, notes: asg.map { $0["note"] }, adjudicated: adj)
    }
  }

  public func adjudicate(report reportKey: Int64, finding: String, value: String, adjudicator: String) async throws {
    guard ["present", "absent", "equivocal"].contains(value) else {
      throw HTTPFailure(status: 400, message: "value must be present, absent or equivocal")
    }
    try await pool.write { db in
      guard let rid = try String.fetchOne(db, sql: "SELECT external_id FROM report WHERE id = ?", arguments: [reportKey]) else {
        throw HTTPFailure(status: 404, message: "no such report")
      }
      guard try Int.fetchOne(db, sql: "SELECT 1 FROM finding WHERE name = ?", arguments: [finding]) != nil else {
        throw HTTPFailure(status: 400, message: "unknown finding")
      }
      let old = try String.fetchOne(db, sql: "SELECT value FROM adjudication WHERE report_id = ? AND finding = ?", arguments: [reportKey, finding])
      if old != value {
        try db.execute(sql: """
          INSERT INTO adjudication(report_id, finding, value, adjudicator, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT(report_id, finding) DO UPDATE SET value = excluded.value, adjudicator = excluded.adjudicator, updated_at = excluded.updated_at
          """, arguments: [reportKey, finding, value, adjudicator, Clock.stamp()])
        try Project.audit(db, user: adjudicator, action: "adjudicate", target: "report \(rid) \(finding)", old: old, new: value)
      }
    }
  }

  /// Per report and finding: both readers' answers (when both have answered) and the adjudication.
  struct Pairing: Sendable {
    var reportKey: Int64
    var reportID: String
    var finding: String
    var first: String
    var second: String
    var adjudicated: String?
    /// Not the same definite answer (present/present or absent/absent): needs a final choice.
    var needsAdjudication: Bool { !(first == second && first != "uncertain") }
  }

  func pairings() async throws -> [Pairing] {
    try await pool.read { db in
      try Row.fetchAll(db, sql: """
        SELECT r.id AS rk, r.external_id AS rid, a1.finding AS finding, a1.value AS v1, a2.value AS v2, adj.value AS adj
        FROM report r
        JOIN assignment s1 ON s1.report_id = r.id AND s1.slot = 1
        JOIN assignment s2 ON s2.report_id = r.id AND s2.slot = 2
        JOIN answer a1 ON a1.assignment_id = s1.id
        JOIN answer a2 ON a2.assignment_id = s2.id AND a2.finding = a1.finding
        JOIN finding f ON f.name = a1.finding
        LEFT JOIN adjudication adj ON adj.report_id = r.id AND adj.finding = a1.finding
        ORDER BY r.position, f.position
        """).map { Pairing(reportKey: $0["rk"], reportID: $0["rid"], finding: $0["finding"], first: $0["v1"], second: $0["v2"], adjudicated: $0["adj"]) }
    }
  }

  /// Agreement between the two readers per finding so far (items both answered).
  public func agreement(rounds: Int = 1000, seed: UInt64 = 0) async throws -> [(finding: String, agreement: ReaderAgreement)] {
    let all = try await pairings()
    return try findings.map { f in
      let p = all.filter { $0.finding == f }
      return (f, ReaderAgreement(p.map { ReaderAnswer(name: $0.first)! }, p.map { ReaderAnswer(name: $0.second)! }, rounds: rounds, seed: seed))
    }
  }

  /// Progress of every annotator named in the assignments.
  func allProgress() async throws -> [(String, Progress)] {
    try await pool.read { db in
      try String.fetchAll(db, sql: "SELECT DISTINCT annotator FROM assignment ORDER BY annotator").map { ($0, try Project.progress(db, $0)) }
    }
  }
}
