import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// The ROC and PR curves' pointwise bootstrap bands: the grid read in the bootstrap's fused pass
/// against scikit-learn's own cumulative counts (`_binary_clf_curve`) with the same rounds' case
/// weights, interpolated with numpy.
final class CurveBandTests: XCTestCase {
  /// Scores on a 0.02 grid (so tie groups of both classes are common), labels at 30 %.
  func cases(_ n: Int, seed: UInt64) -> (scores: [Double], labels: [Bool]) {
    var rng = TestRandom(seed)
    var scores: [Double] = [], labels: [Bool] = []
    for _ in 0..<n {
      let y = rng.uniform() < 0.3
      let s = min(1, max(0, (y ? 0.25 : 0) + rng.uniform() * 0.75))
      scores.append((s * 50).rounded() / 50); labels.append(y)
    }
    return (scores, labels)
  }

  func testBandsEqualScikitLearnCurvesOverTheSameRounds() throws {
    let (scores, labels) = cases(300, seed: 11)
    let ids = scores.indices.map { "c\($0)" }
    let preds = Predictions(name: "A", source: "a.csv", ids: ids, scores: ["Pneumothorax": scores])
    var values: [String: [String: Double?]] = [:]
    for (i, id) in ids.enumerated() { values[id] = ["Pneumothorax": labels[i] ? 1 : 0] }
    let ref = try ReferenceLabels(name: "truth", source: "test", values: values, findings: ["Pneumothorax"])
    let rounds = 40, seed: UInt64 = 5
    var options = EvaluationOptions()
    options.curveBandPoints = 21
    let result = try Evaluation.run(predictions: [preds], references: [ref], findings: ["Pneumothorax"], rounds: rounds, seed: seed,
                                    options: options)
    let set = try XCTUnwrap(result.curves.first)
    let roc = try XCTUnwrap(set.rocBand), pr = try XCTUnwrap(set.prBand)
    XCTAssertEqual(roc.x, (0...20).map { Double($0) / 20 })

    // The same rounds' case counts, as the evaluation drew them: over the cases in the
    // reference's row order.
    let order = ref.ids.map { Int($0.dropFirst())! }
    let rowScores = order.map { scores[$0] }, rowLabels = order.map { labels[$0] }
    let positives = rowLabels.indices.filter { rowLabels[$0] }.map { Int32($0) }
    var weights: [[Int]] = []
    var counts = [Int32](repeating: 0, count: scores.count)
    for r in 0..<rounds {
      counts.withUnsafeMutableBufferPointer { _ = Bootstrap.draw(into: $0, seed: seed, round: r, positives: positives) }
      weights.append(counts.map { Int($0) })
    }
    let script = """
      import json, sys
      import numpy as np
      from sklearn.metrics import roc_curve, precision_recall_curve
      d = json.load(open(sys.argv[1]))
      y = np.array(d['labels'], dtype=int); s = np.array(d['scores'])
      grid = np.linspace(0, 1, d['points'])
      def curves(w):
          fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
          roc = np.interp(grid, fpr, tpr)   # on a vertical stretch: its top
          prec, rec, _ = precision_recall_curve(y, s, sample_weight=w, drop_intermediate=False)
          prec, rec = prec[:-1][::-1], rec[:-1][::-1]   # descending score, without the appended (recall 0, precision 1)
          pr = [prec[np.argmax((rec >= r) & (rec > 0))] for r in grid]
          return roc, np.array(pr)
      point = curves(None)
      rounds = [curves(np.array(w, dtype=float)) for w in d['weights']]
      out = {}
      for k, name in enumerate(['roc', 'pr']):
          values = np.array([r[k] for r in rounds])
          out[name] = {'estimate': point[k].tolist(), 'low': np.percentile(values, 2.5, axis=0).tolist(),
                       'high': np.percentile(values, 97.5, axis=0).tolist()}
      print(json.dumps(exact(out)))
      """
    let ref_ = try XCTUnwrap(try pythonExact(script, input: ["labels": rowLabels, "scores": rowScores, "points": 21, "weights": weights]) as? [String: Any])
    for (name, band) in [("roc", roc), ("pr", pr)] {
      let want = try XCTUnwrap(ref_[name] as? [String: [Double]])
      for (key, got) in [("estimate", band.estimate), ("low", band.low), ("high", band.high)] {
        let expected = try XCTUnwrap(want[key])
        XCTAssertEqual(got.count, expected.count)
        for (g, e) in zip(got, expected) { XCTAssertEqual(g, e, accuracy: 1e-12, "\(name) \(key): \(got) vs \(expected)") }
      }
    }
    // The band holds the curve's own value almost everywhere, and has width.
    let inside = roc.x.indices.filter { roc.low[$0] <= roc.estimate[$0] + 1e-12 && roc.estimate[$0] <= roc.high[$0] + 1e-12 }.count
    XCTAssertGreaterThanOrEqual(inside, 19)
    XCTAssertGreaterThan(roc.high[4] - roc.low[4], 0.02)

    // The CSV holds every grid point of both curves, full precision.
    let table = try CSVTable.parse(result.curveBandsCSV, source: "curve_bands.csv")
    XCTAssertEqual(table.header, ["model", "reference", "finding", "curve", "x", "estimate", "ci_low", "ci_high"])
    XCTAssertEqual(table.count, 42)
    XCTAssertEqual(table.rows[4], ["A", "truth", "Pneumothorax", "roc", "0.2", "\(roc.estimate[4])", "\(roc.low[4])", "\(roc.high[4])"])
  }

  func testNoBandsWhenTurnedOff() throws {
    let (scores, labels) = cases(50, seed: 3)
    let ids = scores.indices.map { "c\($0)" }
    var values: [String: [String: Double?]] = [:]
    for (i, id) in ids.enumerated() { values[id] = ["F": labels[i] ? 1 : 0] }
    var options = EvaluationOptions()
    options.curveBandPoints = 0
    let r = try Evaluation.run(predictions: [Predictions(name: "A", source: "a", ids: ids, scores: ["F": scores])],
                               references: [try ReferenceLabels(name: "t", source: "t", values: values, findings: ["F"])],
                               findings: ["F"], rounds: 20, seed: 1, options: options)
    XCTAssertNil(r.curves[0].rocBand)
    options.curveBandPoints = 1
    XCTAssertThrowsMessage(try Evaluation.run(predictions: [Predictions(name: "A", source: "a", ids: ids, scores: ["F": scores])],
                                              references: [try ReferenceLabels(name: "t", source: "t", values: values, findings: ["F"])],
                                              findings: ["F"], rounds: 20, seed: 1, options: options),
                           "--curve-band-points must be 0 (no bands) or at least 2 (both ends of the curve), got 1")
    XCTAssertEqual(r.curveBandsCSV, "model,reference,finding,curve,x,estimate,ci_low,ci_high\n")
  }
}
