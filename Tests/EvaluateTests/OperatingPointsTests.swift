import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// Thresholds, confusion matrices and calibration against scikit-learn on random, tie-heavy and
/// edge-hitting scores, with and without case weights (a bootstrap round is a reweighting).
final class OperatingPointsTests: XCTestCase {
  struct Case { var name: String; var scores: [Double]; var labels: [Bool]; var weights: [Int32] }

  func makeCases() -> [Case] {
    var rng = TestRandom(2024)
    var cases: [Case] = []
    func weights(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % 4) } }
    for n in [40, 1500] {
      let labels = (0..<n).map { _ in rng.uniform() < 0.25 }
      let scores = labels.map { l in min(1, max(0, (l ? 0.25 : 0) + 0.75 * rng.uniform())) }
      cases.append(Case(name: "random \(n)", scores: scores, labels: labels, weights: weights(n)))
    }
    // Scores exactly on the grid k * 0.1 (the uniform bin edges) and heavily tied.
    let n = 700
    let labels = (0..<n).map { _ in rng.uniform() < 0.4 }
    let grid = labels.map { l in Double(min(10, Int(((l ? 0.3 : 0) + rng.uniform()) * 8))) * 0.1 }
    cases.append(Case(name: "grid", scores: grid, labels: labels, weights: weights(n)))
    cases.append(Case(name: "tiny", scores: [0.1, 0.4, 0.35, 0.8], labels: [false, true, false, true], weights: [1, 2, 0, 1]))
    return cases
  }

  /// The tuning ROC, the rules' thresholds and the test confusion matrices at them, against
  /// `roc_curve(drop_intermediate=False)` and `confusion_matrix` (and precision/recall/F1 scores).
  func testThresholdsAndConfusionMatricesEqualScikitLearn() throws {
    let cases = makeCases()
    // Tune on case k, test on case k+1 (wrapping): the thresholds travel to other scores.
    var input: [[String: Any]] = []
    for (k, tune) in cases.enumerated() {
      let test = cases[(k + 1) % cases.count]
      input.append(["tune_s": tune.scores, "tune_y": tune.labels.map { $0 ? 1 : 0 },
                    "test_s": test.scores, "test_y": test.labels.map { $0 ? 1 : 0 }, "w": test.weights.map { Int($0) }])
    }
    let ref = try pythonExact("""
      import numpy as np
      from sklearn.metrics import roc_curve, confusion_matrix, recall_score, precision_score, f1_score
      out = []
      for c in json.load(open(sys.argv[1])):
          y, s = np.array(c['tune_y']), np.array(c['tune_s'])
          fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
          P, N = int(y.sum()), int((1 - y).sum())
          tps, fps = np.rint(tpr * P).astype(np.int64), np.rint(fpr * N).astype(np.int64)
          picks = [int(np.argmax(tps * N - fps * P))]
          for t in (0.90, 0.95):
              picks.append(int(np.flatnonzero(tps / P >= t)[0]))
          for t in (0.90, 0.95):
              picks.append(int(np.flatnonzero((N - fps) / N >= t)[-1]))
          chosen = [float(thr[i]) for i in picks] + [0.5, 0.0, 1.0]
          ty, ts, w = np.array(c['test_y']), np.array(c['test_s']), np.array(c['w'])
          cms, wcms, scores = [], [], []
          for t in chosen:
              pred = (ts >= t).astype(int)
              cms.append(list(map(int, confusion_matrix(ty, pred, labels=[0, 1]).ravel())))
              wcms.append(list(map(int, confusion_matrix(ty, pred, labels=[0, 1], sample_weight=w).ravel())))
              v = [recall_score(ty, pred, zero_division=np.nan), precision_score(ty, pred, zero_division=np.nan),
                   f1_score(ty, pred, zero_division=np.nan)]
              scores.append(v)
          out.append({'thr': thr, 'tps': tps, 'fps': fps, 'chosen': chosen, 'cms': cms, 'wcms': wcms, 'scores': scores})
      print(json.dumps(exact(out)))
      """, input: input) as! [[String: Any]]
    var thresholdsChecked = 0, matricesChecked = 0
    for (k, tune) in cases.enumerated() {
      let r = ref[k]
      let test = cases[(k + 1) % cases.count]
      let roc = ROCPoints(scores: tune.scores, labels: tune.labels)
      XCTAssertEqual(roc.thresholds, r["thr"] as! [Double], tune.name)
      XCTAssertEqual(roc.tp, r["tps"] as! [Int], tune.name)
      XCTAssertEqual(roc.fp, r["fps"] as! [Int], tune.name)
      let chosen = try ThresholdRule.tuned.map { rule in roc.thresholds[try XCTUnwrap(roc.choose(rule))] } + [0.5, 0, 1]
      XCTAssertEqual(chosen, r["chosen"] as! [Double], tune.name)
      thresholdsChecked += chosen.count

      let scored = ScoredCases(scores: test.scores, labels: test.labels)
      let cuts = chosen.map { scored.cut(atThreshold: $0) }
      let order = cuts.indices.sorted { cuts[$0] < cuts[$1] }
      let plain = scored.confusions(cuts: order.map { cuts[$0] }, specificityTargets: [], weights: nil).atCuts
      let weighted = test.weights.withUnsafeBufferPointer {
        scored.confusions(cuts: order.map { cuts[$0] }, specificityTargets: [], weights: $0).atCuts
      }
      let cms = r["cms"] as! [[Int]], wcms = r["wcms"] as! [[Int]], scores = r["scores"] as! [[Double]]
      for (place, j) in order.enumerated() {
        let c = plain[place], w = weighted[place]
        XCTAssertEqual([c.tn, c.fp, c.fn, c.tp], cms[j], "\(tune.name) -> \(test.name) at \(chosen[j])")
        XCTAssertEqual([w.tn, w.fp, w.fn, w.tp], wcms[j], "weighted \(tune.name) -> \(test.name) at \(chosen[j])")
        for (mine, theirs) in zip([c.sensitivity, c.ppv, c.f1], scores[j]) {
          if theirs.isNaN { XCTAssertNil(mine) } else { XCTAssertEqual(try XCTUnwrap(mine), theirs, accuracy: 1e-15) }
        }
        matricesChecked += 2
      }
    }
    XCTAssertEqual(thresholdsChecked, 32)
    XCTAssertEqual(matricesChecked, 64)
  }

  /// Sensitivity at fixed specificity off the test ROC: the last roc_curve point with specificity
  /// >= the target, with and without weights (sklearn sees the weights as repeated rows).
  func testSensitivityAtSpecificityOffTheTestROC() throws {
    let cases = makeCases()
    let ref = try pythonExact("""
      import numpy as np
      from sklearn.metrics import roc_curve
      out = []
      for c in json.load(open(sys.argv[1])):
          row = []
          for w in (np.ones(len(c['s']), dtype=int), np.array(c['w'])):
              y, s = np.repeat(np.array(c['y']), w), np.repeat(np.array(c['s']), w)
              fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
              P, N = int(y.sum()), int((1 - y).sum())
              tps, fps = np.rint(tpr * P).astype(np.int64), np.rint(fpr * N).astype(np.int64)
              for t in (0.90, 0.95, 1.0):
                  i = int(np.flatnonzero((N - fps) / N >= t)[-1])
                  row.append([tps[i], fps[i], thr[i]])
          out.append(row)
      print(json.dumps(exact(out)))
      """, input: cases.map { ["s": $0.scores, "y": $0.labels.map { $0 ? 1 : 0 }, "w": $0.weights.map { Int($0) }] }) as! [[[Any]]]
    for (c, r) in zip(cases, ref) {
      let scored = ScoredCases(scores: c.scores, labels: c.labels)
      let plain = scored.confusions(cuts: [], specificityTargets: [0.90, 0.95, 1.0], weights: nil).atTargets
      let weighted = c.weights.withUnsafeBufferPointer { scored.confusions(cuts: [], specificityTargets: [0.90, 0.95, 1.0], weights: $0).atTargets }
      for (k, at) in (plain + weighted).enumerated() {
        XCTAssertEqual(at.confusion.tp, r[k][0] as? Int, "\(c.name) #\(k)")
        XCTAssertEqual(at.confusion.fp, r[k][1] as? Int, "\(c.name) #\(k)")
        if k < 3 {  // the threshold is the point estimate's (weights never change which scores exist)
          XCTAssertEqual(scored.threshold(forCut: at.cut), r[k][2] as? Double, "\(c.name) #\(k)")
        }
      }
    }
  }

  /// Brier score, reliability bins (uniform and quantile) and ECE against `brier_score_loss` and
  /// `calibration_curve`; the weighted forms against the same on repeated rows.
  func testCalibrationEqualsScikitLearn() throws {
    let cases = makeCases()
    let binCounts = [2, 5, 10, 15]
    let ref = try pythonExact("""
      import numpy as np
      from sklearn.metrics import brier_score_loss
      from sklearn.calibration import calibration_curve
      out = []
      for c in json.load(open(sys.argv[1])):
          res = {}
          for tag, w in (('plain', np.ones(len(c['s']), dtype=int)), ('weighted', np.array(c['w']))):
              y, s = np.repeat(np.array(c['y']), w), np.repeat(np.array(c['s']), w)
              res[tag] = {'brier': float(brier_score_loss(y, s))}
              for nb in c['bins']:
                  for strategy in ('uniform', 'quantile'):
                      true, pred = calibration_curve(y, s, n_bins=nb, strategy=strategy)
                      edges = np.linspace(0, 1, nb + 1) if strategy == 'uniform' else np.percentile(s, np.linspace(0, 1, nb + 1) * 100)
                      counts = np.bincount(np.searchsorted(edges[1:-1], s), minlength=nb)
                      nz = counts[counts > 0]
                      res[tag]['%s %d' % (strategy, nb)] = {
                          'true': true, 'pred': pred, 'edges': edges, 'bins': np.flatnonzero(counts), 'counts': nz,
                          'ece': np.sum(nz / len(s) * np.abs(true - pred))}
          out.append(res)
      print(json.dumps(exact(out)))
      """, input: cases.map { ["s": $0.scores, "y": $0.labels.map { $0 ? 1 : 0 }, "w": $0.weights.map { Int($0) }, "bins": binCounts] })
      as! [[String: [String: Any]]]
    var binsChecked = 0
    for (c, r) in zip(cases, ref) {
      let cal = CalibrationCases(scores: c.scores, labels: c.labels)
      XCTAssertEqual(cal.brier(weights: nil), r["plain"]!["brier"] as! Double, accuracy: 1e-14, c.name)
      XCTAssertEqual(c.weights.withUnsafeBufferPointer { cal.brier(weights: $0) }, r["weighted"]!["brier"] as! Double, accuracy: 1e-14, c.name)
      for bins in binCounts {
        for strategy in BinStrategy.allCases {
          let key = "\(strategy.rawValue) \(bins)"
          let plain = r["plain"]![key] as! [String: Any], weighted = r["weighted"]![key] as! [String: Any]
          // The reliability diagram: the same non-empty bins, counts, edges, observed and predicted.
          let diagram = cal.reliability(strategy, bins: bins)
          XCTAssertEqual(diagram.map { $0.bin }, plain["bins"] as! [Int], "\(c.name) \(key)")
          XCTAssertEqual(diagram.map { $0.count }, plain["counts"] as! [Int], "\(c.name) \(key)")
          let edges = plain["edges"] as! [Double]
          XCTAssertEqual(diagram.map { $0.lower }, diagram.map { edges[$0.bin] }, "\(c.name) \(key)")
          XCTAssertEqual(diagram.map { $0.upper }, diagram.map { edges[$0.bin + 1] }, "\(c.name) \(key)")
          for (b, (t, p)) in zip(diagram, zip(plain["true"] as! [Double], plain["pred"] as! [Double])) {
            XCTAssertEqual(b.fractionPositive, t, accuracy: 1e-12, "\(c.name) \(key)")
            XCTAssertEqual(b.meanPredicted, p, accuracy: 1e-12, "\(c.name) \(key)")
            binsChecked += 1
          }
          if strategy == .quantile {
            XCTAssertEqual(cal.quantileEdges(bins: bins, weights: nil), edges, "\(c.name) \(key)")
            XCTAssertEqual(c.weights.withUnsafeBufferPointer { cal.quantileEdges(bins: bins, weights: $0) }, weighted["edges"] as! [Double],
                           "weighted \(c.name) \(key)")
          }
          XCTAssertEqual(cal.ece(strategy, bins: bins, weights: nil), plain["ece"] as! Double, accuracy: 1e-12, "\(c.name) \(key)")
          XCTAssertEqual(c.weights.withUnsafeBufferPointer { cal.ece(strategy, bins: bins, weights: $0) }, weighted["ece"] as! Double,
                         accuracy: 1e-12, "weighted \(c.name) \(key)")
        }
      }
    }
    XCTAssertGreaterThan(binsChecked, 150)
  }

  /// The bootstrap's fused pass gives what the one-statistic-at-a-time code (checked against
  /// scikit-learn above) gives, on every case and weighting, unweighted included; its equal-mass
  /// bins are the unweighted scores' (every round bins alike).
  func testFusedRoundPassEqualsTheReferenceCode() {
    for c in makeCases() {
      let ranking = Ranking(scores: c.scores, labels: c.labels)
      let scored = ScoredCases(ranking: ranking, scores: c.scores, labels: c.labels)
      let cal = CalibrationCases(scores: c.scores, labels: c.labels)
      let thresholds = [0.9, 0.5, 0.3, 0.0, 1.0, .infinity, 0.35]
      let cuts = thresholds.map { scored.cut(atThreshold: $0) }
      let targets = [0.9, 0.95, 0.5, 1.0]
      for bins in [2, 7, 10] {
        let pass = RoundStatistics(scored: scored, cuts: cuts, targets: targets, bins: bins)
        var scratch = pass.makeScratch()
        let testEdges = cal.quantileEdges(bins: bins, weights: nil)
        for weights in [c.weights, [Int32](repeating: 1, count: c.scores.count)] {
          var fused = [Double](repeating: 0, count: pass.width)
          let total = weights.reduce(0) { $0 + Int($1) }
          let totalPos = c.labels.indices.filter { c.labels[$0] }.reduce(0) { $0 + Int(weights[$1]) }
          let areas = weights.withUnsafeBufferPointer { w in
            fused.withUnsafeMutableBufferPointer {
              pass.areas(ranking, weights: w, totalPos: totalPos, totalNeg: total - totalPos, scratch: &scratch, into: $0)
            }
          }
          // The areas are Ranking's to the bit: the AUROC bootstrap is unchanged by riding along.
          XCTAssertEqual(areas, weights.withUnsafeBufferPointer { ranking.areas(weights: $0) }, c.name)
          let expected: [Double] = weights.withUnsafeBufferPointer { w in
            let r = scored.confusions(cuts: cuts.sorted(), specificityTargets: targets, weights: w)
            let atCuts = cuts.map { cut in r.atCuts[cuts.sorted().firstIndex(of: cut)!] }
            return (atCuts + r.atTargets.map(\.confusion)).flatMap { OperatingPoints.metrics($0).map { $0 ?? .nan } }
              + [cal.brier(weights: w), cal.ece(.uniform, bins: bins, weights: w), cal.ece(edges: testEdges, weights: w)]
          }
          XCTAssertEqual(fused.count, expected.count)
          let k = fused.count - 3
          for j in 0..<k {
            XCTAssertTrue(fused[j] == expected[j] || (fused[j].isNaN && expected[j].isNaN), "\(c.name) bins \(bins) #\(j): \(fused[j]) vs \(expected[j])")
          }
          for j in k..<fused.count { XCTAssertEqual(fused[j], expected[j], accuracy: 1e-12, "\(c.name) bins \(bins) #\(j)") }
        }
      }
      let noCalibration = RoundStatistics(scored: scored, cuts: cuts, targets: targets, bins: nil)
      XCTAssertEqual(noCalibration.width, (cuts.count + targets.count) * 5)
    }
  }

  /// Youden's J, the sensitivity and specificity rules and the cut/threshold bookkeeping by hand.
  func testRulesByHand() throws {
    // Positives 0.9, 0.8, 0.55; negatives 0.7, 0.6, 0.1.
    let roc = ROCPoints(scores: [0.9, 0.8, 0.7, 0.6, 0.55, 0.1], labels: [true, true, false, false, true, false])
    XCTAssertEqual(roc.thresholds, [.infinity, 0.9, 0.8, 0.7, 0.6, 0.55, 0.1])
    XCTAssertEqual(roc.tp, [0, 1, 2, 2, 2, 3, 3])
    XCTAssertEqual(roc.fp, [0, 0, 0, 1, 2, 2, 3])
    // J: 0, 1/3, 2/3, 1/3, 0, 1/3, 0 -> 0.8.
    XCTAssertEqual(roc.choose(.youden).map { roc.thresholds[$0] }, 0.8)
    // Sensitivity >= 0.9 needs all 3 positives: 0.55. Specificity >= 0.9 allows no negative: 0.8.
    XCTAssertEqual(roc.choose(.sensitivity(atLeast: 0.9)).map { roc.thresholds[$0] }, 0.55)
    XCTAssertEqual(roc.choose(.specificity(atLeast: 0.9)).map { roc.thresholds[$0] }, 0.8)
    XCTAssertEqual(roc.choose(.specificity(atLeast: 0.6)).map { roc.thresholds[$0] }, 0.7)
    XCTAssertNil(ROCPoints(scores: [0.2, 0.3], labels: [true, true]).choose(.youden))
    XCTAssertEqual(ThresholdRule.tuned.map(\.name), ["youden", "sensitivity>=0.90", "sensitivity>=0.95", "specificity>=0.90", "specificity>=0.95"])
    XCTAssertEqual(ThresholdRule.tuned.map(\.displayName), ["Youden's J", "sensitivity ≥ 0.90", "sensitivity ≥ 0.95", "specificity ≥ 0.90", "specificity ≥ 0.95"])

    let scored = ScoredCases(scores: [0.9, 0.8, 0.7, 0.6, 0.55, 0.1], labels: [true, true, false, false, true, false])
    XCTAssertEqual([0.95, 0.9, 0.75, 0.55, 0].map { scored.cut(atThreshold: $0) }, [0, 1, 2, 5, 6])
    XCTAssertEqual(scored.threshold(forCut: 0), .infinity)
    XCTAssertEqual(scored.threshold(forCut: 5), 0.55)
    let c = scored.confusions(cuts: [2], specificityTargets: [0.6], weights: nil)
    XCTAssertEqual(c.atCuts, [Confusion(tp: 2, fp: 0, fn: 1, tn: 3)])
    XCTAssertEqual(c.atTargets[0].cut, 3)  // 0.7: one negative of three called positive
    XCTAssertEqual(c.atTargets[0].confusion, Confusion(tp: 2, fp: 1, fn: 1, tn: 2))
  }
}
