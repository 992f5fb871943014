/// Chance-corrected agreement of two raters over q nominal categories (0..<q): Gwet's AC1 and
/// Cohen's kappa, optionally weighted per item (bootstrap counts), and a per-finding summary
/// with bootstrap CIs that `cxr agree` and the annotation app share.

/// Gwet's AC1 for two raters and `q` categories (Gwet 2008; Handbook of Inter-Rater
/// Reliability, 4th ed., ch. 4): AC1 = (pa - pe) / (1 - pe), with pa the observed agreement and
/// pe = 1/(q-1) * sum_k pi_k (1 - pi_k), pi_k the mean of the two raters' rates of category k.
/// With q = 2 this is the binary `gwetAC1(_:_:)`. `a[i]`, `b[i]` in 0..<q. Nil for no item,
/// q < 2, or pe = 1 (cannot happen for q >= 2: pe <= (q-1)/q / (q-1) * ... < 1).
public func gwetAC1(_ a: [Int], _ b: [Int], categories q: Int, weights: UnsafeBufferPointer<Int32>? = nil) -> Double? {
  precondition(a.count == b.count, "both raters must rate the same items")
  guard q >= 2 else { return nil }
  var counts = [Int](repeating: 0, count: q)
  var agree = 0, total = 0
  for i in a.indices {
    let w = weights.map { Int($0[i]) } ?? 1
    if w == 0 { continue }
    precondition(a[i] >= 0 && a[i] < q && b[i] >= 0 && b[i] < q, "category out of 0..<\(q)")
    total += w
    if a[i] == b[i] { agree += w }
    counts[a[i]] += w; counts[b[i]] += w
  }
  guard total > 0 else { return nil }
  let pa = Double(agree) / Double(total)
  var pe = 0.0
  for c in counts {
    let pi = Double(c) / Double(2 * total)
    pe += pi * (1 - pi)
  }
  pe /= Double(q - 1)
  guard pe < 1 else { return nil }
  return (pa - pe) / (1 - pe)
}

/// Cohen's kappa for two raters and `q` categories: (po - pe) / (1 - pe) with pe the sum over
/// categories of the product of the raters' marginal rates. Nil for no item or pe = 1 (both
/// raters used one and the same category for every item).
public func cohenKappa(_ a: [Int], _ b: [Int], categories q: Int, weights: UnsafeBufferPointer<Int32>? = nil) -> Double? {
  precondition(a.count == b.count, "both raters must rate the same items")
  var ca = [Int](repeating: 0, count: q), cb = [Int](repeating: 0, count: q)
  var agree = 0, total = 0
  for i in a.indices {
    let w = weights.map { Int($0[i]) } ?? 1
    if w == 0 { continue }
    total += w
    if a[i] == b[i] { agree += w }
    ca[a[i]] += w; cb[b[i]] += w
  }
  guard total > 0 else { return nil }
  let n = Double(total)
  let po = Double(agree) / n
  var pe = 0.0
  for k in 0..<q { pe += Double(ca[k]) / n * Double(cb[k]) / n }
  guard pe < 1 - 1e-15 else { return nil }
  return (po - pe) / (1 - pe)
}

/// The categories human annotators use: present / absent / uncertain.
public enum ReaderAnswer: Int, CaseIterable, Sendable, Codable {
  case present = 0, absent = 1, uncertain = 2

  public var name: String {
    switch self {
    case .present: return "present"
    case .absent: return "absent"
    case .uncertain: return "uncertain"
    }
  }
  public init?(name: String) {
    switch name {
    case "present": self = .present
    case "absent": self = .absent
    case "uncertain": self = .uncertain
    default: return nil
    }
  }
}

/// Two readers' agreement on one finding over the items both answered (statistics as `Estimate`s,
/// the value with its 95 % percentile bootstrap CI, as operating points report them).
public struct ReaderAgreement: Sendable, Equatable {
  /// Items both readers answered (any of the three categories).
  public var n: Int
  /// Items on which both gave the same answer.
  public var agreements: Int
  /// agreements / n.
  public var rawAgreement: Double?
  /// Gwet's AC1 over present / absent / uncertain (the study's statistic).
  public var ac1ThreeCategory: Estimate
  /// Gwet's AC1 over present / absent with every item that either reader called uncertain left out.
  public var ac1Binary: Estimate
  /// Items in the binary AC1.
  public var nBinary: Int
  /// Cohen's kappa over the three categories.
  public var kappa: Estimate
  /// counts[x][y]: items reader 1 answered x and reader 2 answered y (ReaderAnswer order).
  public var counts: [[Int]]

  /// `a`, `b`: the readers' answers on the same items. Bootstrap: `rounds` rounds from `seed`
  /// (the Evaluate layer's percentile bootstrap over items).
  public init(_ a: [ReaderAnswer], _ b: [ReaderAnswer], rounds: Int = 1000, seed: UInt64 = 0) {
    precondition(a.count == b.count)
    let x = a.map(\.rawValue), y = b.map(\.rawValue)
    n = x.count
    agreements = zip(x, y).filter { $0 == $1 }.count
    rawAgreement = n > 0 ? Double(agreements) / Double(n) : nil
    var m = [[Int]](repeating: [Int](repeating: 0, count: 3), count: 3)
    for (p, q) in zip(x, y) { m[p][q] += 1 }
    counts = m
    let boot = Bootstrap.statistics(caseCount: n, rounds: rounds, seed: seed, metrics: 2) { w in
      [gwetAC1(x, y, categories: 3, weights: w), cohenKappa(x, y, categories: 3, weights: w)]
    }
    func estimate(_ v: Double?, _ samples: [Double]) -> Estimate {
      // Rounds where the statistic is undefined (a draw of one category only) are left out.
      let ci = percentileInterval(samples.filter { $0.isFinite })
      return Estimate(value: v, ciLow: ci?.low, ciHigh: ci?.high)
    }
    ac1ThreeCategory = estimate(gwetAC1(x, y, categories: 3), boot[0])
    kappa = estimate(cohenKappa(x, y, categories: 3), boot[1])
    let definite = x.indices.filter { x[$0] != ReaderAnswer.uncertain.rawValue && y[$0] != ReaderAnswer.uncertain.rawValue }
    let bx = definite.map { x[$0] == 0 }, by = definite.map { y[$0] == 0 }
    nBinary = definite.count
    let bboot = Bootstrap.statistics(caseCount: bx.count, rounds: rounds, seed: seed, metrics: 1) { w in [gwetAC1(bx, by, weights: w)] }
    ac1Binary = estimate(gwetAC1(bx, by), bboot[0])
  }
}

extension Agreement {
  /// How a report labels an inter-annotator AC1 row: `gwet_ac1` is binary with every uncertain
  /// answer left out, `gwet_ac1_3cat` the study's present / absent / uncertain.
  public static func ac1Label(_ metric: String) -> String {
    metric == "gwet_ac1_3cat" ? "present / absent / uncertain" : "present / absent (uncertain left out)"
  }
}
