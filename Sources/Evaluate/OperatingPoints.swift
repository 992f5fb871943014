import Foundation

/// Where a decision threshold came from. Only `tune` and `fixed` thresholds are honest estimates
/// of how a deployed model would do; `test` ones are read off the test set's own ROC and so are
/// optimistic (they say what the best threshold could have achieved).
public enum ThresholdSource: String, Sendable, Codable {
  case tune, fixed, test
}

/// A rule that picks a decision threshold from scored cases. A case is called positive when its
/// score is >= the threshold (scikit-learn's `roc_curve` convention).
public enum ThresholdRule: Sendable, Equatable {
  /// Maximizes Youden's J = sensitivity + specificity - 1.
  case youden
  /// The highest threshold whose sensitivity is at least the target (the most specific one that
  /// keeps the sensitivity).
  case sensitivity(atLeast: Double)
  /// The lowest threshold whose specificity is at least the target (the most sensitive one that
  /// keeps the specificity).
  case specificity(atLeast: Double)

  /// The rules `cxr evaluate` applies to the tuning predictions.
  public static let tuned: [ThresholdRule] = [.youden, .sensitivity(atLeast: 0.90), .sensitivity(atLeast: 0.95),
                                              .specificity(atLeast: 0.90), .specificity(atLeast: 0.95)]

  /// For people: "Youden's J", "sensitivity ≥ 0.90".
  public var displayName: String { OperatingPoints.displayName(name) }

  /// As written in operating_points.csv: `youden`, `sensitivity>=0.90`, `specificity>=0.95`.
  public var name: String {
    switch self {
    case .youden: return "youden"
    case .sensitivity(let t): return "sensitivity>=\(String(format: "%.2f", t))"
    case .specificity(let t): return "specificity>=\(String(format: "%.2f", t))"
    }
  }
}

/// The empirical ROC at every distinct score, as scikit-learn's
/// `roc_curve(y, s, drop_intermediate=False)`: point 0 is the threshold +inf (no case called
/// positive), point k the k-th highest distinct score; `tp[k]` and `fp[k]` count the positive and
/// negative cases scoring >= `thresholds[k]`.
public struct ROCPoints: Sendable {
  public let thresholds: [Double]
  public let tp: [Int]
  public let fp: [Int]
  public let positives: Int
  public let negatives: Int

  public init(scores: [Double], labels: [Bool]) {
    precondition(scores.count == labels.count, "scores and labels must pair up")
    let order = scores.indices.sorted { scores[$0] > scores[$1] }
    var thresholds: [Double] = [.infinity], tp = [0], fp = [0]
    var t = 0, f = 0
    for (k, i) in order.enumerated() {
      if labels[i] { t += 1 } else { f += 1 }
      if k + 1 == order.count || scores[order[k + 1]] != scores[i] {
        thresholds.append(scores[i]); tp.append(t); fp.append(f)
      }
    }
    self.thresholds = thresholds; self.tp = tp; self.fp = fp
    positives = t; negatives = f
  }

  public func sensitivity(_ k: Int) -> Double { Double(tp[k]) / Double(positives) }
  public func specificity(_ k: Int) -> Double { Double(negatives - fp[k]) / Double(negatives) }

  /// The point `rule` picks; nil when a class is missing. Youden's J is compared exactly
  /// (tp·N − fp·P in integers), the first (highest) threshold winning a tie; sensitivity and
  /// specificity are the ratios tp/P and (N − fp)/N compared with the target as floating point, as
  /// `tpr >= 0.9` on scikit-learn's output would.
  public func choose(_ rule: ThresholdRule) -> Int? {
    guard positives > 0, negatives > 0 else { return nil }
    switch rule {
    case .youden:
      var best = 0, bestJ = Int.min
      for k in tp.indices {
        let j = tp[k] * negatives - fp[k] * positives
        if j > bestJ { best = k; bestJ = j }
      }
      return best
    case .sensitivity(let target):
      return tp.indices.first { sensitivity($0) >= target }
    case .specificity(let target):
      return tp.indices.last { specificity($0) >= target }
    }
  }
}

/// A threshold chosen on the tuning predictions of one model and finding.
public struct TunedThreshold: Sendable, Equatable {
  public var model: String
  public var finding: String
  public var rule: String
  public var threshold: Double
  /// Sensitivity and specificity on the tuning cases at that threshold.
  public var sensitivity: Double
  public var specificity: Double
  public var n: Int
  public var nPos: Int
}

/// A value with its bootstrap CI (nil where undefined, e.g. PPV with no case called positive).
public struct Estimate: Sendable, Equatable {
  public var value: Double?
  public var ciLow: Double?
  public var ciHigh: Double?
  public init(value: Double?, ciLow: Double? = nil, ciHigh: Double? = nil) {
    self.value = value; self.ciLow = ciLow; self.ciHigh = ciHigh
  }
}

/// One line of operating_points.csv: a model on a reference and finding at one threshold.
public struct OperatingPointRow: Sendable, Equatable {
  public var model: String
  public var reference: String
  public var finding: String
  public var rule: String
  public var chosenOn: ThresholdSource
  /// +inf when no case is called positive (a specificity target no finite threshold meets).
  public var threshold: Double
  /// On the tuning cases, for thresholds chosen there.
  public var tuneSensitivity: Double?
  public var tuneSpecificity: Double?
  /// On the test cases.
  public var confusion: Confusion
  /// Aligned with `OperatingPoints.metricNames`.
  public var metrics: [Estimate]
  public var n: Int
  public var nPos: Int

  public func metric(_ name: String) -> Estimate? {
    OperatingPoints.metricNames.firstIndex(of: name).map { metrics[$0] }
  }
}

public enum OperatingPoints {
  public static let metricNames = ["sensitivity", "specificity", "ppv", "npv", "f1"]

  static func metrics(_ c: Confusion) -> [Double?] { [c.sensitivity, c.specificity, c.ppv, c.npv, c.f1] }

  /// A rule's name for people: "Youden's J", "sensitivity ≥ 0.90", "fixed".
  static func displayName(_ rule: String) -> String {
    rule == "youden" ? "Youden's J" : rule.replacingOccurrences(of: ">=", with: " ≥ ")
  }
}

/// One model's scores on fixed cases sorted once (descending), so that the confusion matrix at any
/// set of thresholds, for any reweighting of the cases (a bootstrap round), costs one pass.
struct ScoredCases: Sendable {
  let scores: [Double]
  let labels: [Bool]
  /// Case indices in descending score order.
  let order: [Int32]
  /// Scores in that order.
  let sorted: [Double]
  /// Per position in `order`: the last of its tie group.
  let groupEnd: [Bool]

  init(scores: [Double], labels: [Bool]) {
    precondition(scores.count == labels.count, "scores and labels must pair up")
    self.scores = scores; self.labels = labels
    let o = scores.indices.sorted { scores[$0] > scores[$1] }
    order = o.map { Int32($0) }
    sorted = o.map { scores[$0] }
    groupEnd = o.indices.map { k in k + 1 == o.count || scores[o[k + 1]] != scores[o[k]] }
  }

  /// The same from a `Ranking` of these scores, reusing its sort.
  init(ranking: Ranking, scores: [Double], labels: [Bool]) {
    precondition(ranking.count == scores.count && scores.count == labels.count, "the ranking must be of these cases")
    self.scores = scores; self.labels = labels
    order = ranking.order
    sorted = order.map { scores[Int($0)] }
    let sorted = self.sorted
    groupEnd = sorted.indices.map { k in k + 1 == sorted.count || sorted[k + 1] != sorted[k] }
  }

  var count: Int { scores.count }

  /// How many cases score >= t: they are the first that many of `order`.
  func cut(atThreshold t: Double) -> Int {
    var lo = 0, hi = sorted.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if sorted[mid] >= t { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  /// The threshold that calls the first `cut` cases of `order` positive.
  func threshold(forCut cut: Int) -> Double { cut == 0 ? .infinity : sorted[cut - 1] }

  /// Confusion matrices at the given cuts (sorted ascending), and at the cut that the test ROC gives
  /// for each specificity target: the largest cut at a tie-group boundary whose (weighted)
  /// specificity is still >= the target, i.e. the best sensitivity at that specificity.
  /// `weights` nil counts every case once.
  func confusions(cuts: [Int], specificityTargets: [Double], weights: UnsafeBufferPointer<Int32>?)
    -> (atCuts: [Confusion], atTargets: [(cut: Int, confusion: Confusion)]) {
    var totalPos = 0, total = 0
    if let w = weights {
      for i in 0..<count { let c = Int(w[i]); total += c; if labels[i] { totalPos += c } }
    } else {
      total = count; for l in labels where l { totalPos += 1 }
    }
    let totalNeg = total - totalPos
    func confusion(_ tp: Int, _ fp: Int) -> Confusion { Confusion(tp: tp, fp: fp, fn: totalPos - tp, tn: totalNeg - fp) }
    func meets(_ fp: Int, _ target: Double) -> Bool { totalNeg > 0 && Double(totalNeg - fp) / Double(totalNeg) >= target }
    var atCuts: [Confusion] = []
    atCuts.reserveCapacity(cuts.count)
    var best = specificityTargets.map { _ in (cut: 0, confusion: confusion(0, 0)) }  // no case called positive
    var open = specificityTargets.map { meets(0, $0) }
    var anyOpen = open.contains(true)
    var next = 0
    var tp = 0, fp = 0
    order.withUnsafeBufferPointer { order in
      for k in 0..<order.count {
        while next < cuts.count, cuts[next] == k { atCuts.append(confusion(tp, fp)); next += 1 }
        if next == cuts.count && !anyOpen { return }
        let i = Int(order[k])
        let w = weights.map { Int($0[i]) } ?? 1
        if labels[i] { tp += w } else { fp += w }
        if anyOpen && groupEnd[k] {
          anyOpen = false
          for t in open.indices where open[t] {
            if meets(fp, specificityTargets[t]) { best[t] = (k + 1, confusion(tp, fp)); anyOpen = true } else { open[t] = false }
          }
        }
      }
    }
    while atCuts.count < cuts.count { atCuts.append(confusion(tp, fp)) }
    return (atCuts, best)
  }
}
