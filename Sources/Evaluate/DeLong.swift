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
  /// Nil when a class is missing.
  public static func test(scoresA: [Double], scoresB: [Double], labels: [Bool]) -> DeLongResult? {
    precondition(scoresA.count == labels.count && scoresB.count == labels.count, "scores and labels must pair up")
    let posIdx = labels.indices.filter { labels[$0] }
    let negIdx = labels.indices.filter { !labels[$0] }
    let m = Double(posIdx.count), n = Double(negIdx.count)
    guard m > 0, n > 0 else { return nil }
    func components(_ s: [Double]) -> (auc: Double, v10: [Double], v01: [Double]) {
      let x = posIdx.map { s[$0] }, y = negIdx.map { s[$0] }
      let tx = midranks(x), ty = midranks(y), tz = midranks(x + y)
      let v10 = (0..<x.count).map { (tz[$0] - tx[$0]) / n }
      let v01 = (0..<y.count).map { 1 - (tz[x.count + $0] - ty[$0]) / m }
      return (v10.reduce(0, +) / m, v10, v01)
    }
    let a = components(scoresA), b = components(scoresB)
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
