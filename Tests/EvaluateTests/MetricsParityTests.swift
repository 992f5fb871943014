import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// AUROC and AUPRC against scikit-learn on random, tie-heavy and tiny inputs, with and without
/// case weights (a bootstrap round is a reweighting; sklearn sees it as repeated rows).
final class MetricsParityTests: XCTestCase {
  struct Case { var name: String; var scores: [Double]; var labels: [Bool]; var weights: [Int32] }

  func makeCases() -> [Case] {
    var rng = TestRandom(42)
    var cases: [Case] = []
    func weights(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % 4) } }
    // Random continuous scores.
    for n in [50, 1000] {
      let labels = (0..<n).map { _ in rng.uniform() < 0.3 }
      let scores = labels.map { ($0 ? 0.3 : 0) + rng.uniform() }
      cases.append(Case(name: "random \(n)", scores: scores, labels: labels, weights: weights(n)))
    }
    // Tie-heavy: scores on a coarse grid, so most thresholds hold both classes.
    for grid in [3.0, 10.0] {
      let n = 600
      let labels = (0..<n).map { _ in rng.uniform() < 0.4 }
      let scores = labels.map { (((($0 ? 0.2 : 0) + rng.uniform()) * grid).rounded(.down)) / grid }
      cases.append(Case(name: "ties grid \(grid)", scores: scores, labels: labels, weights: weights(n)))
    }
    // All scores equal.
    cases.append(Case(name: "all tied", scores: Array(repeating: 0.5, count: 7), labels: [true, false, false, true, false, false, false],
                      weights: [1, 2, 0, 1, 3, 1, 1]))
    // Tiny inputs.
    cases.append(Case(name: "two cases", scores: [0.2, 0.8], labels: [true, false], weights: [2, 1]))
    cases.append(Case(name: "three cases", scores: [0.1, 0.4, 0.35], labels: [false, true, true], weights: [1, 1, 3]))
    cases.append(Case(name: "perfect", scores: [0.1, 0.2, 0.9, 0.95], labels: [false, false, true, true], weights: [1, 0, 2, 1]))
    return cases
  }

  func testAreasEqualScikitLearn() throws {
    let cases = makeCases()
    let input: [[String: Any]] = cases.map {
      ["scores": $0.scores, "labels": $0.labels.map { $0 ? 1 : 0 }, "weights": $0.weights.map { Int($0) }]
    }
    let out = try pythonJSON("""
      import numpy as np
      from sklearn.metrics import roc_auc_score, average_precision_score
      res = []
      for c in json.load(open(sys.argv[1])):
          s, y, w = np.array(c['scores']), np.array(c['labels']), np.array(c['weights'])
          rs, ry = np.repeat(s, w), np.repeat(y, w)
          res.append([roc_auc_score(y, s), average_precision_score(y, s),
                      roc_auc_score(ry, rs), average_precision_score(ry, rs)])
      print(json.dumps(res))
      """, input: input) as! [[Double]]
    for (c, ref) in zip(cases, out) {
      let ranking = Ranking(scores: c.scores, labels: c.labels)
      let plain = try XCTUnwrap(ranking.areas(), c.name)
      XCTAssertEqual(plain.auroc, ref[0], accuracy: 1e-9, "AUROC \(c.name)")
      XCTAssertEqual(plain.auprc, ref[1], accuracy: 1e-9, "AUPRC \(c.name)")
      let weighted = try XCTUnwrap(c.weights.withUnsafeBufferPointer { ranking.areas(weights: $0) }, c.name)
      XCTAssertEqual(weighted.auroc, ref[2], accuracy: 1e-9, "weighted AUROC \(c.name)")
      XCTAssertEqual(weighted.auprc, ref[3], accuracy: 1e-9, "weighted AUPRC \(c.name)")
      XCTAssertEqual(auroc(scores: c.scores, labels: c.labels)!, ref[0], accuracy: 1e-9)
      XCTAssertEqual(auprc(scores: c.scores, labels: c.labels)!, ref[1], accuracy: 1e-9)
    }
  }

  func testHandComputedSmallExample() throws {
    // Positives 0.9, 0.8, 0.55; negatives 0.7, 0.6, 0.1: 7 of 9 pairs ordered; AP = (1 + 1 + 3/5) / 3.
    let a = try XCTUnwrap(Ranking(scores: [0.9, 0.8, 0.7, 0.6, 0.55, 0.1], labels: [true, true, false, false, true, false]).areas())
    XCTAssertEqual(a.auroc, 7.0 / 9.0, accuracy: 1e-15)
    XCTAssertEqual(a.auprc, 2.6 / 3.0, accuracy: 1e-15)
  }

  func testOneClassGivesNil() {
    XCTAssertNil(Ranking(scores: [0.1, 0.2], labels: [false, false]).areas())
    XCTAssertNil(Ranking(scores: [0.1, 0.2], labels: [true, true]).areas())
    XCTAssertNil([Int32(1), 0].withUnsafeBufferPointer { Ranking(scores: [0.1, 0.2], labels: [true, false]).areas(weights: $0) })
  }

  func testCurvesEndAtCorners() {
    let c = Ranking(scores: [0.9, 0.8, 0.7, 0.6, 0.55, 0.1], labels: [true, true, false, false, true, false]).curves()
    XCTAssertEqual(c.roc.first!.0, 0); XCTAssertEqual(c.roc.first!.1, 0)
    XCTAssertEqual(c.roc.last!.0, 1); XCTAssertEqual(c.roc.last!.1, 1)
    XCTAssertEqual(c.pr.first!.0, 1.0 / 3.0, accuracy: 1e-15); XCTAssertEqual(c.pr.first!.1, 1)
    XCTAssertEqual(c.pr.last!.0, 1); XCTAssertEqual(c.pr.last!.1, 0.5)
  }
}
