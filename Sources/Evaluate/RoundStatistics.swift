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
  /// y − p at each position, and (y − p)² of each case (case order, for the Brier score, which
  /// needs no order), in fixed point (× 2^scaleBits), so the rounds sum in integers, exactly and
  /// without waiting on floating-point adds. |Σ w (y − p)| <= Σ w = the case count, so the sums
  /// stay below 2^62; the rounding is below 2^−scaleBits a case (~1e-12).
  let residual: [Int]
  let squaredResidualByCase: [Int]
  /// Specificity targets by ascending false-positive limit (the order the pass meets them in).
  let targetsByLimit: [Int]
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
    squaredResidualByCase = zip(scored.scores, scored.labels).map { p, y in
      let d = (y ? 1 : 0) - p
      return Int((d * d * scale).rounded())
    }
    // A higher specificity target allows fewer false positives, whatever the round's totals.
    targetsByLimit = targets.indices.sorted { (targets[$0], $0) > (targets[$1], $1) }
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

    /// The round's grid limits, written in place (no copy of the arrays).
    mutating func setGridLimits(_ grid: CurveGrid) { grid.limits(rocFinal: &rocFinal, prNeed: &prNeed) }
  }

  func makeScratch() -> Scratch { Scratch(count: checkpoints.count, gridPoints: gridPoints) }

  /// AUROC and AUPRC of `ranking` for case counts `weights` (exactly as
  /// `Ranking.areas(weights:totalPos:totalNeg:)`, in the same loop, so the counts are gathered
  /// once), and `width` values written into `out` (NaN where a metric is undefined). `ranking`
  /// must be the one this was built from (the same order).
  func areas(_ ranking: Ranking, weights: UnsafeBufferPointer<Int32>, totalPos: Int, totalNeg: Int, scratch: inout Scratch,
             into out: UnsafeMutableBufferPointer<Double>) -> Areas {
    precondition(ranking.count == order.count, "the ranking must be the one of these cases")
    let limits = specificityLimits(totalNeg: totalNeg)
    var best = [(tp: Int, fp: Int)](repeating: (0, 0), count: targets.count)
    var sums = (twiceAUC: 0, precision: 0.0)
    let grid = CurveGrid(points: gridPoints, totalPos: totalPos, totalNeg: totalNeg)
    scratch.setGridLimits(grid)
    let gridOut = UnsafeMutableBufferPointer(rebasing: out[gridOffset..<(gridOffset + 2 * gridPoints)])
    scratch.weight.withUnsafeMutableBufferPointer { cw in
      scratch.positives.withUnsafeMutableBufferPointer { ct in
        scratch.residual.withUnsafeMutableBufferPointer { cs in
          ranking.packed.withUnsafeBufferPointer { packed in
            residual.withUnsafeBufferPointer { residual in
              checkpoints.withUnsafeBufferPointer { checkpoints in
                best.withUnsafeMutableBufferPointer { best in
                  var events = PassEvents(grid: grid, rocFinal: scratch.rocFinal, prNeed: scratch.prNeed, gridOut: gridOut,
                                          limits: limits, targetsByLimit: targetsByLimit, best: best)
                  sums = RoundStatistics.pass(packed: packed, residual: residual, weights: weights, totalPos: totalPos, totalNeg: totalNeg,
                                              checkpoints: checkpoints, weightAt: cw, positivesAt: ct, residualAt: cs, events: &events)
                }
              }
            }
          }
        }
      }
    }
    // Σ w (y − p)² needs no order: summed over the cases as they are, where the counts lie.
    var brier = 0
    if bins != nil {
      squaredResidualByCase.withUnsafeBufferPointer { sq in
        for i in 0..<sq.count { brier &+= Int(weights[i]) &* sq[i] }
      }
    }
    write(totalPos: totalPos, totalNeg: totalNeg, weightAt: scratch.weight, positivesAt: scratch.positives, residualAt: scratch.residual,
          squaredResidual: brier, best: best, into: out)
    return Areas(auroc: Double(sums.twiceAUC) / (2 * Double(totalPos) * Double(totalNeg)), auprc: sums.precision / Double(totalPos))
  }

  /// Per target, in the order the pass meets them (`targetsByLimit`): the most false positives
  /// that still meet it (-1: none does, not even 0), found by bisection since specificity falls
  /// as false positives grow.
  func specificityLimits(totalNeg: Int) -> [Int] {
    func meets(_ fp: Int, _ target: Double) -> Bool { totalNeg > 0 && Double(totalNeg - fp) / Double(totalNeg) >= target }
    return targetsByLimit.map { targets[$0] }.map { target -> Int in
      guard meets(0, target) else { return -1 }
      var lo = 0, hi = totalNeg  // meets(lo) holds
      while lo < hi {
        let mid = (lo + hi + 1) / 2
        if meets(mid, target) { lo = mid } else { hi = mid - 1 }
      }
      return lo
    }
  }

  /// The round's operating points and calibration from what its pass gathered: the cumulative
  /// weight, positive weight and Σ w (y − p) at each checkpoint, Σ w (y − p)² (all fixed point),
  /// and the confusion at each specificity target. Writes the values `width` counts up to the
  /// curve grid (the pass's events wrote that).
  func write(totalPos: Int, totalNeg: Int, weightAt: [Int], positivesAt: [Int], residualAt: [Int], squaredResidual: Int,
             best: [(tp: Int, fp: Int)], into out: UnsafeMutableBufferPointer<Double>) {
    let total = totalPos + totalNeg
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
      put(tp: positivesAt[k], fp: weightAt[k] - positivesAt[k])
    }
    for j in targets.indices { put(tp: best[j].tp, fp: best[j].fp) }
    guard bins != nil else { return }
    let scale = Double(1 << scaleBits)
    out[o] = Double(squaredResidual) / scale / Double(total); o += 1
    // ECE = Σ_b |Σ_{i in b} w_i (y_i − p_i)| / Σ w_i; bin b spans positions [above(e_{b+1}), above(e_b)).
    func ece(_ above: [Int]) -> Double {
      var sum = 0, start = 0
      for a in above.reversed() {
        let s = residualAt[slot(a)]
        sum += abs(s - start); start = s
      }
      sum += abs(residualAt[checkpoints.count - 1] - start)
      return Double(sum) / scale / Double(total)
    }
    out[o] = ece(uniformAbove); o += 1
    out[o] = ece(quantileAbove); o += 1
  }
}

extension RoundStatistics {
  /// The loop of `Ranking.areas(weights:totalPos:totalNeg:)`, unchanged in what it computes for
  /// the areas, with the running sums of this type alongside: at each checkpoint the cumulative
  /// weight, positive weight and Σ w (y − p). Whatever happens only at a few tie-group ends (a
  /// specificity limit passed, a curve-grid point settled) costs one compare here and is done in
  /// `PassEvents`, so the loop's running sums all stay in registers (with them inline, Σ w (y − p)
  /// was spilled to the stack and the pass took twice as long as `Ranking`'s).
  /// Returns the areas' sums.
  static func pass(packed: UnsafeBufferPointer<UInt32>, residual: UnsafeBufferPointer<Int>, weights: UnsafeBufferPointer<Int32>,
                   totalPos: Int, totalNeg: Int, checkpoints: UnsafeBufferPointer<Int>,
                   weightAt: UnsafeMutableBufferPointer<Int>, positivesAt: UnsafeMutableBufferPointer<Int>,
                   residualAt: UnsafeMutableBufferPointer<Int>, events: inout PassEvents) -> (twiceAUC: Int, precision: Double) {
    // Ranking's Σ pos (2 negBelow + negTied) with negBelow = totalNeg − fp, as Σ pos (negTied − 2 fp)
    // plus 2 totalNeg totalPos at the end: one value fewer in the loop, the same integer.
    var twiceAUC = 0
    var precisionSum = 0.0
    var tp = 0, fp = 0  // over finished tie groups
    var p = 0, t = 0    // within the current one
    var s = 0
    var nextFP = events.nextFP, nextTP = events.nextTP
    guard let entries = packed.baseAddress, let w0 = weights.baseAddress, let r0 = residual.baseAddress else { return (0, 0) }
    var k = 0
    for next in 0..<checkpoints.count {  // the last checkpoint is packed.count
      let stop = checkpoints[next]
      while k < stop {
        let e = entries[k]
        let w = Int(w0[Int(e & Ranking.indexMask)])
        t &+= w
        p &+= w & -Int((e >> 30) & 1)
        s &+= w &* r0[k]
        k &+= 1
        if e & Ranking.lastFlag != 0 {
          let n = t &- p
          tp &+= p; fp &+= n
          if p > 0 {
            twiceAUC &+= p &* (n &- 2 &* fp)
            precisionSum += Double(p) * Double(tp) / Double(tp &+ fp)
          }
          if fp >= nextFP || tp >= nextTP {
            events.groupEnded(tp: tp, fp: fp, p: p, n: n)
            nextFP = events.nextFP; nextTP = events.nextTP
          }
          p = 0; t = 0
        }
      }
      weightAt[next] = tp + fp + t; positivesAt[next] = tp + p; residualAt[next] = s
    }
    events.finish(tp: tp, fp: fp)
    return (twiceAUC &+ 2 &* totalNeg &* totalPos, precisionSum)
  }
}

/// The few tie-group ends of a round's pass where something is read off: the confusion at each
/// specificity target (the last group end whose false positives stay within its limit) and the
/// ROC and PR curve-grid points (`CurveGrid`). The pass calls `groupEnded` only once false
/// positives reach `nextFP` or true positives reach `nextTP`.
struct PassEvents {
  let grid: CurveGrid
  let rocFinal: [Int], prNeed: [Int]
  let gridOut: UnsafeMutableBufferPointer<Double>
  /// False-positive limits, ascending, and the target each belongs to.
  let limits: [Int], targetsByLimit: [Int]
  /// Per target, the confusion read off; (0, 0) on entry (no case called positive).
  let best: UnsafeMutableBufferPointer<(tp: Int, fp: Int)>
  var roc = 0, pr = 0, limit = 0
  private(set) var nextFP = Int.max, nextTP = Int.max

  init(grid: CurveGrid, rocFinal: [Int], prNeed: [Int], gridOut: UnsafeMutableBufferPointer<Double>,
       limits: [Int], targetsByLimit: [Int], best: UnsafeMutableBufferPointer<(tp: Int, fp: Int)>) {
    self.grid = grid; self.rocFinal = rocFinal; self.prNeed = prNeed; self.gridOut = gridOut
    self.limits = limits; self.targetsByLimit = targetsByLimit; self.best = best
    updateNext()
  }

  private mutating func updateNext() {
    let nextLimit = limit < limits.count ? limits[limit] + 1 : Int.max  // passed once fp exceeds it
    nextFP = min(roc < grid.points ? rocFinal[roc] : Int.max, nextLimit)
    nextTP = pr < grid.points ? prNeed[pr] : Int.max
  }

  /// At the end of a tie group of `p` positives and `n` negatives, with `tp`/`fp` counted through it.
  @inline(never)
  mutating func groupEnded(tp: Int, fp: Int, p: Int, n: Int) {
    // The previous group end was the last within these limits.
    while limit < limits.count && fp > limits[limit] { best[targetsByLimit[limit]] = (tp - p, fp - n); limit += 1 }
    while roc < grid.points && fp >= rocFinal[roc] {
      gridOut[roc] = grid.rocValue(roc, from: (tp - p, fp - n), to: (tp, fp))
      roc += 1
    }
    if pr < grid.points && tp >= prNeed[pr] {
      let precision = Double(tp) / Double(tp + fp)
      while pr < grid.points && tp >= prNeed[pr] { gridOut[grid.points + pr] = precision; pr += 1 }
    }
    updateNext()
  }

  /// After the last group: limits never passed were met by every case called positive; ROC
  /// points at FPR 1 take the final TPR; PR points never reached are undefined.
  mutating func finish(tp: Int, fp: Int) {
    while limit < limits.count { best[targetsByLimit[limit]] = (tp, fp); limit += 1 }
    while roc < grid.points { gridOut[roc] = grid.totalPos > 0 ? Double(tp) / Double(grid.totalPos) : .nan; roc += 1 }
    while pr < grid.points { gridOut[grid.points + pr] = .nan; pr += 1 }
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
