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
    XCTAssertEqual(r.out, "wrote 4 metric rows, 1 comparisons and 4 operating points to \(out.path)/ (metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv, curve_bands.csv, subgroups.csv, metrics.json, report.md, report.html, figures/)\n")
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

  /// Operating points chosen on tuning predictions, fixed thresholds and the calibration bins, as
  /// typed; bad values get one line naming the option.
  func testEvaluateWithTuningPredictionsAndThresholds() throws {
    let dir = try TestEnv.scratch("cxr-cli-tune")
    defer { try? FileManager.default.removeItem(at: dir) }
    let preds = try write("id,Fracture\na,0.9\nb,0.8\nc,0.7\nd,0.6\ne,0.55\nf,0.1\n", "p.csv", in: dir)
    let ref = try write("id,Fracture\na,1\nb,1\nc,0\nd,0\ne,1\nf,0\n", "r.csv", in: dir)
    let tune = try write("id,Fracture\nt1,0.9\nt2,0.8\nt3,0.7\nt4,0.6\n", "tune.csv", in: dir)
    let tuneRef = try write("id,Fracture\nt1,1\nt2,1\nt3,0\nt4,0\n", "tune_ref.csv", in: dir)
    let out = dir.appendingPathComponent("eval")
    let r = try run(["evaluate", "--predictions", "m1=\(preds)", "--reference", "masks=\(ref)", "--tune-predictions", "m1=\(tune)",
                     "--tune-reference", tuneRef, "--threshold", "0.5", "--threshold", "0.75", "--calibration-bins", "4",
                     "--bootstrap", "20", "--out", out.path])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertEqual(r.err, "")
    let table = try CSVTable.read(out.appendingPathComponent("operating_points.csv"))
    // Youden's J on the tuning set is perfect at 0.8; 5 tuned rules + 2 fixed + 2 read off the test ROC.
    XCTAssertEqual(table.rows.map { [$0[3], $0[4], $0[5]] }, [
      ["youden", "tune", "0.8"], ["sensitivity>=0.90", "tune", "0.8"], ["sensitivity>=0.95", "tune", "0.8"],
      ["specificity>=0.90", "tune", "0.8"], ["specificity>=0.95", "tune", "0.8"], ["fixed", "fixed", "0.5"], ["fixed", "fixed", "0.75"],
      ["specificity>=0.90", "test", "0.8"], ["specificity>=0.95", "test", "0.8"],
    ])
    let calibration = try CSVTable.read(out.appendingPathComponent("calibration.csv"))
    XCTAssertEqual(calibration.rows.map { [$0[3], $0[4], $0[5]] }, [["brier", "", ""], ["ece", "uniform", "4"], ["ece", "quantile", "4"]])
    for (args, message) in [
      (["--threshold", "1.5"], "--threshold must be a probability in [0, 1], got 1.5; give one --threshold per fixed threshold, e.g. --threshold 0.5"),
      (["--calibration-bins", "1"], "--calibration-bins must be at least 2 (the default is 10), got 1"),
      (["--tune-predictions", "m1=\(tune)"], "--tune-predictions m1=\(tune) needs --tune-reference labels.csv: the tuning-set labels the operating points are chosen on"),
    ] {
      let bad = try run(["evaluate", "--predictions", "m1=\(preds)", "--reference", "masks=\(ref)", "--out", dir.appendingPathComponent("bad").path] + args)
      XCTAssertNotEqual(bad.status, 0)
      XCTAssertEqual(bad.err, "Error: \(message)\n")
    }
  }
}
