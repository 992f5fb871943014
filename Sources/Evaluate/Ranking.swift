/// Scores of one model on fixed cases, sorted once (descending) with tie groups marked, so
/// AUROC and AUPRC of any reweighting of the cases (a bootstrap round) cost one O(n) pass.
public struct Ranking: Sendable {
  /// Case indices in descending score order.
  let order: [Int32]
  /// Label of each position in `order`.
  let positive: [Bool]
  /// Start of each tie group in `order`, plus `count` at the end.
  let groupStarts: [Int32]
  /// Per position, one word for the bootstrap's pass (small enough that 7 models stay in
  /// cache): case index (bits 0-29), positive (bit 30), last of its tie group (bit 31).
  let packed: [UInt32]
  static let indexMask: UInt32 = (1 << 30) - 1
  static let positiveFlag: UInt32 = 1 << 30
  static let lastFlag: UInt32 = 1 << 31
  public var count: Int { order.count }

  public init(scores: [Double], labels: [Bool]) {
    precondition(scores.count == labels.count, "scores and labels must pair up")
    precondition(scores.count < 1 << 30, "at most 2^30 cases")
    let sorted = scores.indices.sorted { scores[$0] > scores[$1] }
    order = sorted.map { Int32($0) }
    positive = sorted.map { labels[$0] }
    var starts: [Int32] = []
    starts.reserveCapacity(scores.count + 1)
    for (k, i) in sorted.enumerated() where k == 0 || scores[sorted[k - 1]] != scores[i] {
      starts.append(Int32(k))
    }
    starts.append(Int32(scores.count))
    groupStarts = starts
    var words = sorted.map { i in UInt32(i) | (labels[i] ? Ranking.positiveFlag : 0) }
    for g in starts.dropFirst() where g > 0 { words[Int(g) - 1] |= Ranking.lastFlag }
    packed = words
  }

  /// AUROC (ties count half, as scikit-learn's roc_auc_score) and AUPRC (average precision,
  /// step-wise, as average_precision_score) with every case counted once. Nil when one class is absent.
  public func areas() -> Areas? {
    [Int32](repeating: 1, count: count).withUnsafeBufferPointer { areas(weights: $0) }
  }

  /// The same with case `i` counted `weights[i]` times (a bootstrap resample).
  public func areas(weights: UnsafeBufferPointer<Int32>) -> Areas? {
    var totalPos = 0, total = 0
    for k in 0..<count {
      let w = Int(weights[Int(order[k])])
      total += w
      if positive[k] { totalPos += w }
    }
    return areas(weights: weights, totalPos: totalPos, totalNeg: total - totalPos)
  }

  /// As `areas(weights:)` when the weighted class totals are already known (saves a pass).
  /// This is the bootstrap's inner loop: one branch-light pass in score order.
  public func areas(weights: UnsafeBufferPointer<Int32>, totalPos: Int, totalNeg: Int) -> Areas? {
    guard totalPos > 0, totalNeg > 0 else { return nil }
    var twiceAUCNumerator = 0  // sum over tie groups of pos * (2 * negBelow + negTied), exact in Int
    var precisionSum = 0.0     // sum over tie groups of pos * precision at that threshold
    var tp = 0, fp = 0
    packed.withUnsafeBufferPointer { entries in
      var p = 0, t = 0
      for e in entries {
        let w = Int(weights[Int(e & Ranking.indexMask)])
        t += w
        p += w & -Int((e >> 30) & 1)  // branch-free: add w for positives only
        if e & Ranking.lastFlag != 0 {
          let n = t - p
          tp += p; fp += n
          if p > 0 {
            twiceAUCNumerator += p * (2 * (totalNeg - fp) + n)
            precisionSum += Double(p) * Double(tp) / Double(tp + fp)
          }
          p = 0; t = 0
        }
      }
    }
    return Areas(auroc: Double(twiceAUCNumerator) / (2 * Double(totalPos) * Double(totalNeg)),
                 auprc: precisionSum / Double(totalPos))
  }

  /// ROC and PR curve points (one per distinct threshold), for plots.
  public func curves() -> Curves {
    var totalPos = 0
    for p in positive where p { totalPos += 1 }
    let totalNeg = count - totalPos
    var roc: [(Double, Double)] = [(0, 0)]
    var pr: [(Double, Double)] = []
    var tp = 0, fp = 0
    for g in 0..<(groupStarts.count - 1) {
      for k in Int(groupStarts[g])..<Int(groupStarts[g + 1]) {
        if positive[k] { tp += 1 } else { fp += 1 }
      }
      roc.append((totalNeg > 0 ? Double(fp) / Double(totalNeg) : 0, totalPos > 0 ? Double(tp) / Double(totalPos) : 0))
      pr.append((totalPos > 0 ? Double(tp) / Double(totalPos) : 0, Double(tp) / Double(tp + fp)))
    }
    return Curves(roc: roc, pr: pr)
  }
}

public struct Areas: Sendable, Equatable {
  public var auroc: Double
  public var auprc: Double
}

/// Curve points as (x, y): ROC is (false positive rate, true positive rate), PR is (recall, precision).
public struct Curves: Sendable {
  public var roc: [(Double, Double)]
  public var pr: [(Double, Double)]
}

/// AUROC as scikit-learn's roc_auc_score (nil when a class is missing).
public func auroc(scores: [Double], labels: [Bool]) -> Double? { Ranking(scores: scores, labels: labels).areas()?.auroc }
/// Average precision as scikit-learn's average_precision_score (nil when a class is missing).
public func auprc(scores: [Double], labels: [Bool]) -> Double? { Ranking(scores: scores, labels: labels).areas()?.auprc }
