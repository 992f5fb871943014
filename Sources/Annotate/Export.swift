import Common
import Foundation
import GRDB

/// What `export` wrote.
public struct ExportSummary: Sendable, Equatable {
  public var rows: Int
  /// Per finding: final labels taken from an adjudication / from two equal definite answers /
  /// marked equivocal / still open (blank: not both answered, or awaiting adjudication).
  public var adjudicated: [String: Int]
  public var consensus: [String: Int]
  public var equivocal: [String: Int]
  public var pending: [String: Int]
}

extension Project {
  /// The human reading as `cxr agree --human` reads it:
  /// `id, <finding>..., <finding>_r1, <finding>_r2 ..., reader1, reader2`. A finding's final
  /// column is the adjudicator's choice (1, 0 or `equivocal`), else the readers' common definite
  /// answer, else blank (open). Reader columns: 1 present, 0 absent, `uncertain`, blank = not answered.
  public func humanCSV() throws -> (text: String, summary: ExportSummary) {
    try pool.read { db in
      let findings = try String.fetchAll(db, sql: "SELECT name FROM finding ORDER BY position")
      var header = ["id"] + findings
      for f in findings { header += ["\(f)_r1", "\(f)_r2"] }
      header += ["reader1", "reader2"]
      var w = CSVWriter(header: header)
      var s = ExportSummary(rows: 0, adjudicated: [:], consensus: [:], equivocal: [:], pending: [:])
      for f in findings { s.adjudicated[f] = 0; s.consensus[f] = 0; s.equivocal[f] = 0; s.pending[f] = 0 }
      let reports = try Row.fetchAll(db, sql: "SELECT id, external_id FROM report ORDER BY position")
      for r in reports {
        let key: Int64 = r["id"]
        let asg = try Row.fetchAll(db, sql: "SELECT id, annotator FROM assignment WHERE report_id = ? ORDER BY slot", arguments: [key])
        var answers: [[String: String]] = []
        for a in asg {
          var m: [String: String] = [:]
          for row in try Row.fetchAll(db, sql: "SELECT finding, value FROM answer WHERE assignment_id = ?", arguments: [a["id"] as Int64]) {
            m[row["finding"]] = row["value"]
          }
          answers.append(m)
        }
        var adj: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT finding, value FROM adjudication WHERE report_id = ?", arguments: [key]) {
          adj[row["finding"]] = row["value"]
        }
        func cell(_ v: String?) -> String {
          switch v {
          case "present": return "1"
          case "absent": return "0"
          case "uncertain": return "uncertain"
          case "equivocal": return "equivocal"
          default: return ""
          }
        }
        var fields: [String] = [r["external_id"]]
        for f in findings {
          let a = answers.count > 0 ? answers[0][f] : nil, b = answers.count > 1 ? answers[1][f] : nil
          if let d = adj[f] {
            fields.append(cell(d))
            if d == "equivocal" { s.equivocal[f]! += 1 } else { s.adjudicated[f]! += 1 }
          } else if let a, a == b, a != "uncertain" {
            fields.append(cell(a)); s.consensus[f]! += 1
          } else {
            fields.append(""); s.pending[f]! += 1
          }
        }
        for f in findings {
          fields.append(cell(answers.count > 0 ? answers[0][f] : nil))
          fields.append(cell(answers.count > 1 ? answers[1][f] : nil))
        }
        fields.append(asg.count > 0 ? asg[0]["annotator"] : "")
        fields.append(asg.count > 1 ? asg[1]["annotator"] : "")
        w.append(fields)
        s.rows += 1
      }
      return (w.text, s)
    }
  }

  /// The audit log: `at, user, action, target, old, new`.
  public func auditCSV() throws -> String {
    try pool.read { db in
      var w = CSVWriter(header: ["at", "user", "action", "target", "old", "new"])
      for r in try Row.fetchAll(db, sql: "SELECT at, user, action, target, old_value, new_value FROM audit ORDER BY id") {
        w.append([r["at"], r["user"], r["action"], r["target"], (r["old_value"] as String?) ?? "", (r["new_value"] as String?) ?? ""])
      }
      return w.text
    }
  }

  /// Writes `text` to `url` atomically. An existing file is replaced only if it is, byte for
  /// byte, a file this project exported before (its SHA-256 is in the export log); anything else
  /// (a file we did not write, or an export edited since) is left alone and is an error.
  public func writeExport(_ text: String, to url: URL, kind: String, user: String = "cli") throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: url.path) {
      let digest = try SHA256.file(url)
      let ours = try pool.read { db in
        try Int.fetchOne(db, sql: "SELECT 1 FROM export_log WHERE path = ? AND sha256 = ?", arguments: [url.standardizedFileURL.path, digest]) != nil
      }
      guard ours else {
        throw FileError("\(url.path) already exists and is not an unchanged export of \(path); cxr annotate never overwrites it — choose another --out or move that file away")
      }
    }
    try AtomicFile.write(text, to: url)
    let digest = SHA256.hex(text)
    try pool.write { db in
      try db.execute(sql: "INSERT INTO export_log(path, sha256, at) VALUES (?, ?, ?)", arguments: [url.standardizedFileURL.path, digest, Clock.stamp()])
      try Project.audit(db, user: user, action: "export_\(kind)", target: url.path, old: nil, new: digest)
    }
  }
}
