import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// `cxr evaluate` as users run it (the command forwards its arguments to `Jobs.evaluate`),
/// on small CSVs written here.
final class EvaluateEndToEndTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-evaluate") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  // Pneumothorax: positives 0.9, 0.8, 0.55, negatives 0.7, 0.6, 0.1 -> AUROC 7/9, AP 2.6/3.
  let predsA = """
    id,path,Pneumothorax,Fracture
    a,/img/a.dcm,0.9,0.2
    b,/img/b.dcm,0.8,0.9
    c,/img/c.dcm,0.7,0.1
    d,/img/d.dcm,0.6,0.4
    e,/img/e.dcm,0.55,0.3
    f,/img/f.dcm,0.1,0.8
    """
  let predsB = """
    id,Pneumothorax,Fracture
    f,0.2,0.5
    e,0.9,0.5
    d,0.1,0.5
    c,0.3,0.5
    b,0.4,0.5
    a,0.8,0.5
    """
  // CheXpert values: -1.0 on c follows the policy; blank is negative.
  let reference = """
    id,Pneumothorax,Fracture
    a,1.0,
    b,1.0,1.0
    c,-1.0,0.0
    d,,
    e,1,0
    f,0,1
    """

  func testMetricsCSVContents() throws {
    let out = dir.appendingPathComponent("out")
    let result = try Jobs.evaluate(predictions: ["A=\(try write(predsA, "a.csv", in: dir))", "B=\(try write(predsB, "b.csv", in: dir))"],
                                   references: ["chex=\(try write(reference, "ref.csv", in: dir))"], findings: nil,
                                   uncertain: .zeros, rounds: 200, seed: 1, out: out)
    XCTAssertEqual(result.findings, ["Pneumothorax", "Fracture"])
    XCTAssertTrue(result.notes.isEmpty, "\(result.notes)")
    let table = try CSVTable.read(out.appendingPathComponent("metrics.csv"))
    XCTAssertEqual(table.header, ["model", "reference", "finding", "metric", "value", "ci_low", "ci_high", "n", "n_pos"])
    XCTAssertEqual(table.rows.map { Array($0[0..<4]) + Array($0[7...]) }, [
      ["A", "chex", "Pneumothorax", "auroc", "6", "3"], ["A", "chex", "Pneumothorax", "auprc", "6", "3"],
      ["B", "chex", "Pneumothorax", "auroc", "6", "3"], ["B", "chex", "Pneumothorax", "auprc", "6", "3"],
      ["A", "chex", "Fracture", "auroc", "6", "2"], ["A", "chex", "Fracture", "auprc", "6", "2"],
      ["B", "chex", "Fracture", "auroc", "6", "2"], ["B", "chex", "Fracture", "auprc", "6", "2"],
    ])
    // B on Pneumothorax (positives a 0.8, b 0.4, e 0.9; negatives c 0.3, d 0.1, f 0.2): AUROC 1, AP 1.
    // A on Fracture (positives b 0.9, f 0.8): AUROC 1, AP 1. B on Fracture: all tied -> 0.5 and 2/6.
    let expected = [7.0 / 9, 2.6 / 3, 1, 1, 1, 1, 0.5, 2.0 / 6]
    for (row, value) in zip(table.rows, expected) {
      XCTAssertEqual(Double(row[4])!, value, accuracy: 1e-12, "\(row)")
      let lo = Double(row[5])!, hi = Double(row[6])!
      XCTAssertLessThanOrEqual(lo, Double(row[4])! + 1e-12); XCTAssertGreaterThanOrEqual(hi, Double(row[4])! - 1e-12)
    }
    let comparisons = try CSVTable.read(out.appendingPathComponent("comparisons.csv"))
    XCTAssertEqual(comparisons.rows.map { Array($0[0..<4]) }, [["chex", "Pneumothorax", "A", "B"], ["chex", "Fracture", "A", "B"]])
    XCTAssertEqual(Double(comparisons.rows[0][6])!, 7.0 / 9 - 1, accuracy: 1e-12)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
    XCTAssertEqual((json["metrics"] as! [Any]).count, 8)
    XCTAssertEqual(json["bootstrap_rounds"] as? Int, 200)
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("| A | 0.778 ("), md)
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    // 2 heatmaps + ROC + PR + reliability diagram per finding; a line per model in each of the last three.
    XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 10)
    XCTAssertEqual(html.components(separatedBy: "<polyline").count - 1, 12)

    // Same seed, same files: byte-identical metrics; policy `ones` turns c positive.
    let again = try Jobs.evaluate(predictions: ["A=\(dir.path)/a.csv", "B=\(dir.path)/b.csv"], references: ["chex=\(dir.path)/ref.csv"],
                                  findings: nil, uncertain: .zeros, rounds: 200, seed: 1, out: dir.appendingPathComponent("again"))
    XCTAssertEqual(again.metricsCSV, try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8))
    let ones = try Jobs.evaluate(predictions: ["A=\(dir.path)/a.csv"], references: ["chex=\(dir.path)/ref.csv"], findings: ["Pneumothorax"],
                                 uncertain: .ones, rounds: 0, out: dir.appendingPathComponent("ones"))
    XCTAssertEqual(ones.rows.map(\.nPos), [4, 4])
    XCTAssertNil(ones.rows[0].ciLow)
    let ignore = try Jobs.evaluate(predictions: ["A=\(dir.path)/a.csv"], references: ["chex=\(dir.path)/ref.csv"], findings: ["Pneumothorax"],
                                   uncertain: .ignore, rounds: 0, out: dir.appendingPathComponent("ignore"))
    XCTAssertEqual(ignore.rows.map(\.n), [5, 5])
  }

  func testReferenceAsSwiftValue() throws {
    let preds = try Predictions(name: "A", table: CSVTable.parse(predsA, source: "a.csv"), findings: ["Pneumothorax"])
    let masks = try ReferenceLabels(name: "masks", source: "CANDID-PTX masks",
                                    values: ["a": ["Pneumothorax": 1], "b": ["Pneumothorax": 1], "c": ["Pneumothorax": nil],
                                             "d": ["Pneumothorax": 0], "e": ["Pneumothorax": 1], "f": ["Pneumothorax": 0]],
                                    findings: ["Pneumothorax"])
    let r = try Evaluation.run(predictions: [preds], references: [masks], findings: ["Pneumothorax"], rounds: 50, seed: 2)
    XCTAssertEqual(r.rows[0].value, 7.0 / 9, accuracy: 1e-12)
    XCTAssertThrowsMessage(try ReferenceLabels(name: "m", source: "CANDID-PTX masks", values: ["a": ["Pneumothorax": 2]], findings: ["Pneumothorax"]),
                           "CANDID-PTX masks: id 'a', finding 'Pneumothorax' has value 2.0; expected 1, 0, -1 or nil")
    XCTAssertThrowsMessage(try ReferenceLabels(name: "m", source: "CANDID-PTX masks", values: ["a": [:]], findings: ["Pneumothorax"]),
                           "CANDID-PTX masks: id 'a' has no value for finding 'Pneumothorax'; give 1, 0, -1 or nil for every finding")
  }

  func testIDsOnOneSideAreCountedAndShown() throws {
    let preds = try write(predsA + "\nx1,/p,0.5,0.5\nx2,/p,0.5,0.5\nx3,/p,0.5,0.5\nx4,/p,0.5,0.5\nx5,/p,0.5,0.5\nx6,/p,0.5,0.5\n", "a.csv", in: dir)
    let ref = try write(reference + "\nonly-ref,1,0\n", "ref.csv", in: dir)
    let r = try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["chex=\(ref)"], findings: ["Pneumothorax"], rounds: 0,
                              out: dir.appendingPathComponent("out"))
    XCTAssertEqual(r.notes, [
      "6 id(s) of predictions 'A' (\(preds)) are not in reference 'chex' (\(ref)) and were left out, e.g. 'x1', 'x2', 'x3', 'x4', 'x5', ...",
      "1 id(s) of reference 'chex' (\(ref)) have no prediction in 'A' (\(preds)) and were left out, e.g. 'only-ref'",
    ])
    XCTAssertEqual(r.rows[0].n, 6)
  }

  /// Models covering different ids: each gets its own CIs; comparisons use the shared cases.
  func testModelsWithDifferentCasesAreComparedOnSharedCases() throws {
    let predsC = "id,Pneumothorax\na,0.3\nb,0.2\nc,0.9\nd,0.1\ne,0.8\n"
    let a = try write(predsA, "a.csv", in: dir), c = try write(predsC, "c.csv", in: dir)
    let r = try Jobs.evaluate(predictions: ["A=\(a)", "C=\(c)"], references: ["chex=\(try write(reference, "ref.csv", in: dir))"],
                              findings: ["Pneumothorax"], uncertain: .zeros, rounds: 100, seed: 4, out: dir.appendingPathComponent("out"))
    XCTAssertEqual(r.notes.last, "models were compared on 'chex' / 'Pneumothorax' over the 5 case(s) all of them share")
    XCTAssertEqual(r.rows.map(\.n), [6, 6, 5, 5])
    let cmp = try XCTUnwrap(r.comparisons.first)
    XCTAssertEqual(cmp.n, 5)
    XCTAssertEqual(cmp.aurocA, 4.0 / 6, accuracy: 1e-12)  // A on a-e: positives .9 .8 .55, negatives .7 .6
    XCTAssertEqual(cmp.aurocB, 3.0 / 6, accuracy: 1e-12)  // C: positives .3 .2 .8 each above only .1 of negatives .9 .1
    XCTAssertNotNil(cmp.ciLow)
  }

  func testOneClassFindingSaysSoAndPrintsNoNaN() throws {
    let ref = try write("id,Pneumothorax,Fracture\na,1,0\nb,0,0\nc,1,0\nd,0,0\ne,0,0\nf,1,0\n", "ref.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    let r = try Jobs.evaluate(predictions: ["A=\(try write(predsA, "a.csv", in: dir))"], references: ["masks=\(ref)"], findings: nil,
                              rounds: 20, out: out)
    XCTAssertEqual(r.notes, ["reference 'masks' has only negative cases for 'Fracture' among the 6 case(s) it shares with 'A': AUROC and AUPRC are undefined there and were not computed"])
    XCTAssertEqual(Set(r.rows.map(\.finding)), ["Pneumothorax"])
    for name in ["metrics.csv", "metrics.json", "report.md", "report.html"] {
      let text = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)
      XCTAssertFalse(text.lowercased().contains("nan"), name)
    }
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("only negative cases for 'Fracture'"))
  }

  func testBadPredictionValuesNameFileAndRow() throws {
    let ref = try write(reference, "ref.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    for (value, shown) in [("nan", "'nan'"), ("", "a blank"), ("high", "'high'"), ("inf", "'inf'")] {
      let preds = try write("id,Pneumothorax\na,0.3\nb,\(value)\n", "p.csv", in: dir)
      XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(ref)"], findings: nil, out: out),
                             "\(preds):3: column 'Pneumothorax' of id 'b' holds \(shown), not a probability; re-run the prediction or remove that row")
    }
  }

  func testMissingColumnsListTheColumnsTheFileHas() throws {
    let preds = try write(predsA, "a.csv", in: dir)
    let ref = try write(reference, "ref.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(ref)"], findings: ["Atelectasis"], out: out),
                           "\(preds) has no column 'Atelectasis'; its columns are: id, path, Pneumothorax, Fracture")
    let noID = try write("case,Pneumothorax\na,0.2\n", "noid.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(noID)"], references: ["r=\(ref)"], findings: ["Pneumothorax"], out: out),
                           "\(noID) has no column 'id'; its columns are: case, Pneumothorax")
    let other = try write("id,Edema\na,1\n", "other.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(other)"], findings: nil, out: out),
                           "no finding column is shared by all prediction and reference files; name them with --findings. Columns: \(preds) (id, path, Pneumothorax, Fracture); \(other) (id, Edema)")
  }

  func testOtherBadInput() throws {
    let preds = try write(predsA, "a.csv", in: dir)
    let ref = try write(reference, "ref.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A"], references: ["r=\(ref)"], findings: nil, out: out),
                           "--predictions expects NAME=path (e.g. --predictions name=file.csv), got 'A'")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)", "A=\(preds)"], references: ["r=\(ref)"], findings: nil, out: out),
                           "--predictions name 'A' is given twice; give each file its own NAME")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: [], references: ["r=\(ref)"], findings: nil, out: out),
                           "give at least one --predictions NAME=file.csv")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(ref)"], findings: nil, rounds: -1, out: out),
                           "--bootstrap must be 0 (no CIs) or a positive number of rounds, got -1")
    let dup = try write("id,Pneumothorax\na,0.1\na,0.2\n", "dup.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(dup)"], references: ["r=\(ref)"], findings: nil, out: out),
                           "\(dup):3: id 'a' appears twice; keep one prediction per id")
    let badRef = try write("id,Pneumothorax\na,2\n", "badref.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(badRef)"], findings: ["Pneumothorax"], out: out),
                           "\(badRef):2: column 'Pneumothorax' holds '2'; expected 1, 0, -1, 1.0, 0.0, -1.0 or blank")
    let disjoint = try write("id,Pneumothorax\nzz,1\nyy,0\n", "disjoint.csv", in: dir)
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["A=\(preds)"], references: ["r=\(disjoint)"], findings: ["Pneumothorax"], out: out),
                           "predictions 'A' (\(preds)) share no id with reference 'r' (\(disjoint)) for 'Pneumothorax'; check that both use the same ids (e.g. SOPInstanceUID)")
  }

  func testHTMLEscapesNamesAndDrawsEveryPlot() throws {
    let name = "<script>alert('x')</script>&\""
    let out = dir.appendingPathComponent("out")
    _ = try Jobs.evaluate(predictions: ["\(name)=\(try write(predsA, "a.csv", in: dir))", "B=\(try write(predsB, "b.csv", in: dir))"],
                          references: ["r1=\(try write(reference, "ref.csv", in: dir))", "r2=\(dir.path)/ref.csv"], findings: ["Pneumothorax"],
                          rounds: 10, out: out)
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertFalse(html.contains("<script"))
    XCTAssertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"))
    // 2 heatmaps + 2 references x (ROC + PR + reliability diagram).
    XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 8)
    XCTAssertEqual(html.components(separatedBy: "class=\"cell\"").count - 1, 2 * 2 * 2)
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("\\<script\\>"))
  }

  func testCurveThinningKeepsEnds() {
    let points = (0...10_000).map { (Double($0) / 10_000, Double($0) / 10_000) }
    let thin = SVG.thin(points)
    XCTAssertLessThan(thin.count, 600)
    XCTAssertEqual(thin.first!.0, 0); XCTAssertEqual(thin.last!.0, 1)
  }
}
