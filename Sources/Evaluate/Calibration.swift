import Foundation

/// How the reliability bins are cut, named as scikit-learn's `calibration_curve` strategies.
public enum BinStrategy: String, Sendable, CaseIterable, Codable {
  /// Equal-width bins on [0, 1].
  case uniform
  /// Equal-mass bins: edges at the scores' quantiles (numpy's linear percentile).
  case quantile
}

/// One line of calibration.csv.
public struct CalibrationRow: Sendable, Equatable {
  public var model: String
  public var reference: String
  public var finding: String
  /// `brier` or `ece`.
  public var metric: String
  /// The bins of an ECE (nil for Brier).
  public var strategy: BinStrategy?
  public var bins: Int?
  public var value: Double
  public var ciLow: Double?
  public var ciHigh: Double?
  public var n: Int
  public var nPos: Int
}

/// One non-empty bin of a reliability diagram (one line of reliability.csv).
public struct ReliabilityBin: Sendable, Equatable {
  public var model: String
  public var reference: String
  public var finding: String
  public var strategy: BinStrategy
  /// The bin's position among all `bins` (empty ones included) and its edges.
  public var bin: Int
  public var lower: Double
  public var upper: Double
  public var count: Int
  /// Mean score and observed share of positives in the bin: scikit-learn's prob_pred and prob_true.
  public var meanPredicted: Double
  public var fractionPositive: Double
}

/// A model's probabilities on fixed cases, sorted once (ascending) for the per-round passes of the
/// calibration bootstrap.
struct CalibrationCases: Sendable {
  let scores: [Double]
  let labels: [Bool]
  /// Case indices in ascending score order.
  let ascending: [Int32]

  init(scores: [Double], labels: [Bool]) {
    precondition(scores.count == labels.count, "scores and labels must pair up")
    self.scores = scores; self.labels = labels
    ascending = scores.indices.sorted { scores[$0] < scores[$1] }.map { Int32($0) }
  }

  /// The same from the descending order of `ScoredCases` (reversed; within ties any order serves).
  init(_ scored: ScoredCases) {
    scores = scored.scores; labels = scored.labels
    ascending = scored.order.reversed()
  }

  /// Brier score (1/n) Σ (p_i − y_i)², as `sklearn.metrics.brier_score_loss`; each case counted
  /// `weights[i]` times when given.
  func brier(weights: UnsafeBufferPointer<Int32>?) -> Double {
    var sum = 0.0, total = 0
    for i in scores.indices {
      let w = weights.map { Int($0[i]) } ?? 1
      let d = scores[i] - (labels[i] ? 1 : 0)
      sum += Double(w) * d * d
      total += w
    }
    return sum / Double(total)
  }

  /// Per-bin totals for `bins` bins. Edges e_0 <= ... <= e_bins: uniform e_k = k/bins (as
  /// `np.linspace(0, 1, bins + 1)`), quantile e_k = the (k/bins)-quantile of the (weighted) scores
  /// (as `np.percentile`, linear). A case with score p falls in bin b when e_b < p <= e_{b+1}, the
  /// first bin also taking p = e_0 — `np.searchsorted(edges[1:-1], p)`, as `calibration_curve`.
  func binned(_ strategy: BinStrategy, bins: Int, weights: UnsafeBufferPointer<Int32>?)
    -> (edges: [Double], count: [Int], sumScore: [Double], sumPositive: [Double]) {
    binned(edges: edges(strategy, bins: bins, weights: weights), weights: weights)
  }

  func edges(_ strategy: BinStrategy, bins: Int, weights: UnsafeBufferPointer<Int32>?) -> [Double] {
    switch strategy {
    case .uniform:
      let step = 1.0 / Double(bins)
      return (0..<bins).map { Double($0) * step } + [1]
    case .quantile:
      return quantileEdges(bins: bins, weights: weights)
    }
  }

  /// Per-bin totals for the bins between `edges` (bins + 1 of them).
  func binned(edges: [Double], weights: UnsafeBufferPointer<Int32>?)
    -> (edges: [Double], count: [Int], sumScore: [Double], sumPositive: [Double]) {
    let bins = edges.count - 1
    var count = [Int](repeating: 0, count: bins)
    var sumScore = [Double](repeating: 0, count: bins), sumPositive = [Double](repeating: 0, count: bins)
    var b = 0
    for i32 in ascending {
      let i = Int(i32)
      let w = weights.map { Int($0[i]) } ?? 1
      if w == 0 { continue }
      let p = scores[i]
      while b < bins - 1, edges[b + 1] < p { b += 1 }
      count[b] += w
      sumScore[b] += Double(w) * p
      if labels[i] { sumPositive[b] += Double(w) }
    }
    return (edges, count, sumScore, sumPositive)
  }

  /// Expected calibration error ECE = Σ_b (n_b / n) |ȳ_b − p̄_b| over the non-empty bins b, with
  /// n_b cases, mean label ȳ_b and mean score p̄_b: the average gap between predicted and observed
  /// risk, weighted by how many cases see it.
  func ece(_ strategy: BinStrategy, bins: Int, weights: UnsafeBufferPointer<Int32>?) -> Double {
    ece(edges: edges(strategy, bins: bins, weights: weights), weights: weights)
  }

  /// The same with the bin edges given (the bootstrap keeps the test set's equal-mass edges).
  func ece(edges: [Double], weights: UnsafeBufferPointer<Int32>?) -> Double {
    let t = binned(edges: edges, weights: weights)
    var sum = 0.0, total = 0
    for b in 0..<(edges.count - 1) where t.count[b] > 0 {
      sum += abs(t.sumPositive[b] - t.sumScore[b])  // n_b |ȳ_b − p̄_b|
      total += t.count[b]
    }
    return sum / Double(total)
  }

  /// The edges of equal-mass bins: numpy.percentile(scores, linspace(0, 1, bins + 1) * 100) with
  /// its floating-point steps, so that a score lying exactly on an edge falls where it does in
  /// scikit-learn. With weights, the percentile of the sample with case i repeated weights[i] times.
  func quantileEdges(bins: Int, weights: UnsafeBufferPointer<Int32>?) -> [Double] {
    var total = 0
    if let w = weights { for i in scores.indices { total += Int(w[i]) } } else { total = scores.count }
    let step = 1.0 / Double(bins)
    // (index below, index above, gamma) of each quantile in the expanded sorted sample.
    let spots: [(Int, Int, Double)] = (0...bins).map { k in
      let q = (k == bins ? 1.0 : Double(k) * step) * 100 / 100
      let v = Double(total - 1) * q
      if v >= Double(total - 1) { return (total - 1, total - 1, 0) }
      let below = v.rounded(.down)
      return (Int(below), Int(below) + 1, v - below)
    }
    // Values at the needed positions, walking the ascending order once.
    let wanted = spots.flatMap { [$0.0, $0.1] }.sorted()
    var value: [Int: Double] = [:]
    var seen = 0, next = 0
    for i32 in ascending where next < wanted.count {
      let i = Int(i32)
      seen += weights.map { Int($0[i]) } ?? 1
      while next < wanted.count, wanted[next] < seen { value[wanted[next]] = scores[i]; next += 1 }
    }
    return spots.map { below, above, gamma in
      let a = value[below]!, b = value[above]!
      let diff = b - a
      return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma  // numpy's _lerp
    }
  }

  /// The non-empty bins of a reliability diagram on every case once.
  func reliability(_ strategy: BinStrategy, bins: Int) -> [(bin: Int, lower: Double, upper: Double, count: Int, meanPredicted: Double, fractionPositive: Double)] {
    let t = binned(strategy, bins: bins, weights: nil)
    return (0..<bins).filter { t.count[$0] > 0 }.map { b in
      (b, t.edges[b], t.edges[b + 1], t.count[b], t.sumScore[b] / Double(t.count[b]), t.sumPositive[b] / Double(t.count[b]))
    }
  }

  /// Whether every score is a probability (calibration means nothing for logits or ranks).
  var scoresAreProbabilities: Bool { scores.allSatisfy { $0 >= 0 && $0 <= 1 } }
}
