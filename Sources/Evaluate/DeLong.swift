import Foundation

/// DeLong's test for two correlated AUROCs on the same cases (DeLong, DeLong & Clarke-Pearson
/// 1988), computed with midranks as in Sun & Xu 2014, O(n log n).
public struct DeLongResult: Sendable, Equatable {
  public var aucA: Double
  public var aucB: Double
  /// Variance of aucA - aucB.
  public var variance: Double
  /// (aucA - aucB) / sqrt(variance); nil when the variance is 0 (identical rankings).
  public var z: Double?
  /// Two-sided p-value; 1 when the two rankings are identical.
  public var p: Double
  public var difference: Double { aucA - aucB }
}

public enum DeLong {
  /// A model's structural components (placement values) on fixed cases; computed once per
  /// model so that comparing k models costs k sorts, not one per pair.
  public struct Components: Sendable {
    public let auc: Double
    let v10: [Double]  // per positive: share of negatives ranked below (ties half)
    let v01: [Double]  // per negative: share of positives ranked above (ties half)

    /// Nil when a class is missing.
    public init?(scores: [Double], labels: [Bool]) {
      precondition(scores.count == labels.count, "scores and labels must pair up")
      var x: [Double] = [], y: [Double] = []
      for (s, l) in zip(scores, labels) { if l { x.append(s) } else { y.append(s) } }
      guard !x.isEmpty, !y.isEmpty else { return nil }
      let m = Double(x.count), n = Double(y.count)
      let tx = DeLong.midranks(x), ty = DeLong.midranks(y), tz = DeLong.midranks(x + y)
      v10 = (0..<x.count).map { (tz[$0] - tx[$0]) / n }
      v01 = (0..<y.count).map { 1 - (tz[x.count + $0] - ty[$0]) / m }
      auc = v10.reduce(0, +) / m
    }

    /// The same components from a ranking of the same cases, whose sort they reuse: a positive's
    /// placement is (negatives below + half the negatives tied) / n, a negative's is (positives
    /// above + half the positives tied) / m, which is what the midranks give (tz − tx is that
    /// half-integer exactly), so the values are identical, in the cases' order.
    public init?(ranking r: Ranking) {
      let count = r.count
      var isPositive = [Bool](repeating: false, count: count)
      for k in 0..<count where r.positive[k] { isPositive[Int(r.order[k])] = true }
      // Each case's place among its own class, in case order (the order `init(scores:labels:)` keeps).
      var within = [Int32](repeating: 0, count: count)
      var m = 0, n = 0
      for i in 0..<count {
        if isPositive[i] { within[i] = Int32(m); m += 1 } else { within[i] = Int32(n); n += 1 }
      }
      guard m > 0, n > 0 else { return nil }
      var v10 = [Double](repeating: 0, count: m), v01 = [Double](repeating: 0, count: n)
      let dm = Double(m), dn = Double(n)
      // Tie groups from the lowest score up, counting each class below.
      var positivesBelow = 0, negativesBelow = 0
      for g in stride(from: r.groupStarts.count - 2, through: 0, by: -1) {
        let range = Int(r.groupStarts[g])..<Int(r.groupStarts[g + 1])
        var tiedPositives = 0
        for k in range where r.positive[k] { tiedPositives += 1 }
        let tiedNegatives = range.count - tiedPositives
        let positivePlacement = (Double(negativesBelow) + 0.5 * Double(tiedNegatives)) / dn
        let negativePlacement = 1 - (Double(positivesBelow) + 0.5 * Double(tiedPositives)) / dm
        for k in range {
          let i = Int(r.order[k])
          if r.positive[k] { v10[Int(within[i])] = positivePlacement } else { v01[Int(within[i])] = negativePlacement }
        }
        positivesBelow += tiedPositives; negativesBelow += tiedNegatives
      }
      self.v10 = v10; self.v01 = v01
      auc = v10.reduce(0, +) / dm
    }
  }

  /// Nil when a class is missing.
  public static func test(scoresA: [Double], scoresB: [Double], labels: [Bool]) -> DeLongResult? {
    guard let a = Components(scores: scoresA, labels: labels), let b = Components(scores: scoresB, labels: labels) else { return nil }
    return test(a, b)
  }

  /// The test for two models' components on the same cases.
  public static func test(_ a: Components, _ b: Components) -> DeLongResult {
    precondition(a.v10.count == b.v10.count && a.v01.count == b.v01.count, "components must come from the same cases")
    let m = Double(a.v10.count), n = Double(a.v01.count)
    func cov(_ u: [Double], _ v: [Double]) -> Double {
      guard u.count > 1 else { return 0 }
      let mu = u.reduce(0, +) / Double(u.count), mv = v.reduce(0, +) / Double(v.count)
      var s = 0.0
      for i in u.indices { s += (u[i] - mu) * (v[i] - mv) }
      return s / Double(u.count - 1)
    }
    let varA = cov(a.v10, a.v10) / m + cov(a.v01, a.v01) / n
    let varB = cov(b.v10, b.v10) / m + cov(b.v01, b.v01) / n
    let covAB = cov(a.v10, b.v10) / m + cov(a.v01, b.v01) / n
    let variance = max(0, varA + varB - 2 * covAB)
    let diff = a.auc - b.auc
    if variance <= 1e-300 {
      return DeLongResult(aucA: a.auc, aucB: b.auc, variance: variance, z: nil, p: diff == 0 ? 1 : 0)
    }
    let z = diff / variance.squareRoot()
    return DeLongResult(aucA: a.auc, aucB: b.auc, variance: variance, z: z, p: erfc(abs(z) / 2.0.squareRoot()))
  }

  /// 1-based ranks with ties given their average rank.
  static func midranks(_ v: [Double]) -> [Double] {
    let order = v.indices.sorted { v[$0] < v[$1] }
    var ranks = [Double](repeating: 0, count: v.count)
    var i = 0
    while i < order.count {
      var j = i
      while j + 1 < order.count, v[order[j + 1]] == v[order[i]] { j += 1 }
      let r = Double(i + j) / 2 + 1
      for k in i...j { ranks[order[k]] = r }
      i = j + 1
    }
    return ranks
  }
}
