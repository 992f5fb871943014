import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// DeLong's test against an independent O(m n) implementation of the 1988 paper's formulas
/// (placement values from pairwise kernels), written here in Python with scipy's normal.
final class DeLongTests: XCTestCase {
  func testMatchesIndependentImplementation() throws {
    var rng = TestRandom(99)
    var inputs: [[String: Any]] = []
    var swift: [DeLongResult] = []
    for (n, grid) in [(80, 0.0), (300, 10.0), (12, 4.0)] {
      let labels = (0..<n).map { i in i < 3 ? true : (i < 6 ? false : rng.uniform() < 0.3) }
      func score(_ shift: Double) -> [Double] {
        labels.map { l in
          let v = (l ? shift : 0) + rng.uniform()
          return grid > 0 ? (v * grid).rounded() / grid : v
        }
      }
      let a = score(0.4), b = score(0.2)
      swift.append(try XCTUnwrap(DeLong.test(scoresA: a, scoresB: b, labels: labels)))
      inputs.append(["a": a, "b": b, "y": labels.map { $0 ? 1 : 0 }])
    }
    let ref = try pythonJSON("""
      import numpy as np
      from scipy.stats import norm
      def psi(x, y):
          return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
      out = []
      for c in json.load(open(sys.argv[1])):
          y = np.array(c['y']) == 1
          comps = []
          for s in (np.array(c['a']), np.array(c['b'])):
              k = psi(s[y], s[~y])
              comps.append((k.mean(), k.mean(axis=1), k.mean(axis=0)))
          m, n = y.sum(), (~y).sum()
          s10 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
          s01 = np.cov(np.vstack([comps[0][2], comps[1][2]]))
          S = s10 / m + s01 / n
          var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
          z = (comps[0][0] - comps[1][0]) / np.sqrt(var)
          out.append([comps[0][0], comps[1][0], var, z, 2 * norm.sf(abs(z))])
      print(json.dumps(out))
      """, input: inputs) as! [[Double]]
    for (s, r) in zip(swift, ref) {
      XCTAssertEqual(s.aucA, r[0], accuracy: 1e-12)
      XCTAssertEqual(s.aucB, r[1], accuracy: 1e-12)
      XCTAssertEqual(s.variance, r[2], accuracy: 1e-12)
      XCTAssertEqual(try XCTUnwrap(s.z), r[3], accuracy: 1e-9)
      XCTAssertEqual(s.p, r[4], accuracy: 1e-12)
    }
  }

  func testIdenticalModelsHaveNoDifference() throws {
    let r = try XCTUnwrap(DeLong.test(scoresA: [0.1, 0.5, 0.7, 0.2], scoresB: [0.1, 0.5, 0.7, 0.2], labels: [false, true, true, false]))
    XCTAssertNil(r.z)
    XCTAssertEqual(r.p, 1)
    XCTAssertNil(DeLong.test(scoresA: [0.1], scoresB: [0.2], labels: [true]))
  }

  func testMidranks() {
    XCTAssertEqual(DeLong.midranks([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
  }

  /// Components read off a ranking's sort equal the midrank ones to the bit, ties and all, in
  /// the cases' order (the covariances sum in that order).
  func testComponentsFromARankingEqualTheMidrankOnes() {
    var rng = SeededRandom(seed: 11, stream: 0)
    for (n, levels) in [(2, 2), (9, 3), (200, 7), (2_000, 1_000_000), (2_000, 40)] {
      let labels = (0..<n).map { $0 < 1 ? true : $0 < 2 ? false : rng.index(below: 4) == 0 }
      let scores = (0..<n).map { _ in Double(rng.index(below: levels)) / Double(levels) }
      let a = DeLong.Components(scores: scores, labels: labels)!
      let b = DeLong.Components(ranking: Ranking(scores: scores, labels: labels))!
      XCTAssertEqual(a.v10, b.v10, "n \(n)")
      XCTAssertEqual(a.v01, b.v01, "n \(n)")
      XCTAssertEqual(a.auc, b.auc, "n \(n)")
    }
    XCTAssertNil(DeLong.Components(ranking: Ranking(scores: [0.2, 0.4], labels: [true, true])))
  }
}
