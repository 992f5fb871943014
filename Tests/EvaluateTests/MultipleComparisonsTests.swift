import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// The special functions, Holm's adjustment and the paired t-test against scipy and statsmodels.
final class MultipleComparisonsTests: XCTestCase {
  /// I_x(a, b) against scipy.special.betainc to 1e-10 (relative, or absolute below 1e-300), over
  /// shapes from 0.5 to 5,000 (the t-test of 10,000 rounds) and x from 1e-12 to 1 - 1e-12.
  func testIncompleteBetaEqualsScipy() throws {
    let shapes = [0.5, 1, 1.5, 2.5, 7, 30, 99.5, 499.5, 5000]
    let xs = [1e-12, 1e-6, 0.001, 0.05, 0.2, 0.5, 0.77, 0.95, 0.999, 0.99999, 1 - 1e-12]
    var cases: [[Double]] = []
    for a in shapes { for b in shapes { for x in xs { cases.append([a, b, x]) } } }
    let ref = try pythonExact("""
      from scipy.special import betainc
      print(json.dumps(exact([float(betainc(a, b, x)) for a, b, x in json.load(open(sys.argv[1]))])))
      """, input: cases) as! [Double]
    var worst = 0.0
    for (c, r) in zip(cases, ref) {
      let mine = Distributions.regularizedIncompleteBeta(a: c[0], b: c[1], x: c[2])
      let err = abs(mine - r) / max(abs(r), 1e-300)
      if r > 1e-300 { worst = max(worst, err) }
      XCTAssertTrue(r < 1e-300 ? abs(mine) < 1e-290 : err < 1e-10, "I_\(c[2])(\(c[0]), \(c[1])) = \(mine), scipy \(r)")
    }
    XCTAssertLessThan(worst, 1e-10)
    XCTAssertEqual(Distributions.regularizedIncompleteBeta(a: 2, b: 3, x: 0), 0)
    XCTAssertEqual(Distributions.regularizedIncompleteBeta(a: 2, b: 3, x: 1), 1)
    // I_x(1, 1) = x and I_x(a, 1) = x^a, by hand.
    XCTAssertEqual(Distributions.regularizedIncompleteBeta(a: 1, b: 1, x: 0.3), 0.3, accuracy: 1e-15)
    XCTAssertEqual(Distributions.regularizedIncompleteBeta(a: 3, b: 1, x: 0.5), 0.125, accuracy: 1e-15)
  }

  /// Student's t two-sided p and CDF against scipy.stats.t, down to p ~ 1e-200.
  func testStudentTEqualsScipy() throws {
    var cases: [[Double]] = []
    for df in [1.0, 2, 5, 29, 199, 999, 9999] {
      for t in [0, 0.01, -0.7, 1.96, -3.2, 8, 40, -150] { cases.append([t, df]) }
    }
    let ref = try pythonExact("""
      from scipy.stats import t as student
      print(json.dumps(exact([[float(2 * student.sf(abs(t), df)), float(student.cdf(t, df))] for t, df in json.load(open(sys.argv[1]))])))
      """, input: cases) as! [[Double]]
    for (c, r) in zip(cases, ref) {
      let p = Distributions.studentTTwoSided(t: c[0], df: c[1])
      let cdf = Distributions.studentTCDF(t: c[0], df: c[1])
      XCTAssertEqual(p, r[0], accuracy: max(r[0], 1e-300) * 1e-10, "p of t=\(c[0]), df=\(c[1])")
      // Near 1 the CDF is 1 − p/2 in either implementation: absolute precision, an ulp or two.
      XCTAssertEqual(cdf, r[1], accuracy: max(min(r[1], 1 - r[1]), 1e-300) * 1e-10 + 4e-16, "cdf of t=\(c[0]), df=\(c[1])")
    }
    XCTAssertEqual(Distributions.studentTTwoSided(t: .infinity, df: 3), 0)
    XCTAssertEqual(Distributions.studentTTwoSided(t: 0, df: 3), 1)
  }

  func testHolmEqualsStatsmodels() throws {
    var rng = TestRandom(17)
    var families: [[Double]] = [
      [0.01, 0.04, 0.03, 0.005],
      [0.2, 0.2, 0.01, 0.6, 0.2],  // ties
      [0.5],
      [1e-12, 0.9, 0.04, 0.04, 1],
      [0.3, 0.35, 0.4],  // every adjusted value capped at 1 or carried forward
    ]
    families.append((0..<21).map { _ in pow(rng.uniform(), 3) })  // 7 models: 21 pairs
    let ref = try pythonExact("""
      from statsmodels.stats.multitest import multipletests
      print(json.dumps(exact([list(map(float, multipletests(p, method='holm')[1])) for p in json.load(open(sys.argv[1]))])))
      """, input: families) as! [[Double]]
    for (p, r) in zip(families, ref) {
      let mine = MultipleComparisons.holm(p)
      XCTAssertEqual(mine.count, r.count)
      for (a, b) in zip(mine, r) { XCTAssertEqual(a, b, accuracy: 1e-15, "\(p)") }
    }
    // By hand: sorted 0.005, 0.01, 0.03, 0.04 -> 4·0.005, 3·0.01, max(0.03, 2·0.03), max(0.06, 0.04).
    XCTAssertEqual(MultipleComparisons.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    XCTAssertEqual(MultipleComparisons.holm([]), [])
  }

  func testPairedTTestEqualsScipy() throws {
    var rng = TestRandom(5)
    var pairs: [[[Double]]] = []
    for n in [2, 3, 10, 1000] {
      let a = (0..<n).map { _ in 0.8 + 0.05 * rng.uniform() }
      let b = a.map { $0 - 0.004 + 0.03 * (rng.uniform() - 0.5) }
      pairs.append([a, b])
    }
    let ref = try pythonExact("""
      from scipy.stats import ttest_rel
      out = []
      for a, b in json.load(open(sys.argv[1])):
          r = ttest_rel(a, b)
          out.append([r.statistic, r.pvalue, float(r.df)])
      print(json.dumps(exact(out)))
      """, input: pairs) as! [[Double]]
    for (pair, r) in zip(pairs, ref) {
      let t = try XCTUnwrap(PairedTTest(pair[0], pair[1]))
      XCTAssertEqual(try XCTUnwrap(t.t), r[0], accuracy: abs(r[0]) * 1e-10)
      XCTAssertEqual(t.p, r[1], accuracy: r[1] * 1e-9)
      XCTAssertEqual(Double(t.df), r[2])
    }
    XCTAssertNil(PairedTTest([1], [2]))
    let same = try XCTUnwrap(PairedTTest([0.7, 0.8, 0.9], [0.7, 0.8, 0.9]))
    XCTAssertNil(same.t); XCTAssertEqual(same.p, 1)
    let shifted = try XCTUnwrap(PairedTTest([1, 2, 3.5], [0.75, 1.75, 3.25]))
    XCTAssertNil(shifted.t); XCTAssertEqual(shifted.p, 0); XCTAssertEqual(shifted.meanDifference, 0.25, accuracy: 1e-15)
  }
}
