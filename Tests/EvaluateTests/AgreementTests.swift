import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

final class AgreementTests: XCTestCase {
  /// A hand-made confusion matrix: TP 30, FP 10, FN 5, TN 55.
  func testMetricsOfAHandMadeMatrix() {
    let c = Confusion(tp: 30, fp: 10, fn: 5, tn: 55)
    XCTAssertEqual(c.accuracy!, 0.85, accuracy: 1e-15)
    XCTAssertEqual(c.sensitivity!, 30.0 / 35.0, accuracy: 1e-15)
    XCTAssertEqual(c.specificity!, 55.0 / 65.0, accuracy: 1e-15)
    XCTAssertEqual(c.ppv!, 0.75, accuracy: 1e-15)
    XCTAssertEqual(c.npv!, 55.0 / 60.0, accuracy: 1e-15)
    XCTAssertEqual(c.f1!, 0.8, accuracy: 1e-15)  // 2*30 / (2*30 + 10 + 5)
    let empty = Confusion(tp: 0, fp: 0, fn: 0, tn: 4)
    XCTAssertNil(empty.sensitivity); XCTAssertNil(empty.ppv); XCTAssertNil(empty.f1)
    XCTAssertEqual(empty.specificity, 1)
  }

  /// Hand-computed: 100 items, both yes 40, A yes / B no 10, A no / B yes 5, both no 45.
  /// pa = 0.85; pi = (50 + 45) / 200 = 0.475; pe = 2 * 0.475 * 0.525 = 0.49875;
  /// AC1 = (0.85 - 0.49875) / (1 - 0.49875) = 0.35125 / 0.50125.
  func testGwetAC1HandComputed() {
    let a = Array(repeating: true, count: 50) + Array(repeating: false, count: 50)
    let b = Array(repeating: true, count: 40) + Array(repeating: false, count: 10) + Array(repeating: true, count: 5)
      + Array(repeating: false, count: 45)
    XCTAssertEqual(gwetAC1(a, b)!, 0.35125 / 0.50125, accuracy: 1e-12)
    XCTAssertEqual(gwetAC1([true, false], [true, false])!, 1, accuracy: 1e-15)
  }

  /// The same matrix through `cxr agree`: human file with equivocal rows, a CheXpert-style schema.
  func testAgreeEndToEnd() throws {
    let dir = try TestEnv.scratch("cxr-agree")
    defer { try? FileManager.default.removeItem(at: dir) }
    var human = "id,Pneumothorax,r1,r2\n"
    var schema = "id,Pneumothorax\n"
    // (schema, human) pairs: TP 30, FP 10, FN 5, TN 55; 6 equivocal human rows in several spellings.
    var i = 0
    func add(_ s: String, _ h: String, _ r1: String, _ r2: String) {
      human += "c\(i),\(h),\(r1),\(r2)\n"; schema += "c\(i),\(s)\n"; i += 1
    }
    for k in 0..<30 { add(k % 2 == 0 ? "1.0" : "-1.0", "1", "1", k < 28 ? "1" : "0") }  // uncertain -> ones
    for _ in 0..<10 { add("1", "0", "0", "0") }
    for _ in 0..<5 { add("", "1", "1", "1") }                                       // blank schema -> negative
    for k in 0..<55 { add("0.0", "0", "0", k < 3 ? "1" : "0") }
    for h in ["-1", "", "equivocal", "Uncertain", "-1.0", " "] { add("1", h, "", "1") }
    schema += "extra1,1\n"
    let out = dir.appendingPathComponent("out")
    let result = try Jobs.agree(human: try write(human, "human.csv", in: dir), schemas: ["chexpert=\(try write(schema, "schema.csv", in: dir))"],
                                findings: nil, annotators: "r1,r2", rounds: 200, seed: 3, out: out)
    XCTAssertEqual(result.findings, ["Pneumothorax"])
    XCTAssertEqual(result.confusions, [ConfusionRow(schema: "chexpert", finding: "Pneumothorax", tp: 30, fp: 10, fn: 5, tn: 55, leftOut: 6)])
    let expected: [String: Double] = ["accuracy": 0.85, "sensitivity": 30.0 / 35, "specificity": 55.0 / 65, "ppv": 0.75,
                                      "npv": 55.0 / 60, "f1": 0.8]
    let table = try CSVTable.read(out.appendingPathComponent("agreement.csv"))
    XCTAssertEqual(table.header, ["schema", "finding", "metric", "value", "ci_low", "ci_high", "n", "n_pos"])
    XCTAssertEqual(table.rows.map { $0[2] }, Confusion.metricNames + ["gwet_ac1", "gwet_ac1_3cat"])
    for row in table.rows where row[0] == "chexpert" {
      let value = Double(row[3])!, lo = Double(row[4])!, hi = Double(row[5])!
      XCTAssertEqual(value, expected[row[2]]!, accuracy: 1e-12, row[2])
      XCTAssertLessThanOrEqual(lo, value); XCTAssertGreaterThanOrEqual(hi, value)
      XCTAssertEqual(row[6], "100"); XCTAssertEqual(row[7], "35")
    }
    // Annotators r1/r2: equivocal (blank r1) rows left out; 100 items with A yes 35, B yes 36,
    // agreement on 95 (2 of A's yes are B's no, 3 of A's no are B's yes).
    let ac1 = try XCTUnwrap(table.rows.first { $0[0] == "annotators" })
    XCTAssertEqual(ac1[1], "r1 vs r2")
    let pa = 0.95, pi = (35.0 + 36.0) / 200, pe = 2 * pi * (1 - pi)
    XCTAssertEqual(Double(ac1[3])!, (pa - pe) / (1 - pe), accuracy: 1e-12)
    XCTAssertEqual(ac1[6], "100")
    XCTAssertEqual(result.notes, ["1 id(s) of schema 'chexpert' (\(dir.path)/schema.csv) are not in the human file and were left out, e.g. 'extra1'"])
    let confusion = try String(contentsOf: out.appendingPathComponent("confusion.csv"), encoding: .utf8)
    XCTAssertEqual(confusion, "schema,finding,tp,fp,fn,tn,left_out\nchexpert,Pneumothorax,30,10,5,55,6\n")
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 1)
    for name in ["agreement.json", "report.md"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), name)
    }
  }

  func testAnnotatorTemplatesPerFinding() throws {
    let human = try CSVTable.parse("id,A,B,A_r1,A_r2,B_r1,B_r2\n1,1,0,1,1,0,0\n2,0,1,0,1,1,1\n3,1,1,1,1,1,0\n", source: "h.csv")
    let schema = try CSVTable.parse("id,A,B\n1,1,0\n2,0,1\n3,1,1\n", source: "s.csv")
    let r = try Agreement.run(human: human, schemas: [("s", schema)], findings: ["A", "B"], annotators: ("{finding}_r1", "{finding}_r2"),
                              rounds: 0)
    let ac1 = r.rows.filter { $0.metric == "gwet_ac1" }
    XCTAssertEqual(ac1.map(\.finding), ["A", "B"])
    // A: pa 2/3, pi (2 + 3) / 6; B: pa 2/3, pi (2 + 1) / 6.
    for (row, pi) in zip(ac1, [5.0 / 6, 0.5]) {
      let pe = 2 * pi * (1 - pi)
      XCTAssertEqual(row.value!, (2.0 / 3 - pe) / (1 - pe), accuracy: 1e-12)
      XCTAssertNil(row.ciLow)
    }
  }

  func testBadHumanInput() throws {
    let dir = try TestEnv.scratch("cxr-agree-bad")
    defer { try? FileManager.default.removeItem(at: dir) }
    let human = try write("id,Fracture\n1,1\n2,maybe\n", "h.csv", in: dir)
    let schema = try write("id,Fracture\n1,1\n2,0\n", "s.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    XCTAssertThrowsMessage(try Jobs.agree(human: human, schemas: ["s=\(schema)"], findings: nil, annotators: nil, out: out),
                           "\(dir.path)/h.csv:3: column 'Fracture' holds 'maybe'; expected 1/0 (or present/absent), or -1, 'equivocal' or blank for an equivocal case")
    let good = try write("id,Fracture\n1,1\n2,0\n", "h2.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.agree(human: good, schemas: ["s=\(schema)"], findings: nil, annotators: "r1", out: out),
                           "--annotators expects two column names of \(good), e.g. --annotators reader1,reader2 or {finding}_r1,{finding}_r2; got 'r1'")
    XCTAssertThrowsMessage(try Jobs.agree(human: good, schemas: ["s=\(schema)"], findings: nil, annotators: "r1,r2", out: out),
                           "\(good) has no column 'r1'; its columns are: id, Fracture")
    XCTAssertThrowsMessage(try Jobs.agree(human: good, schemas: ["s=\(schema)"], findings: ["Pneumothorax"], annotators: nil, out: out),
                           "\(good) has no column 'Pneumothorax'; its columns are: id, Fracture")
    XCTAssertThrowsMessage(try Jobs.agree(human: good, schemas: [schema], findings: nil, annotators: nil, out: out),
                           "--schema expects NAME=path (e.g. --schema name=file.csv), got '\(schema)'")
  }
}
