import Foundation

/// One model's operating points and calibration for a reweighting of its cases (a bootstrap
/// round) in one pass over the descending score order, instead of one pass per statistic.
///
/// Everything the round needs is a running sum read at fixed positions of that order: a
/// threshold's confusion matrix at its cut; an ECE bin as the difference of Σ w (y − p) at its two
/// boundaries (the equal-width edges k/bins, and the equal-mass edges cut once on the unweighted
/// test scores, so every round bins alike); the test-ROC specificity targets at the tie-group
/// ends, checked while the pass is still above them. `ScoredCases` and `CalibrationCases` compute
/// the same numbers one statistic at a time; they give the point estimates, and the tests hold
/// this to them.
struct RoundStatistics: Sendable {
  /// Case indices in descending score order (the ranking's).
  let order: [Int32]
  /// y − p and (y − p)² at each position in fixed point (× 2^scaleBits), so the pass sums in
  /// integers, exactly and without waiting on floating-point adds. |Σ w (y − p)| <= Σ w = the case
  /// count, so the sums stay below 2^62; the rounding is below 2^−scaleBits a case (~1e-12).
  let residual: [Int]
  let squaredResidual: [Int]
  let scaleBits: Int
  /// Cut of each threshold rule (cases called positive: the first `cut` of the order).
  let cuts: [Int]
  let targets: [Double]
  /// Nil: no calibration (scores are not probabilities).
  let bins: Int?
  /// Cases scoring above each inner edge (k = 1..<bins), equal-width then equal-mass.
  let uniformAbove: [Int]
  let quantileAbove: [Int]
  /// Every position read (cuts and bin boundaries), ascending, without repeats.
  let checkpoints: [Int]
  /// Points of the pointwise curve bands (0: none): the ROC's true positive rate at false
  /// positive rates 0, 1/(G−1), ..., 1 and the PR curve's precision at recalls on the same grid
  /// (see `CurveGrid` for the rules).
  let gridPoints: Int

  init(scored: ScoredCases, cuts: [Int], targets: [Double], bins: Int?, gridPoints: Int = 0) {
    precondition(gridPoints == 0 || gridPoints >= 2, "a curve grid needs both ends")
    self.gridPoints = gridPoints
    order = scored.order
    scaleBits = min(40, 61 - (Int.bitWidth - scored.count.leadingZeroBitCount))
    let scale = Double(1 << scaleBits)
    let r = scored.order.map { i in (scored.labels[Int(i)] ? 1 : 0) - scored.scores[Int(i)] }
    residual = r.map { Int(($0 * scale).rounded()) }
    squaredResidual = r.map { Int(($0 * $0 * scale).rounded()) }
    self.cuts = cuts; self.targets = targets; self.bins = bins
    if let bins {
      let step = 1.0 / Double(bins)
      uniformAbove = (1..<bins).map { scored.countAbove(Double($0) * step) }
      let edges = CalibrationCases(scored).quantileEdges(bins: bins, weights: nil)
      quantileAbove = (1..<bins).map { scored.countAbove(edges[$0]) }
    } else {
      uniformAbove = []; quantileAbove = []
    }
    checkpoints = Array(Set(cuts + uniformAbove + quantileAbove + [0, scored.count])).sorted()
  }

  /// How many values `write` fills: five operating-point metrics per cut and per target, then
  /// Brier, ECE (uniform), ECE (quantile) when calibrating, then the ROC grid and the PR grid.
  var width: Int { calibrationOffset + (bins == nil ? 0 : 3) + 2 * gridPoints }
  var calibrationOffset: Int { (cuts.count + targets.count) * OperatingPoints.metricNames.count }
  var gridOffset: Int { calibrationOffset + (bins == nil ? 0 : 3) }

  /// The running sums at each checkpoint, reused across rounds (one per thread).
  struct Scratch {
    var weight: [Int], positives: [Int], residual: [Int]
    /// The curve grid's per-round limits (`CurveGrid`).
    var rocFinal: [Int], prNeed: [Int]
    init(count: Int, gridPoints: Int) {
      weight = [Int](repeating: 0, count: count)
      positives = [Int](repeating: 0, count: count)
      residual = [Int](repeating: 0, count: count)
      rocFinal = [Int](repeating: 0, count: gridPoints)
      prNeed = [Int](repeating: 0, count: gridPoints)
    }
  }

  func makeScratch() -> Scratch { Scratch(count: checkpoints.count, gridPoints: gridPoints) }

  /// AUROC and AUPRC of `ranking` for case counts `weights` (exactly as
  /// `Ranking.areas(weights:totalPos:totalNeg:)`, in the same loop, so the counts are gathered
  /// once), and `width` values written into `out` (NaN where a metric is undefined). `ranking`
  /// must be the one this was built from (the same order).
  func areas(_ ranking: Ranking, weights: UnsafeBufferPointer<Int32>, totalPos: Int, totalNeg: Int, scratch: inout Scratch,
             into out: UnsafeMutableBufferPointer<Double>) -> Areas {
    precondition(ranking.count == order.count, "the ranking must be the one of these cases")
    let total = totalPos + totalNeg
    func meets(_ fp: Int, _ target: Double) -> Bool { totalNeg > 0 && Double(totalNeg - fp) / Double(totalNeg) >= target }
    // Per target: the most false positives that still meet it (-1: none does, not even 0), found
    // once by bisection since specificity falls as fp grows; and the confusion at the last group
    // end within it (no case called positive at first).
    let fpLimit = targets.map { target -> Int in
      guard meets(0, target) else { return -1 }
      var lo = 0, hi = totalNeg  // meets(lo) holds
      while lo < hi {
        let mid = (lo + hi + 1) / 2
        if meets(mid, target) { lo = mid } else { hi = mid - 1 }
      }
      return lo
    }
    var best = [(tp: Int, fp: Int)](repeating: (0, 0), count: targets.count)
    var sums = (twiceAUC: 0, precision: 0.0, brier: 0)
    let grid = CurveGrid(points: gridPoints, totalPos: totalPos, totalNeg: totalNeg)
    grid.limits(rocFinal: &scratch.rocFinal, prNeed: &scratch.prNeed)
    let gridOut = UnsafeMutableBufferPointer(rebasing: out[gridOffset..<(gridOffset + 2 * gridPoints)])
    scratch.weight.withUnsafeMutableBufferPointer { cw in
      scratch.positives.withUnsafeMutableBufferPointer { ct in
        scratch.residual.withUnsafeMutableBufferPointer { cs in
          ranking.packed.withUnsafeBufferPointer { packed in
            residual.withUnsafeBufferPointer { residual in
              squaredResidual.withUnsafeBufferPointer { squared in
                checkpoints.withUnsafeBufferPointer { checkpoints in
                  scratch.rocFinal.withUnsafeBufferPointer { rocFinal in
                    scratch.prNeed.withUnsafeBufferPointer { prNeed in
                      sums = RoundStatistics.pass(packed: packed, residual: residual, squared: squared, weights: weights, totalNeg: totalNeg,
                                                  checkpoints: checkpoints, weightAt: cw, positivesAt: ct, residualAt: cs,
                                                  fpLimit: fpLimit, best: &best,
                                                  grid: grid, rocFinal: rocFinal, prNeed: prNeed, gridOut: gridOut)
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    func slot(_ position: Int) -> Int {
      var lo = 0, hi = checkpoints.count - 1
      while lo < hi {
        let mid = (lo + hi) / 2
        if checkpoints[mid] < position { lo = mid + 1 } else { hi = mid }
      }
      return lo
    }
    var o = 0
    func put(tp: Int, fp: Int) {
      for v in OperatingPoints.metrics(Confusion(tp: tp, fp: fp, fn: totalPos - tp, tn: totalNeg - fp)) { out[o] = v ?? .nan; o += 1 }
    }
    for c in cuts {
      let k = slot(c)
      put(tp: scratch.positives[k], fp: scratch.weight[k] - scratch.positives[k])
    }
    for j in targets.indices { put(tp: best[j].tp, fp: best[j].fp) }
    if bins != nil {
      let scale = Double(1 << scaleBits)
      out[o] = Double(sums.brier) / scale / Double(total); o += 1
      // ECE = Σ_b |Σ_{i in b} w_i (y_i − p_i)| / Σ w_i; bin b spans positions [above(e_{b+1}), above(e_b)).
      func ece(_ above: [Int]) -> Double {
        var sum = 0, start = 0
        for a in above.reversed() {
          let s = scratch.residual[slot(a)]
          sum += abs(s - start); start = s
        }
        sum += abs(scratch.residual[checkpoints.count - 1] - start)
        return Double(sum) / scale / Double(total)
      }
      out[o] = ece(uniformAbove); o += 1
      out[o] = ece(quantileAbove); o += 1
    }
    return Areas(auroc: Double(sums.twiceAUC) / (2 * Double(totalPos) * Double(totalNeg)), auprc: sums.precision / Double(totalPos))
  }
}

extension RoundStatistics {
  /// The loop of `Ranking.areas(weights:totalPos:totalNeg:)`, unchanged in what it computes for
  /// the areas, with the running sums of this type alongside: at each checkpoint the cumulative
  /// weight, positive weight and Σ w (y − p); at each tie-group end, while a specificity target is
  /// still met, the confusion there. Returns the areas' sums and Σ w (y − p)², fixed point.
  static func pass(packed: UnsafeBufferPointer<UInt32>, residual: UnsafeBufferPointer<Int>, squared: UnsafeBufferPointer<Int>,
                   weights: UnsafeBufferPointer<Int32>, totalNeg: Int, checkpoints: UnsafeBufferPointer<Int>,
                   weightAt: UnsafeMutableBufferPointer<Int>, positivesAt: UnsafeMutableBufferPointer<Int>,
                   residualAt: UnsafeMutableBufferPointer<Int>, fpLimit: [Int],
                   best: inout [(tp: Int, fp: Int)], grid: CurveGrid, rocFinal: UnsafeBufferPointer<Int>,
                   prNeed: UnsafeBufferPointer<Int>, gridOut: UnsafeMutableBufferPointer<Double>) -> (twiceAUC: Int, precision: Double, brier: Int) {
    var twiceAUCNumerator = 0  // as in Ranking: sum over tie groups of pos * (2 * negBelow + negTied)
    var precisionSum = 0.0
    var tp = 0, fp = 0  // over finished tie groups
    var p = 0, t = 0    // within the current one
    var s = 0, b = 0
    let widest = fpLimit.max() ?? -1
    // The curve grid: the next ROC point is settled once fp reaches rocFinal[gi], the next PR
    // point once tp reaches prNeed[gj] (Int.max: none left), so a tie group costs two compares.
    let points = grid.points
    var gi = 0, gj = 0
    var nextROC = points > 0 ? rocFinal[0] : Int.max, nextPR = points > 0 ? prNeed[0] : Int.max
    var k = 0
    for next in 0..<checkpoints.count {  // the last checkpoint is packed.count
      let stop = checkpoints[next]
      while k < stop {
        let e = packed[k]
        let w = Int(weights[Int(e & Ranking.indexMask)])
        t += w
        p += w & -Int((e >> 30) & 1)
        s &+= w &* residual[k]
        b &+= w &* squared[k]
        if e & Ranking.lastFlag != 0 {
          let n = t - p
          tp += p; fp += n
          if p > 0 {
            twiceAUCNumerator += p * (2 * (totalNeg - fp) + n)
            precisionSum += Double(p) * Double(tp) / Double(tp + fp)
          }
          if fp >= nextROC {
            while gi < points && fp >= rocFinal[gi] {
              gridOut[gi] = grid.rocValue(gi, from: (tp - p, fp - n), to: (tp, fp))
              gi += 1
            }
            nextROC = gi < points ? rocFinal[gi] : Int.max
          }
          if tp >= nextPR {
            let precision = Double(tp) / Double(tp + fp)
            while gj < points && tp >= prNeed[gj] { gridOut[points + gj] = precision; gj += 1 }
            nextPR = gj < points ? prNeed[gj] : Int.max
          }
          p = 0; t = 0
          if fp <= widest {
            for j in fpLimit.indices where fp <= fpLimit[j] { best[j] = (tp, fp) }
          }
        }
        k += 1
      }
      weightAt[next] = tp + fp + t; positivesAt[next] = tp + p; residualAt[next] = s
    }
    // FPR 1 (fp never passes totalNeg): every case called positive.
    while gi < points { gridOut[gi] = grid.totalPos > 0 ? Double(tp) / Double(grid.totalPos) : .nan; gi += 1 }
    while gj < points { gridOut[points + gj] = .nan; gj += 1 }
    return (twiceAUCNumerator, precisionSum, b)
  }
}

extension ScoredCases {
  /// How many cases score > v: the first that many of `order`.
  func countAbove(_ v: Double) -> Int {
    var lo = 0, hi = sorted.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if sorted[mid] > v { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }
}

/// The fixed grid on which ROC and PR curves are read in every bootstrap round, for pointwise
/// bands (the 2.5th and 97.5th percentile of the rounds' values at each grid point).
///
/// - ROC: the true positive rate at false positive rate x = g/(G−1), on the curve as plotted and
///   as the AUROC integrates it (straight segments between tie-group ends, so ties are diagonal);
///   on a vertical stretch (positives only) at x, the top of it.
/// - PR: the precision at the first threshold (tie-group end) whose recall reaches r = g/(G−1)
///   (at r = 0, the first that finds a positive): the step curve whose area is the average
///   precision (scikit-learn's `average_precision_score`).
///
/// Counts are the round's weights (case multiplicities), so comparisons stay exact in integers:
/// a ROC point x is settled by the first tie-group end with fp > x·neg, i.e. fp >= ⌊x·neg⌋ + 1
/// (computed as ⌊g·neg/(G−1)⌋ + 1), and a PR point needs tp >= ⌈g·pos/(G−1)⌉ (at least 1).
struct CurveGrid: Sendable {
  let points: Int
  let totalPos: Int
  let totalNeg: Int

  func limits(rocFinal: inout [Int], prNeed: inout [Int]) {
    guard points > 0 else { return }
    let last = points - 1
    for g in 0..<points {
      rocFinal[g] = g * totalNeg / last + 1
      prNeed[g] = max(1, (g * totalPos + last - 1) / last)
    }
  }

  /// The grid's x values (false positive rates, recalls).
  static func xs(_ points: Int) -> [Double] { (0..<points).map { Double($0) / Double(points - 1) } }

  /// TPR at grid point `g`, on the segment from the previous tie-group end to this one.
  @inline(__always)
  func rocValue(_ g: Int, from a: (tp: Int, fp: Int), to b: (tp: Int, fp: Int)) -> Double {
    let x = Double(g) * Double(totalNeg) / Double(points - 1)
    let tp = b.fp == a.fp ? Double(b.tp) : Double(a.tp) + Double(b.tp - a.tp) * (x - Double(a.fp)) / Double(b.fp - a.fp)
    return tp / Double(totalPos)
  }
}
