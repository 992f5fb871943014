import Common
import Foundation
import TestSupport
import XCTest

/// The built `cxr` binary itself (swift test builds it beside the test bundle): argument parsing
/// of repeated NAME=file options, exit status, the files written, and how errors reach the user.
final class CommandLineTests: XCTestCase {
  func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try CXRBinary.run(args, for: CommandLineTests.self)
  }

  func testEvaluateAndAgreeFromTheCommandLine() throws {
    let dir = try TestEnv.scratch("cxr-cli")
    defer { try? FileManager.default.removeItem(at: dir) }
    let preds = try write("id,path,Fracture\na,/a,0.9\nb,/b,0.8\nc,/c,0.7\nd,/d,0.6\ne,/e,0.55\nf,/f,0.1\ng,/g,0.3\n", "p.csv", in: dir)
    let ref = try write("id,Fracture\na,1.0\nb,1.0\nc,0.0\nd,\ne,1.0\nf,0.0\n", "r.csv", in: dir)
    let out = dir.appendingPathComponent("eval")
    let r = try run(["evaluate", "--predictions", "m1=\(preds)", "--predictions", "m2=\(preds)", "--reference", "masks=\(ref)",
                     "--bootstrap", "50", "--seed", "3", "--out", out.path])
    XCTAssertEqual(r.status, 0, r.err)
    // No tuning predictions or --threshold: the operating points are the two read off each test ROC.
    XCTAssertEqual(r.out, "wrote 4 metric rows, 1 comparisons and 4 operating points to \(out.path)/ (metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv, metrics.json, report.md, report.html)\n")
    XCTAssertEqual(r.err, "note: 1 id(s) of predictions 'm1' (\(preds)) are not in reference 'masks' (\(ref)) and were left out, e.g. 'g'\n"
                   + "note: 1 id(s) of predictions 'm2' (\(preds)) are not in reference 'masks' (\(ref)) and were left out, e.g. 'g'\n")
    let table = try CSVTable.read(out.appendingPathComponent("metrics.csv"))
    XCTAssertEqual(table.rows.map { [$0[0], $0[1], $0[2], $0[3], $0[7], $0[8]] },
                   [["m1", "masks", "Fracture", "auroc", "6", "3"], ["m1", "masks", "Fracture", "auprc", "6", "3"],
                    ["m2", "masks", "Fracture", "auroc", "6", "3"], ["m2", "masks", "Fracture", "auprc", "6", "3"]])
    XCTAssertEqual(Double(table.rows[0][4])!, 7.0 / 9, accuracy: 1e-12)
    XCTAssertEqual(Double(table.rows[1][4])!, 2.6 / 3, accuracy: 1e-12)

    let human = try write("id,Fracture\na,1\nb,equivocal\nc,0\nd,0\ne,1\nf,0\n", "h.csv", in: dir)
    let agreeOut = dir.appendingPathComponent("agree")
    let a = try run(["agree", "--human", human, "--schema", "chexpert=\(ref)", "--bootstrap", "20", "--out", agreeOut.path])
    XCTAssertEqual(a.status, 0, a.err)
    XCTAssertEqual(try String(contentsOf: agreeOut.appendingPathComponent("confusion.csv"), encoding: .utf8),
                   "schema,finding,tp,fp,fn,tn,left_out\nchexpert,Fracture,2,0,0,3,1\n")

    let bad = try run(["evaluate", "--predictions", "m1=\(preds)", "--reference", "masks=\(ref)", "--findings", "Edema", "--out", out.path])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertEqual(bad.err, "Error: \(preds) has no column 'Edema'; its columns are: id, path, Fracture\n")
    let policy = try run(["evaluate", "--predictions", "m1=\(preds)", "--reference", "masks=\(ref)", "--uncertain", "maybe", "--out", out.path])
    XCTAssertNotEqual(policy.status, 0)
    XCTAssertTrue(policy.err.contains("maybe"), policy.err)
  }
}
