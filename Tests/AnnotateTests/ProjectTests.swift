import Annotate
import Common
import Foundation
import GRDB
import TestSupport
import XCTest

final class ProjectTests: XCTestCase {
  /// 40 reports in 3 strata of a CheXpert-style label file: 20 negative, 12 Pneumothorax-positive,
  /// 8 uncertain (one of them blank-Fracture); a sample of 10 takes 5 / 3 / 2.
  func writeInputs(_ dir: URL) throws -> (reports: String, labels: String) {
    var reports = CSVWriter(header: ["study", "report_text"])
    var labels = CSVWriter(header: ["study", "Pneumothorax", "Fracture"])
    for i in 0..<40 {
      reports.append(["s\(i)", "Report \(i): lungs \(i % 3 == 0 ? "clear" : "hazy"), \"quoted\", commas"])
      labels.append(["s\(i)", i < 20 ? "0" : i < 32 ? "1.0" : "-1.0", i == 39 ? "" : "0"])
    }
    try reports.write(to: dir.appendingPathComponent("reports.csv"))
    try labels.write(to: dir.appendingPathComponent("labels.csv"))
    return (dir.appendingPathComponent("reports.csv").path, dir.appendingPathComponent("labels.csv").path)
  }

  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }

  func testInitStratifiesBalancesAndIsDeterministic() throws {
    let dir = try TestEnv.scratch("cxr-annotate-init")
    defer { try? FileManager.default.removeItem(at: dir) }
    let (reports, labels) = try writeInputs(dir)
    func make(_ name: String, seed: String) throws -> (Int32, String, String) {
      try cxr(["annotate", "init", dir.appendingPathComponent(name).path, "--reports", reports, "--id-column", "study",
               "--text-column", "report_text", "--findings", "Pneumothorax,Fracture", "--sample", "12", "--stratify-by", labels,
               "--seed", seed, "--annotators", "a,b,c,d"])
    }
    let r = try make("p.db", seed: "5")
    XCTAssertEqual(r.0, 0, r.2)
    XCTAssertTrue(r.1.contains("made \(dir.path)/p.db: 12 of 40 reports, findings Pneumothorax, Fracture, seed 5"), r.1)
    // 12 * 20/40 = 6, 12 * 12/40 = 3.6 -> 4 (largest remainder), 12 * 8/40 = 2.4 -> 2.
    XCTAssertTrue(r.1.contains("stratum Pneumothorax=0;Fracture=0: 6 of 20"), r.1)
    XCTAssertTrue(r.1.contains("stratum Pneumothorax=1;Fracture=0: 4 of 12"), r.1)
    XCTAssertTrue(r.1.contains("stratum Pneumothorax=-1;Fracture=0: 2 of 8"), r.1)
    XCTAssertTrue(r.1.contains("reads: a 6, b 6, c 6, d 6"), r.1)
    let q = try DatabaseQueue(path: dir.appendingPathComponent("p.db").path)
    let (journal, fk, pairs, perReport, texts) = try q.read { db in
      (try String.fetchOne(db, sql: "PRAGMA journal_mode")!, try Int.fetchOne(db, sql: "PRAGMA foreign_key_list(answer)") ,
       try Row.fetchAll(db, sql: "SELECT MIN(annotator) AS x, MAX(annotator) AS y, COUNT(*) AS n FROM assignment GROUP BY report_id").map { "\($0["x"] as String)\($0["y"] as String)" },
       try Int.fetchAll(db, sql: "SELECT COUNT(*) FROM assignment GROUP BY report_id"),
       try String.fetchAll(db, sql: "SELECT text FROM report ORDER BY position"))
    }
    try q.close()
    XCTAssertEqual(journal, "wal")
    XCTAssertNotNil(fk)
    XCTAssertEqual(perReport, Array(repeating: 2, count: 12))
    // 6 pairs of 4 annotators, each pair twice.
    XCTAssertEqual(Dictionary(grouping: pairs, by: { $0 }).mapValues(\.count), ["ab": 2, "ac": 2, "ad": 2, "bc": 2, "bd": 2, "cd": 2])
    XCTAssertTrue(texts.allSatisfy { $0.contains("\"quoted\", commas") })
    // Same seed, same sample and order; another seed, another sample.
    XCTAssertEqual(try make("p2.db", seed: "5").0, 0)
    XCTAssertEqual(try make("p3.db", seed: "6").0, 0)
    func order(_ name: String) throws -> [String] {
      let q = try DatabaseQueue(path: dir.appendingPathComponent(name).path)
      defer { try? q.close() }
      return try q.read { db in try String.fetchAll(db, sql: "SELECT external_id || ':' || (SELECT group_concat(annotator) FROM assignment WHERE report_id = report.id ORDER BY slot) FROM report ORDER BY position") }
    }
    XCTAssertEqual(try order("p.db"), try order("p2.db"))
    XCTAssertNotEqual(try order("p.db"), try order("p3.db"))
    // Never overwrites.
    let again = try make("p.db", seed: "5")
    XCTAssertEqual(again.0, 1)
    XCTAssertTrue(again.2.contains("\(dir.path)/p.db already exists; cxr annotate init never overwrites a project"), again.2)
  }

  func testInitErrorsNameFileAndColumn() throws {
    let dir = try TestEnv.scratch("cxr-annotate-init-bad")
    defer { try? FileManager.default.removeItem(at: dir) }
    let (reports, labels) = try writeInputs(dir)
    let out = dir.appendingPathComponent("p.db").path
    func run(_ extra: [String]) throws -> String {
      let r = try cxr(["annotate", "init", out, "--findings", "Pneumothorax,Fracture", "--annotators", "a,b"] + extra)
      XCTAssertEqual(r.status, 1, r.err)
      XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a failed init leaves no project")
      return r.err
    }
    XCTAssertTrue(try run(["--reports", reports, "--sample", "5"]).contains(
      "\(reports) has no id column 'id' (its columns are: study, report_text); name it with --id-column"))
    XCTAssertTrue(try run(["--reports", reports, "--id-column", "study", "--sample", "5"]).contains(
      "\(reports) has no report text column 'text' (its columns are: study, report_text); name it with --text-column"))
    XCTAssertTrue(try run(["--reports", reports, "--id-column", "study", "--text-column", "report_text", "--sample", "41"]).contains(
      "--sample 41 is larger than the 40 reports in \(reports); ask for at most 40"))
    XCTAssertTrue(try run(["--reports", reports, "--id-column", "study", "--text-column", "report_text", "--sample", "4",
                           "--stratify-by", labels, "--findings", "Pneumothorax,Effusion"]).contains(
      "\(labels) has no column 'Effusion' to stratify by (its columns are: study, Pneumothorax, Fracture); check --findings"))
    XCTAssertTrue(try run(["--reports", reports, "--id-column", "study", "--text-column", "report_text", "--sample", "4",
                           "--annotators", "a,a"]).contains("--annotators names 'a' twice; each annotator once"))
    let partial = dir.appendingPathComponent("partial.csv")
    try "study,Pneumothorax,Fracture\ns0,1,0\ns1,0,0\n".write(to: partial, atomically: true, encoding: .utf8)
    XCTAssertTrue(try run(["--reports", reports, "--id-column", "study", "--text-column", "report_text", "--sample", "4",
                           "--stratify-by", partial.path]).contains(
      "38 report id(s) of \(reports) are not in the label file \(partial.path), e.g. 's2'; stratify with a label file covering every report"))
  }

  func testForeignAndCorruptProjectFiles() throws {
    let dir = try TestEnv.scratch("cxr-annotate-foreign")
    defer { try? FileManager.default.removeItem(at: dir) }
    let text = dir.appendingPathComponent("notes.db").path
    try "hello, not a database\n".write(toFile: text, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Project.open(text)) { e in
      XCTAssertEqual("\(e)", "\(text) is not a SQLite database (a foreign or corrupt file); give a project made by `cxr annotate init`")
    }
    let other = dir.appendingPathComponent("other.db").path
    let q = try DatabaseQueue(path: other)
    try q.write { db in try db.execute(sql: "CREATE TABLE t(x); INSERT INTO t VALUES (1)") }
    try q.close()
    XCTAssertThrowsError(try Project.open(other)) { e in
      XCTAssertEqual("\(e)", "\(other) is a SQLite database but not a cxr annotate project (no cxr-annotate meta table); give a project made by `cxr annotate init`")
    }
    // A real project with its pages overwritten past the header.
    let f = try Fixture.make("cxr-annotate-corrupt", reports: (0..<50).map { ("r\($0)", String(repeating: "text \($0) ", count: 80)) })
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: f.db))
    try h.seek(toOffset: 4096)
    try h.write(contentsOf: Data(repeating: 0xA5, count: 16384))
    try h.close()
    XCTAssertThrowsError(try Project.open(f.db)) { e in
      let m = "\(e)"
      XCTAssertTrue(m.hasPrefix(f.db + " "), m)
      XCTAssertTrue(m.contains("corrupt") && m.hasSuffix("restore it from a backup"), m)
    }
    // The command line says the same, exit 1.
    let r = try cxr(["annotate", "export", text, "--out", dir.appendingPathComponent("x.csv").path])
    XCTAssertEqual(r.status, 1)
    XCTAssertTrue(r.err.contains("\(text) is not a SQLite database"), r.err)
    let missing = try cxr(["annotate", "serve", dir.appendingPathComponent("nope.db").path])
    XCTAssertEqual(missing.status, 1)
    XCTAssertTrue(missing.err.contains("nope.db: no such project file; make one with `cxr annotate init"), missing.err)
  }

  func testUserAddHashesAndRefusesDuplicates() throws {
    let f = try Fixture.make("cxr-annotate-users", reports: [("r1", "a"), ("r2", "b")], users: [])
    defer { try? FileManager.default.removeItem(at: f.dir) }
    setenv("CXR_ANNOTATE_PASSWORD", "s3cret-Password!", 1)
    defer { unsetenv("CXR_ANNOTATE_PASSWORD") }
    let r = try cxr(["annotate", "user", "add", "alice", "--role", "annotator", "--project", f.db, "--bcrypt-cost", "4"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertEqual(r.out, "added annotator 'alice' to \(f.db)\n")
    XCTAssertFalse((r.out + r.err).contains("s3cret"))
    let hash = try f.sql("SELECT password_hash FROM user WHERE name = 'alice'")
    XCTAssertEqual(hash.count, 1)
    XCTAssertTrue(hash[0].hasPrefix("$2b$04$"), hash[0])
    XCTAssertFalse(hash[0].contains("s3cret"))
    let dup = try cxr(["annotate", "user", "add", "alice", "--role", "admin", "--project", f.db, "--bcrypt-cost", "4"])
    XCTAssertEqual(dup.status, 1)
    XCTAssertTrue(dup.err.contains("user 'alice' already exists in \(f.db); choose another name"), dup.err)
    let stranger = try cxr(["annotate", "user", "add", "zed", "--role", "annotator", "--project", f.db, "--bcrypt-cost", "4"])
    XCTAssertEqual(stranger.status, 0)
    XCTAssertTrue(stranger.err.contains("note: 'zed' has no reports assigned (the project's annotators are alice, bob)"), stranger.err)
    let badRole = try cxr(["annotate", "user", "add", "x", "--role", "boss", "--project", f.db])
    XCTAssertNotEqual(badRole.status, 0)
    XCTAssertEqual(try f.sql("SELECT name || ':' || role FROM user ORDER BY id"), ["alice:annotator", "zed:annotator"])
    XCTAssertEqual(try f.sql("SELECT action || ':' || target FROM audit WHERE action = 'user_add'"), ["user_add:alice", "user_add:zed"])
  }

  func testExportNeverOverwritesAFileItDidNotWrite() throws {
    let f = try Fixture.make("cxr-annotate-export", reports: [("r1", "a"), ("r2", "b")])
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let out = f.dir.appendingPathComponent("human.csv")
    try "precious,data\n".write(to: out, atomically: true, encoding: .utf8)
    var r = try cxr(["annotate", "export", f.db, "--out", out.path])
    XCTAssertEqual(r.status, 1)
    XCTAssertTrue(r.err.contains("\(out.path) already exists and is not an unchanged export of \(f.db); cxr annotate never overwrites it"), r.err)
    XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "precious,data\n")
    try FileManager.default.removeItem(at: out)
    r = try cxr(["annotate", "export", f.db, "--out", out.path])
    XCTAssertEqual(r.status, 0, r.err)
    // Its own unchanged export may be replaced; an edited one may not.
    r = try cxr(["annotate", "export", f.db, "--out", out.path])
    XCTAssertEqual(r.status, 0, r.err)
    try (try String(contentsOf: out, encoding: .utf8) + "edited\n").write(to: out, atomically: true, encoding: .utf8)
    r = try cxr(["annotate", "export", f.db, "--out", out.path])
    XCTAssertEqual(r.status, 1)
    XCTAssertTrue(try String(contentsOf: out, encoding: .utf8).hasSuffix("edited\n"))
    let audit = f.dir.appendingPathComponent("audit.csv")
    r = try cxr(["annotate", "audit", f.db, "--out", audit.path])
    XCTAssertEqual(r.status, 0, r.err)
    let table = try CSVTable.read(audit)
    XCTAssertEqual(table.header, ["at", "user", "action", "target", "old", "new"])
    XCTAssertEqual(table.rows.map { $0[2] }, ["init", "user_add", "user_add", "user_add", "user_add", "export_human", "export_human"])
  }

  /// MIMIC-CXR's report tree is read as `cxr label` reads it (impression, else findings) and
  /// stratified by a CheXpert label file keyed by study_id.
  func testInitFromMIMICReportFolder() throws {
    let dir = try TestEnv.scratch("cxr-annotate-mimic")
    defer { try? FileManager.default.removeItem(at: dir) }
    var labels = "subject_id,study_id,Pneumothorax,Fracture\n"
    for (k, study) in [50000001, 50000002, 50000003, 50000004].enumerated() {
      let folder = dir.appendingPathComponent("files/p10/p1000000\(k)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try "FINAL REPORT\n FINDINGS: Lungs clear \(k).\n IMPRESSION: No pneumothorax \(k).\n"
        .write(to: folder.appendingPathComponent("s\(study).txt"), atomically: true, encoding: .utf8)
      labels += "1000000\(k),\(study),\(k < 2 ? "1.0" : ""),\n"
    }
    try labels.write(to: dir.appendingPathComponent("chexpert.csv"), atomically: true, encoding: .utf8)
    let db = dir.appendingPathComponent("p.db").path
    let r = try cxr(["annotate", "init", db, "--reports", dir.path, "--findings", "Pneumothorax,Fracture", "--sample", "2",
                     "--stratify-by", dir.appendingPathComponent("chexpert.csv").path, "--seed", "1", "--annotators", "a,b"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.out.contains("stratum Pneumothorax=0;Fracture=0: 1 of 2"), r.out)
    XCTAssertTrue(r.out.contains("stratum Pneumothorax=1;Fracture=0: 1 of 2"), r.out)
    let q = try DatabaseQueue(path: db)
    defer { try? q.close() }
    let rows = try q.read { db in try Row.fetchAll(db, sql: "SELECT external_id, text FROM report ORDER BY external_id").map { "\($0["external_id"] as String): \($0["text"] as String)" } }
    XCTAssertEqual(rows.count, 2)
    for row in rows {
      let k = Int(row.prefix(8))! - 50000001
      XCTAssertEqual(row, "\(50000001 + k): No pneumothorax \(k).")
    }
  }
}
