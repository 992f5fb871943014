import Foundation

public enum MultipleComparisons {
  /// Holm's step-down adjustment (Holm 1979), which controls the family-wise error rate under any
  /// dependence between the tests. With the m p-values sorted p(1) <= ... <= p(m):
  /// adjusted p(i) = min(1, max over j <= i of (m - j + 1) p(j)). Returned in the input order.
  /// Tied p-values get the same adjusted value whatever order the sort leaves them in.
  public static func holm(_ p: [Double]) -> [Double] {
    let m = p.count
    let order = p.indices.sorted { p[$0] < p[$1] }
    var adjusted = [Double](repeating: .nan, count: m)
    var running = 0.0
    for (rank, i) in order.enumerated() {
      running = max(running, Double(m - rank) * p[i])
      adjusted[i] = min(1, running)
    }
    return adjusted
  }
}

/// A paired t-test (as scipy.stats.ttest_rel): d_i = a_i - b_i, t = mean(d) / (s_d / sqrt(n))
/// with s_d the sample standard deviation (n - 1 in the denominator), df = n - 1, and a two-sided
/// p-value from Student's t.
///
/// The study compared its models this way over the paired bootstrap rounds' AUROCs, and cxr offers
/// it so those comparisons can be reproduced as they were made. It is not a sound test there: the
/// rounds are resamples of one test set, not independent replications, so the t statistic grows
/// with the number of rounds (as sqrt(rounds)) while the evidence does not. DeLong's test (and the
/// paired bootstrap CI) are the better-founded comparisons.
public struct PairedTTest: Sendable, Equatable {
  public var meanDifference: Double
  /// Nil when every difference is the same (no variance): then p is 1 for all-zero differences
  /// and 0 otherwise (scipy returns nan for the first and ±inf, 0 for the second).
  public var t: Double?
  public var df: Int
  public var p: Double

  /// Nil with fewer than two pairs.
  public init?(_ a: [Double], _ b: [Double]) {
    precondition(a.count == b.count, "a paired t-test needs pairs")
    let n = a.count
    guard n >= 2 else { return nil }
    let d = zip(a, b).map { $0 - $1 }
    let mean = d.reduce(0, +) / Double(n)
    var ss = 0.0
    for v in d { ss += (v - mean) * (v - mean) }
    let variance = ss / Double(n - 1)
    meanDifference = mean
    df = n - 1
    if variance <= 0 {
      t = nil
      p = mean == 0 ? 1 : 0
      return
    }
    let t = mean / (variance / Double(n)).squareRoot()
    self.t = t
    p = Distributions.studentTTwoSided(t: t, df: Double(n - 1))
  }
}
