import Foundation
import TestSupport
import XCTest
@testable import Evaluate

final class BootstrapTests: XCTestCase {
  func data(_ n: Int, seed: UInt64) -> (scores: [[Double]], labels: [Bool]) {
    var rng = TestRandom(seed)
    let labels = (0..<n).map { _ in rng.uniform() < 0.15 }
    let a = labels.map { ($0 ? 0.35 : 0) + rng.uniform() }
    let b = labels.map { ($0 ? 0.25 : 0) + (rng.uniform() * 20).rounded() / 20 }
    return ([a, b], labels)
  }

  /// The references of a finding resampled together (one draw per round, each model's passes over
  /// up to four references as one `ReferenceLanes` pass) give exactly, to the bit, what each gives
  /// resampled alone: areas, operating points, calibration and curve grids. The sets include one
  /// with a single positive and one with a single negative, which many shared draws do not suit
  /// (those rounds are redrawn for them alone, and their lane group falls back to single passes).
  func testReferencesResampledTogetherEqualEachAlone() {
    let n = 300
    var rng = TestRandom(21)
    let truth = (0..<n).map { _ in rng.uniform() < 0.2 }
    var scores = [truth.map { min(1, max(0, ($0 ? 0.3 : 0) + 0.7 * rng.uniform())) },
                  truth.map { (($0 ? 0.25 : 0) + 0.75 * rng.uniform() * 20).rounded() / 20 / 1.0 }].map { $0.map { min(1, $0) } }
    // Scores halfway between two fixed-point steps (2^-40 for this many cases): a positive's
    // residual round(1 − p) is then one more than round(−p) + 1, a deviation the lanes add apart.
    for i in [5, 51, 101, 151, 17] { scores[0][i] = 0.5 + Double(i) * 0x1p-41 }
    var sets = [0.0, 0.05, 0.1, 0.03].map { flip in truth.map { $0 != (rng.uniform() < flip) } }
    sets.append((0..<n).map { $0 == 17 })   // one positive
    sets.append((0..<n).map { $0 != 42 })   // one negative
    let thresholds = [0.9, 0.5, 0.3, 0.0, 0.35]
    let targets = [0.9, 0.95, 0.5, 1.0]
    let rankings = sets.map { labels in scores.map { Ranking(scores: $0, labels: labels) } }
    let scored = sets.indices.map { j in scores.indices.map { m in ScoredCases(ranking: rankings[j][m], scores: scores[m], labels: sets[j]) } }
    let passes = scored.map { perModel in
      perModel.map { s in RoundStatistics(scored: s, cuts: thresholds.map { s.cut(atThreshold: $0) }, targets: targets, bins: 10, gridPoints: 11) }
    }
    XCTAssertNotNil(ReferenceLanes(members: Array(passes[0..<4].map { $0[1] }), scored: Array(scored[0..<4].map { $0[1] })))
    XCTAssertEqual(ReferenceLanes(members: Array(passes[0..<4].map { $0[0] }), scored: Array(scored[0..<4].map { $0[0] }))?.deviations.count, 5)
    XCTAssertNil(ReferenceLanes(members: [passes[0][0], passes[1][1]], scored: [scored[0][0], scored[1][1]]), "two models' scores")
    XCTAssertNil(ReferenceLanes(members: [passes[0][0]], scored: [scored[0][0]]), "one reference alone")
    let together = Bootstrap.areas(labelSets: sets, rankings: rankings, also: passes, scored: scored, rounds: 40, seed: 9)
    for j in sets.indices {
      let alone = Bootstrap.areas(labels: sets[j], rankings: rankings[j], also: passes[j], rounds: 40, seed: 9)
      XCTAssertEqual(together[j].areas, alone.areas, "set \(j)")
      XCTAssertEqual(together[j].statistics, alone.statistics, "set \(j)")
      XCTAssertEqual(together[j].areas.map(\.count), [40, 40])
      XCTAssertEqual(alone.statistics[0].count, passes[j][0].width)
    }
    // Without passes (areas only), sets are drawn together too.
    let areasOnly = Bootstrap.areas(labelSets: sets, rankings: rankings, also: sets.map { _ in [] }, rounds: 25, seed: 4)
    for j in sets.indices {
      XCTAssertEqual(areasOnly[j].areas, Bootstrap.areas(labels: sets[j], rankings: rankings[j], rounds: 25, seed: 4), "set \(j)")
    }
  }

  func testReproducibleForASeedAndContainsThePointEstimate() {
    let (scores, labels) = data(400, seed: 7)
    let rankings = scores.map { Ranking(scores: $0, labels: labels) }
    let first = Bootstrap.areas(labels: labels, rankings: rankings, rounds: 300, seed: 11)
    let again = Bootstrap.areas(labels: labels, rankings: rankings, rounds: 300, seed: 11)
    let other = Bootstrap.areas(labels: labels, rankings: rankings, rounds: 300, seed: 12)
    XCTAssertEqual(first, again)
    XCTAssertNotEqual(first, other)
    for (m, ranking) in rankings.enumerated() {
      let point = ranking.areas()!
      let aurocCI = percentileInterval(first[m].map(\.auroc))!
      let auprcCI = percentileInterval(first[m].map(\.auprc))!
      XCTAssertLessThan(aurocCI.low, point.auroc); XCTAssertGreaterThan(aurocCI.high, point.auroc)
      XCTAssertLessThan(auprcCI.low, point.auprc); XCTAssertGreaterThan(auprcCI.high, point.auprc)
      XCTAssertLessThan(aurocCI.high - aurocCI.low, 0.3)
    }
  }

  /// Each round depends only on (seed, round): the parallel result equals a one-thread replay,
  /// and a round's areas equal scikit-learn's on the resampled rows.
  func testRoundsAreIndependentOfThreadsAndMatchScikitLearnResampling() throws {
    let (scores, labels) = data(120, seed: 3)
    let rankings = scores.map { Ranking(scores: $0, labels: labels) }
    let parallel = Bootstrap.areas(labels: labels, rankings: rankings, rounds: 16, seed: 5)
    let positives = labels.indices.filter { labels[$0] }.map { Int32($0) }
    var allCounts: [[Int]] = []
    for r in 0..<16 {
      var counts = [Int32](repeating: 0, count: labels.count)
      counts.withUnsafeMutableBufferPointer { c in
        _ = Bootstrap.draw(into: c, seed: 5, round: r, positives: positives)
      }
      XCTAssertEqual(counts.reduce(0, +), Int32(labels.count))
      allCounts.append(counts.map(Int.init))
      for m in 0..<2 {
        let replay = counts.withUnsafeBufferPointer { rankings[m].areas(weights: $0)! }
        XCTAssertEqual(parallel[m][r], replay)
      }
    }
    let ref = try pythonJSON("""
      import numpy as np
      from sklearn.metrics import roc_auc_score, average_precision_score
      d = json.load(open(sys.argv[1]))
      y = np.array(d['labels'])
      out = []
      for s in d['scores']:
          s = np.array(s)
          out.append([[roc_auc_score(np.repeat(y, c), np.repeat(s, c)), average_precision_score(np.repeat(y, c), np.repeat(s, c))]
                      for c in d['counts']])
      print(json.dumps(out))
      """, input: ["labels": labels.map { $0 ? 1 : 0 }, "scores": scores, "counts": allCounts]) as! [[[Double]]]
    for m in 0..<2 {
      for r in 0..<16 {
        XCTAssertEqual(parallel[m][r].auroc, ref[m][r][0], accuracy: 1e-9)
        XCTAssertEqual(parallel[m][r].auprc, ref[m][r][1], accuracy: 1e-9)
      }
    }
  }

  func testRoundsMissingAClassAreRedrawn() {
    // One positive in 30 cases: about 36 % of plain draws miss it; none of ours may.
    var labels = Array(repeating: false, count: 30)
    labels[4] = true
    let scores = (0..<30).map { Double($0) / 30 }
    let boot = Bootstrap.areas(labels: labels, rankings: [Ranking(scores: scores, labels: labels)], rounds: 200, seed: 1)
    XCTAssertEqual(boot[0].count, 200)
    XCTAssertTrue(boot[0].allSatisfy { $0.auroc.isFinite && $0.auprc.isFinite })
  }

  /// The generic bootstrap behind `agree`: reproducible, redraws rounds without a positive, and
  /// leaves a metric's undefined rounds out of its interval.
  func testStatisticsBootstrap() {
    let truth = [true, false, false, false, false, false, false, false, false, false]
    let predicted = [true, true, false, false, false, false, false, false, false, false]
    let positives: [Int32] = [0]
    func run(_ seed: UInt64) -> [[Double]] {
      Bootstrap.statistics(caseCount: truth.count, rounds: 300, seed: seed, positives: positives, metrics: 2) { w in
        let c = Confusion(predicted: predicted, truth: truth, weights: w)
        return [c.sensitivity, c.ppv]
      }
    }
    let first = run(9)
    XCTAssertEqual(first, run(9))
    XCTAssertNotEqual(first, run(10))
    // Case 0 (the only positive) is in every round, so sensitivity is always defined and 1;
    // PPV is defined in every round too since case 0 is also predicted positive.
    XCTAssertEqual(first[0].count, 300)
    XCTAssertTrue(first[0].allSatisfy { $0 == 1 })
    XCTAssertEqual(first[1].count, 300)
    // Without the class check, rounds that miss case 0 leave sensitivity undefined: those are dropped.
    let loose = Bootstrap.statistics(caseCount: truth.count, rounds: 300, seed: 9, metrics: 1) { w in
      [Confusion(predicted: predicted, truth: truth, weights: w).sensitivity]
    }
    XCTAssertLessThan(loose[0].count, 300)
    XCTAssertGreaterThan(loose[0].count, 150)  // P(case 0 drawn) = 1 - 0.9^10 = 0.65
  }

  func testPercentileMatchesNumpyLinear() {
    let ci = percentileInterval([5, 1, 4, 2, 3])!  // numpy.percentile([1..5], [2.5, 97.5]) = 1.1, 4.9
    XCTAssertEqual(ci.low, 1.1, accuracy: 1e-12)
    XCTAssertEqual(ci.high, 4.9, accuracy: 1e-12)
    XCTAssertNil(percentileInterval([]))
  }

  /// The selection finds the very values a full sort would: exactly, on sizes from 1 to 1,000,
  /// with the many ties of a count metric's rounds, at several levels.
  func testPercentileBySelectionEqualsTheSortedDefinition() {
    func bySort(_ values: [Double], _ level: Double) -> (Double, Double) {
      let sorted = values.sorted()
      func q(_ p: Double) -> Double {
        let h = Double(sorted.count - 1) * p
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
      }
      return (q((1 - level) / 2), q(1 - (1 - level) / 2))
    }
    var rng = SeededRandom(seed: 7, stream: 0)
    var checked = 0
    for n in Array(1...40) + [999, 1000] {
      for distinct in [1, 2, 5, 1_000_000] {
        let values = (0..<n).map { _ in Double(rng.index(below: distinct)) / 7 }
        for level in [0.95, 0.9, 0.5, 0.0, 1.0] {
          let got = percentileInterval(values, level: level)!
          let want = bySort(values, level)
          XCTAssertEqual(got.low, want.0, "n \(n) distinct \(distinct) level \(level)")
          XCTAssertEqual(got.high, want.1, "n \(n) distinct \(distinct) level \(level)")
          checked += 1
        }
      }
    }
    XCTAssertEqual(checked, 42 * 4 * 5)
  }
}
