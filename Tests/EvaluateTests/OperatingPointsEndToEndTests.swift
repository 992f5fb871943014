import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// `cxr evaluate` with tuning predictions, fixed thresholds and calibration bins, as users run it
/// (through `Jobs.evaluate`), and the new columns of the comparison table.
final class OperatingPointsEndToEndTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-operating-points") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  // Test set: positives a 0.9, b 0.8, e 0.55; negatives c 0.7, d 0.6, f 0.1.
  let preds = "id,Pneumothorax\na,0.9\nb,0.8\nc,0.7\nd,0.6\ne,0.55\nf,0.1\n"
  let reference = "id,Pneumothorax\na,1\nb,1\nc,0\nd,0\ne,1\nf,0\n"
  // Tuning set: P = N = 4. Youden's J (4·(tp − fp)) peaks first at 0.8; sensitivity >= 0.90 needs
  // all four positives (0.2); specificity >= 0.90 allows no negative (0.8).
  let tunePreds = "id,Pneumothorax\nt1,0.9\nt2,0.8\nt3,0.7\nt4,0.6\nt5,0.4\nt6,0.3\nt7,0.2\nt8,0.1\n"
  let tuneReference = "id,Pneumothorax\nt1,1\nt2,1\nt3,0\nt4,1\nt5,0\nt6,0\nt7,1\nt8,0\n"

  func testOperatingPointsCSVByHand() throws {
    let out = dir.appendingPathComponent("out")
    let r = try Jobs.evaluate(predictions: ["A=\(try write(preds, "a.csv", in: dir))"], references: ["chex=\(try write(reference, "ref.csv", in: dir))"],
                              findings: nil, rounds: 0, tunePredictions: ["A=\(try write(tunePreds, "tune_a.csv", in: dir))"],
                              tuneReference: try write(tuneReference, "tune_ref.csv", in: dir), thresholds: [0.5], out: out)
    XCTAssertEqual(r.tunedThresholds.map(\.threshold), [0.8, 0.2, 0.2, 0.8, 0.8])
    let at08 = "2,0,1,3,0.6666666666666666,,,1.0,,,1.0,,,0.75,,,0.8,,,6,3"  // tp fp fn tn, sens spec ppv npv f1
    let at05 = "3,2,0,1,1.0,,,0.3333333333333333,,,0.6,,,1.0,,,0.75,,,6,3"
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("operating_points.csv"), encoding: .utf8), """
      model,reference,finding,rule,chosen_on,threshold,tune_sensitivity,tune_specificity,tp,fp,fn,tn,sensitivity,sensitivity_ci_low,sensitivity_ci_high,specificity,specificity_ci_low,specificity_ci_high,ppv,ppv_ci_low,ppv_ci_high,npv,npv_ci_low,npv_ci_high,f1,f1_ci_low,f1_ci_high,n,n_pos
      A,chex,Pneumothorax,youden,tune,0.8,0.5,1.0,\(at08)
      A,chex,Pneumothorax,sensitivity>=0.90,tune,0.2,1.0,0.25,\(at05)
      A,chex,Pneumothorax,sensitivity>=0.95,tune,0.2,1.0,0.25,\(at05)
      A,chex,Pneumothorax,specificity>=0.90,tune,0.8,0.5,1.0,\(at08)
      A,chex,Pneumothorax,specificity>=0.95,tune,0.8,0.5,1.0,\(at08)
      A,chex,Pneumothorax,fixed,fixed,0.5,,,\(at05)
      A,chex,Pneumothorax,specificity>=0.90,test,0.8,,,\(at08)
      A,chex,Pneumothorax,specificity>=0.95,test,0.8,,,\(at08)

      """)
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("| A | Youden's J | tune | 0.8 | 0.667 | 1.000 | 1.000 | 0.750 | 0.800 | 2 | 0 | 1 | 3 |\n"), md)
    XCTAssertTrue(md.contains("picked on the tuning predictions against \(Markdown.escape(dir.path + "/tune_ref.csv")) ("), md)
    XCTAssertTrue(md.contains("| A | specificity ≥ 0.90 | test | 0.8 |"), md)
  }

  /// The operating points' CIs come from the AUROC bootstrap's own rounds: replaying
  /// `Bootstrap.draw` for each round gives the same interval, and a second model sharing the
  /// cases leaves the first's CIs as they were (one draw serves all models).
  func testOperatingPointCIsUseTheSameRoundsForEveryModel() throws {
    var rng = TestRandom(31)
    let n = 120
    let labels = (0..<n).map { _ in rng.uniform() < 0.3 }
    let a = labels.map { ($0 ? 0.3 : 0) + 0.7 * rng.uniform() }
    let b = labels.map { ($0 ? 0.1 : 0) + 0.9 * rng.uniform() }
    func csv(_ s: [Double]) -> String { "id,Fracture\n" + s.enumerated().map { "c\($0),\($1)" }.joined(separator: "\n") + "\n" }
    let ref = try write("id,Fracture\n" + labels.enumerated().map { "c\($0),\($1 ? 1 : 0)" }.joined(separator: "\n") + "\n", "ref.csv", in: dir)
    let pa = try write(csv(a), "a.csv", in: dir), pb = try write(csv(b), "b.csv", in: dir)
    let both = try Jobs.evaluate(predictions: ["A=\(pa)", "B=\(pb)"], references: ["r=\(ref)"], findings: nil, rounds: 150, seed: 9,
                                 thresholds: [0.5], out: dir.appendingPathComponent("both"))
    let alone = try Jobs.evaluate(predictions: ["A=\(pa)"], references: ["r=\(ref)"], findings: nil, rounds: 150, seed: 9,
                                  thresholds: [0.5], out: dir.appendingPathComponent("alone"))
    XCTAssertEqual(alone.operatingPoints, both.operatingPoints.filter { $0.model == "A" })
    XCTAssertEqual(alone.calibration, both.calibration.filter { $0.model == "A" })
    // Replay: sensitivity and specificity of A at 0.5 in each round, and its Brier score.
    let positives = labels.indices.filter { labels[$0] }.map { Int32($0) }
    var sens: [Double] = [], spec: [Double] = [], brier: [Double] = []
    for round in 0..<150 {
      var counts = [Int32](repeating: 0, count: n)
      counts.withUnsafeMutableBufferPointer { _ = Bootstrap.draw(into: $0, seed: 9, round: round, positives: positives) }
      let c = counts.withUnsafeBufferPointer { Confusion(predicted: a.map { $0 >= 0.5 }, truth: labels, weights: $0) }
      sens.append(c.sensitivity!); spec.append(c.specificity!)
      var s = 0.0
      for i in 0..<n { s += Double(counts[i]) * pow(a[i] - (labels[i] ? 1 : 0), 2) }
      brier.append(s / Double(n))
    }
    let row = try XCTUnwrap(both.operatingPoints.first { $0.model == "A" && $0.chosenOn == .fixed })
    let sensCI = try XCTUnwrap(percentileInterval(sens)), specCI = try XCTUnwrap(percentileInterval(spec))
    XCTAssertEqual(row.metric("sensitivity")?.ciLow, sensCI.low); XCTAssertEqual(row.metric("sensitivity")?.ciHigh, sensCI.high)
    XCTAssertEqual(row.metric("specificity")?.ciLow, specCI.low); XCTAssertEqual(row.metric("specificity")?.ciHigh, specCI.high)
    let brierRow = try XCTUnwrap(both.calibration.first { $0.model == "A" && $0.metric == "brier" })
    let brierCI = try XCTUnwrap(percentileInterval(brier))
    // The rounds sum (y − p)² in fixed point (RoundStatistics): equal to ~1e-14 here, not to the bit.
    XCTAssertEqual(brierRow.ciLow!, brierCI.low, accuracy: 1e-12); XCTAssertEqual(brierRow.ciHigh!, brierCI.high, accuracy: 1e-12)
    for r in both.operatingPoints {
      for e in r.metrics {
        guard let v = e.value, let lo = e.ciLow, let hi = e.ciHigh else { continue }
        XCTAssertLessThanOrEqual(lo, hi)
        XCTAssertTrue(v >= lo - 0.2 && v <= hi + 0.2, "\(r.rule) \(v) [\(lo), \(hi)]")
      }
    }
    // Calibration rows state their bins; reliability.csv lists the non-empty bins of both strategies.
    XCTAssertEqual(both.calibration.filter { $0.model == "A" }.map { "\($0.metric) \($0.strategy?.rawValue ?? "-") \($0.bins.map(String.init) ?? "-")" },
                   ["brier - -", "ece uniform 10", "ece quantile 10"])
    let reliability = try CSVTable.read(dir.appendingPathComponent("both/reliability.csv"))
    XCTAssertEqual(reliability.header, ["model", "reference", "finding", "strategy", "bins", "bin", "lower", "upper", "count", "mean_predicted", "fraction_positive"])
    XCTAssertEqual(reliability.rows.filter { $0[0] == "A" && $0[3] == "quantile" }.map { Int($0[8])! }.reduce(0, +), n)
    XCTAssertEqual(reliability.rows.filter { $0[0] == "A" && $0[3] == "quantile" }.count, 10)
  }

  /// Holm within each reference and finding equals statsmodels on that family's DeLong p-values;
  /// the t-test equals scipy's ttest_rel on the paired bootstrap rounds' AUROCs.
  func testHolmAndTTestColumns() throws {
    var rng = TestRandom(8)
    let n = 150
    let labels = (0..<n).map { _ in rng.uniform() < 0.35 }
    let shifts = [0.35, 0.3, 0.1]
    let scores = shifts.map { s in labels.map { ($0 ? s : 0) + (1 - s) * rng.uniform() } }
    let header = "id,Pneumothorax,Fracture\n"
    let ref = try write(header + labels.enumerated().map { "c\($0),\($1 ? 1 : 0),\($0 % 3 == 0 ? 1 : 0)" }.joined(separator: "\n") + "\n", "ref.csv", in: dir)
    let files = try scores.enumerated().map { m, s in
      try write(header + s.enumerated().map { "c\($0),\($1),\(s[($0 + 7) % n])" }.joined(separator: "\n") + "\n", "m\(m).csv", in: dir)
    }
    let out = dir.appendingPathComponent("out")
    let r = try Jobs.evaluate(predictions: files.enumerated().map { "M\($0)=\($1)" }, references: ["r=\(ref)"], findings: nil,
                              rounds: 200, seed: 3, out: out)
    XCTAssertEqual(r.comparisons.count, 6)
    let table = try CSVTable.read(out.appendingPathComponent("comparisons.csv"))
    XCTAssertEqual(table.header, ["reference", "finding", "model_a", "model_b", "auroc_a", "auroc_b", "difference", "ci_low", "ci_high",
                                  "delong_z", "delong_p", "n", "n_pos", "delong_p_holm", "ttest_t", "ttest_p", "ttest_p_holm", "holm_family_size"])
    XCTAssertEqual(Set(table.rows.map { $0[17] }), ["3"])
    // The rounds the comparison used: one bootstrap of all three models on the shared cases.
    let labelsPTX = labels
    let rankings = scores.map { Ranking(scores: $0, labels: labelsPTX) }
    let boots = Bootstrap.areas(labels: labelsPTX, rankings: rankings, rounds: 200, seed: 3)
    let ptx = r.comparisons.filter { $0.finding == "Pneumothorax" }
    let pairs = [(0, 1), (0, 2), (1, 2)]
    let input: [String: Any] = [
      "families": ["Pneumothorax", "Fracture"].map { f in r.comparisons.filter { $0.finding == f }.map(\.delongP) },
      "tp": ptx.map { $0.ttestP! },
      "pairs": pairs.map { [boots[$0.0].map(\.auroc), boots[$0.1].map(\.auroc)] },
    ]
    let ref2 = try pythonExact("""
      from statsmodels.stats.multitest import multipletests
      from scipy.stats import ttest_rel
      d = json.load(open(sys.argv[1]))
      res = {'holm': [list(multipletests(p, method='holm')[1]) for p in d['families']],
             'tholm': list(multipletests(d['tp'], method='holm')[1]),
             't': [[ttest_rel(a, b).statistic, ttest_rel(a, b).pvalue] for a, b in d['pairs']]}
      print(json.dumps(exact(res)))
      """, input: input) as! [String: Any]
    let holm = ref2["holm"] as! [[Double]]
    for (k, f) in ["Pneumothorax", "Fracture"].enumerated() {
      XCTAssertEqual(r.comparisons.filter { $0.finding == f }.map { $0.delongPHolm! }, holm[k], f)
    }
    XCTAssertEqual(ptx.map { $0.ttestPHolm! }, ref2["tholm"] as! [Double])
    let t = ref2["t"] as! [[Double]]
    for (c, ((a, b), expected)) in zip(ptx, zip(pairs, t)) {
      XCTAssertEqual([c.modelA, c.modelB], ["M\(a)", "M\(b)"])
      XCTAssertEqual(c.ttestT!, expected[0], accuracy: abs(expected[0]) * 1e-12)
      XCTAssertEqual(c.ttestP!, expected[1], accuracy: expected[1] * 1e-9 + 1e-300)
    }
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("| DeLong p | DeLong p (Holm) | t-test p (study's method) | t-test p (Holm) |"), md)
    XCTAssertTrue(md.contains("Holm's adjustment is made within each reference and finding (the family: the pairwise comparisons of its models)"))
    XCTAssertTrue(md.contains("DeLong's test is the better-founded one."))
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
    XCTAssertEqual(json["holm_family"] as? String, EvaluationResult.holmFamily)
    XCTAssertEqual(((json["comparisons"] as! [[String: Any]])[0]["holm_family_size"] as? Int), 3)
    // Reliability diagrams: one per finding and reference, a marker per non-empty uniform bin.
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertEqual(html.components(separatedBy: "aria-label=\"Reliability: ").count - 1, 2)
    XCTAssertEqual(html.components(separatedBy: "<circle class=\"bin\"").count - 1, r.reliability.filter { $0.strategy == .uniform }.count)
    XCTAssertTrue(html.contains("<th>t-test p (study's method)</th>"))
  }

  func testCIsPrintWithProperSigns() throws {
    XCTAssertEqual(Format.interval(0.712, 0.801), "(0.712–0.801)")
    XCTAssertEqual(Format.interval(-0.356, -0.204), "(−0.356–−0.204)")
    XCTAssertEqual(Format.interval(-0.05, 0.12), "[−0.050, 0.120]")
    XCTAssertEqual(Format.interval(-0.0004, 0.2), "(0.000–0.200)")  // rounds to an unsigned zero
    XCTAssertEqual(Format.interval(-0.3, -0.0001), "[−0.300, 0.000]")
    XCTAssertEqual(Format.interval(nil, 0.2), "")
    XCTAssertEqual(Format.short(-0.1234), "−0.123")
    XCTAssertEqual(Format.short(-0.0004), "0.000")
    XCTAssertEqual(Format.short(-2.5, decimals: 2), "−2.50")
    XCTAssertEqual(Format.short(nil), "—")
    // In the reports: the row of a comparison whose CI lies below zero, and one across zero.
    var result = EvaluationResult(models: ["A", "B"], references: ["r"], findings: ["F"], rows: [], comparisons: [], curves: [], notes: [],
                                  rounds: 10, seed: 0)
    func comparison(_ lo: Double, _ hi: Double) -> Comparison {
      Comparison(reference: "r", finding: "F", modelA: "A", modelB: "B", aurocA: 0.6, aurocB: 0.88, difference: -0.28, ciLow: lo, ciHigh: hi,
                 delongZ: -3.14159, delongP: 0.0004, n: 50, nPos: 20, delongPHolm: 0.0008, ttestT: -41, ttestP: 2e-80, ttestPHolm: 4e-80,
                 holmFamilySize: 2)
    }
    result.comparisons = [comparison(-0.356, -0.204), comparison(-0.05, 0.12)]
    XCTAssertTrue(result.markdown.contains("| r | F | A | B | −0.280 | (−0.356–−0.204) | 4.0e-04 | 8.0e-04 | 2.0e-80 | 4.0e-80 |\n"), result.markdown)
    XCTAssertTrue(result.markdown.contains("| r | F | A | B | −0.280 | [−0.050, 0.120] | 4.0e-04 | 8.0e-04 | 2.0e-80 | 4.0e-80 |\n"))
    XCTAssertTrue(result.html.contains("<td>−0.280</td><td>(−0.356–−0.204)</td><td>−3.14</td><td>4.0e-04</td><td>8.0e-04</td><td>2.0e-80</td><td>4.0e-80</td>"), result.html)
    XCTAssertTrue(result.html.contains("<td>[−0.050, 0.120]</td>"))
    XCTAssertFalse(result.markdown.contains("-0.") || result.html.contains("(-0.") || result.html.contains(">-0."))
  }

  func testBadInputNamesTheOptionOrFile() throws {
    let a = try write(preds, "a.csv", in: dir), b = try write(preds, "b.csv", in: dir)
    let ref = try write(reference, "ref.csv", in: dir)
    let tuneA = try write(tunePreds, "tune_a.csv", in: dir), tuneRef = try write(tuneReference, "tune_ref.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    func run(tune: [String] = [], tuneReference: String? = nil, thresholds: [Double] = [], bins: Int = 10) throws {
      try Jobs.evaluate(predictions: ["A=\(a)", "B=\(b)"], references: ["r=\(ref)"], findings: nil, rounds: 0, tunePredictions: tune,
                        tuneReference: tuneReference, thresholds: thresholds, calibrationBins: bins, out: out)
    }
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)"], tuneReference: tuneRef),
                           "--tune-predictions has no file for model 'B' (\(b)); give --tune-predictions B=tune_predictions.csv for every model (the tuning split's predictions of the same weights), or no --tune-predictions at all")
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)", "B=\(tuneA)", "C=\(tuneA)"], tuneReference: tuneRef),
                           "--tune-predictions C=\(tuneA) names no model; the models (--predictions) are: A, B")
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)", "A=\(tuneA)"], tuneReference: tuneRef),
                           "--tune-predictions name 'A' is given twice; give each file its own NAME")
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)", "B=\(tuneA)"]),
                           "--tune-predictions A=\(tuneA) needs --tune-reference labels.csv: the tuning-set labels the operating points are chosen on")
    XCTAssertThrowsMessage(try run(tuneReference: tuneRef),
                           "--tune-reference \(tuneRef) needs --tune-predictions NAME=preds.csv for every model: the tuning-set predictions of the same weights")
    XCTAssertThrowsMessage(try run(tune: ["A"], tuneReference: tuneRef),
                           "--tune-predictions expects NAME=path (e.g. --tune-predictions name=file.csv), got 'A'")
    for t in [1.5, -0.1, Double.nan] {
      XCTAssertThrowsMessage(try run(thresholds: [0.5, t]),
                             "--threshold must be a probability in [0, 1], got \(t); give one --threshold per fixed threshold, e.g. --threshold 0.5")
    }
    for bins in [1, 0, -3] {
      XCTAssertThrowsMessage(try run(bins: bins), "--calibration-bins must be at least 2 (the default is 10), got \(bins)")
    }
    let noColumn = try write("id,Fracture\nt1,0.2\n", "tune_nocol.csv", in: dir)
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)", "B=\(noColumn)"], tuneReference: tuneRef),
                           "\(noColumn) has no column 'Pneumothorax'; its columns are: id, Fracture")
    let disjoint = try write("id,Pneumothorax\nzz,0.3\n", "tune_disjoint.csv", in: dir)
    XCTAssertThrowsMessage(try run(tune: ["A=\(tuneA)", "B=\(disjoint)"], tuneReference: tuneRef),
                           "tuning predictions 'B' (\(disjoint)) share no id with --tune-reference \(tuneRef) for 'Pneumothorax'; check that both list the tuning split's ids")
    XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing is written on bad input")
  }

  func testScoresThatAreNotProbabilitiesGetANoteNotCalibration() throws {
    let logits = try write("id,Pneumothorax\na,2.2\nb,1.4\nc,0.8\nd,-0.3\ne,0.5\nf,-2\n", "logits.csv", in: dir)
    let r = try Jobs.evaluate(predictions: ["L=\(logits)"], references: ["r=\(try write(reference, "ref.csv", in: dir))"], findings: nil,
                              rounds: 20, out: dir.appendingPathComponent("out"))
    XCTAssertEqual(r.notes, ["scores of 'L' for 'Pneumothorax' run from -2.0 to 2.2, not probabilities in [0, 1]: calibration against 'r' was not computed"])
    XCTAssertTrue(r.calibration.isEmpty && r.reliability.isEmpty)
    XCTAssertEqual(r.operatingPoints.count, 2)  // the two read off the test ROC
    XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("out/calibration.csv"), encoding: .utf8),
                   "model,reference,finding,metric,strategy,bins,value,ci_low,ci_high,n,n_pos\n")
  }

  func testTuningNotesAndOneClassTuning() throws {
    let tune = try write(tunePreds + "extra,0.5\n", "tune.csv", in: dir)
    let tuneRef = try write("id,Pneumothorax\nt1,0\nt2,0\nt3,0\nmissing,0\n", "tune_ref.csv", in: dir)
    let r = try Jobs.evaluate(predictions: ["A=\(try write(preds, "a.csv", in: dir))"], references: ["r=\(try write(reference, "ref.csv", in: dir))"],
                              findings: nil, rounds: 0, tunePredictions: ["A=\(tune)"], tuneReference: tuneRef, out: dir.appendingPathComponent("out"))
    XCTAssertEqual(r.notes, [
      "6 id(s) of tuning predictions 'A' (\(tune)) are not in the tuning reference (\(tuneRef)) and were left out, e.g. 't4', 't5', 't6', 't7', 't8', ...",
      "1 id(s) of the tuning reference (\(tuneRef)) have no tuning prediction in 'A' (\(tune)) and were left out, e.g. 'missing'",
      "the tuning reference has only negative cases for 'Pneumothorax' among the 3 case(s) it shares with 'A': no threshold was chosen there",
    ])
    XCTAssertEqual(r.operatingPoints.map(\.chosenOn), [.test, .test])
  }
}
