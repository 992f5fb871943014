/// One model's round statistics against up to four references at once, in one pass.
///
/// The references of a finding label the same cases, so a round's draw, the model's score order
/// and its tie groups are theirs alike; only the labels differ. `RoundStatistics.pass` run once
/// per reference gathers the same case counts four times over; here they are gathered once and
/// each reference is a lane of a `SIMD4<Double>`: its positives `p += w · y`, its `tp`, `fp`, the
/// AUROC sum `Σ p (n − 2 fp)` and the AUPRC sum `Σ p · tp / (tp + fp)`, each lane computed with
/// the same operations in the same order as the scalar pass, so the results are bit for bit the
/// same (the counts are integers below 2^53, exact in a double; `maximumCases` keeps the AUROC sum
/// there).
///
/// What no longer needs the labels comes out of the loop:
/// - Σ w (y − p) at a checkpoint is Σ w r₀ (r₀ = the fixed-point −p, shared) plus, over the lane's
///   positives, w (r₁ − r₀), which is the scale but for rare rounding cases (`deviations`): so
///   scale × the lane's positive weight, plus those few, counted after the pass.
/// - Σ w (y − p)² is Σ w (p²) over all cases plus Σ w ((1 − p)² − p²) over the lane's positives.
/// `RoundStatistics` stays the definition (and the path for a lone reference); the tests hold
/// this to it.
struct ReferenceLanes: Sendable {
  typealias Lanes = SIMD4<Double>
  static let capacity = 4
  /// Beyond this many cases the AUROC sum could leave the integers a double holds exactly.
  static let maximumCases = 1 << 25

  /// The references' own statistics (the same cases, scores, cuts and bins; 2 to 4 of them).
  let members: [RoundStatistics]
  /// Per position of the score order: case index (bits 0-29), last of its tie group (bit 31).
  let packed: [UInt32]
  /// Per position: bit j set when the case is positive for member j.
  let labelBits: [UInt8]
  /// Per position: the fixed-point residual of a negative label, round(−p · scale).
  let negativeResidual: [Int]
  /// Positions where a positive's residual is not negativeResidual + scale, and by how much.
  let deviations: [(position: Int, excess: Int)]
  /// Per case: p² and (1 − p)² − p² in fixed point, as `RoundStatistics` rounds them.
  let negativeSquared: [Int]
  let squaredExcess: [Int]
  /// Per member: its positive cases.
  let positives: [[Int32]]
  /// The lanes' labels from a case's label bits: lane j of `labels[bits]` is 1 when bit j is set
  /// (also the subgroups' lanes, `Subgroups.lanePass`).
  static let labels: [Lanes] = (0..<16).map { bits in Lanes((0..<4).map { Double((bits >> $0) & 1) }) }

  /// Lanes for `members`, or nil when they cannot share a pass (different cases, scores, cuts,
  /// bins or grid, one alone, more than four, or too many cases).
  init?(members: [RoundStatistics], scored: [ScoredCases]) {
    guard members.count >= 2, members.count <= ReferenceLanes.capacity, members.count == scored.count,
          let first = members.first, first.order.count < ReferenceLanes.maximumCases else { return nil }
    for (m, s) in zip(members, scored).dropFirst() {
      guard m.order == first.order, m.checkpoints == first.checkpoints, m.cuts == first.cuts, m.targets == first.targets,
            m.bins == first.bins, m.uniformAbove == first.uniformAbove, m.quantileAbove == first.quantileAbove,
            m.gridPoints == first.gridPoints, m.scaleBits == first.scaleBits, s.scores == scored[0].scores else { return nil }
    }
    self.members = members
    let scores = scored[0].scores
    let scale = Double(1 << first.scaleBits)
    packed = zip(first.order, scored[0].groupEnd).map { i, last in UInt32(i) | (last ? Ranking.lastFlag : 0) }
    labelBits = first.order.map { i in
      var bits: UInt8 = 0
      for (j, s) in scored.enumerated() where s.labels[Int(i)] { bits |= 1 << j }
      return bits
    }
    // The same arithmetic as `RoundStatistics.init`, for each label.
    func residual(_ y: Bool, _ p: Double) -> Int { Int((((y ? 1 : 0) - p) * scale).rounded()) }
    func squared(_ y: Bool, _ p: Double) -> Int { let d = (y ? 1 : 0) - p; return Int((d * d * scale).rounded()) }
    negativeResidual = first.order.map { residual(false, scores[Int($0)]) }
    var deviations: [(position: Int, excess: Int)] = []
    for (k, i) in first.order.enumerated() {
      let excess = residual(true, scores[Int(i)]) - negativeResidual[k] - (1 << first.scaleBits)
      if excess != 0 { deviations.append((k, excess)) }
    }
    self.deviations = deviations
    negativeSquared = scores.map { squared(false, $0) }
    squaredExcess = scores.map { squared(true, $0) - squared(false, $0) }
    positives = scored.map { s in s.labels.indices.filter { s.labels[$0] }.map { Int32($0) } }
  }

  struct Scratch {
    var member: [RoundStatistics.Scratch]
    /// Per checkpoint: the weight and Σ w r₀ (shared), and each lane's positive weight.
    var sharedWeight: [Int], negativeResidual: [Int], positives: [Int]
    init(_ lanes: ReferenceLanes) {
      member = lanes.members.map { $0.makeScratch() }
      sharedWeight = [Int](repeating: 0, count: lanes.members[0].checkpoints.count)
      negativeResidual = sharedWeight
      positives = [Int](repeating: 0, count: ReferenceLanes.capacity * sharedWeight.count)
    }
  }

  func makeScratch() -> Scratch { Scratch(self) }

  /// What `members[j].areas(rankings[j], weights:, totalPos: totals[j].pos, ...)` returns and
  /// writes into `out[j]`, for every member, in one pass.
  func areas(weights: UnsafeBufferPointer<Int32>, totals: [(pos: Int, neg: Int)], scratch: inout Scratch,
             into out: [UnsafeMutableBufferPointer<Double>]) -> [Areas] {
    let first = members[0], lanes = members.count
    precondition(totals.count == lanes && out.count == lanes, "one total and one output per member")
    // Per member, the confusion at each specificity target (PassEvents writes it there).
    let best = members.map { m -> UnsafeMutableBufferPointer<(tp: Int, fp: Int)> in
      let b = UnsafeMutableBufferPointer<(tp: Int, fp: Int)>.allocate(capacity: m.targets.count)
      b.initialize(repeating: (0, 0))
      return b
    }
    defer { for b in best { b.deallocate() } }
    var events: [PassEvents] = []
    for j in 0..<lanes {
      let grid = CurveGrid(points: first.gridPoints, totalPos: totals[j].pos, totalNeg: totals[j].neg)
      scratch.member[j].setGridLimits(grid)
      let offset = members[j].gridOffset
      events.append(PassEvents(grid: grid, rocFinal: scratch.member[j].rocFinal, prNeed: scratch.member[j].prNeed,
                               gridOut: UnsafeMutableBufferPointer(rebasing: out[j][offset..<(offset + 2 * first.gridPoints)]),
                               limits: members[j].specificityLimits(totalNeg: totals[j].neg), targetsByLimit: members[j].targetsByLimit,
                               best: best[j]))
    }
    let sums = events.withUnsafeMutableBufferPointer { events in
      packed.withUnsafeBufferPointer { packed in
        labelBits.withUnsafeBufferPointer { labelBits in
          ReferenceLanes.labels.withUnsafeBufferPointer { label in
            negativeResidual.withUnsafeBufferPointer { residual in
              first.checkpoints.withUnsafeBufferPointer { checkpoints in
                scratch.sharedWeight.withUnsafeMutableBufferPointer { weightAt in
                  scratch.negativeResidual.withUnsafeMutableBufferPointer { residualAt in
                    scratch.positives.withUnsafeMutableBufferPointer { positivesAt in
                      ReferenceLanes.pass(packed: packed, labelBits: labelBits, label: label, negativeResidual: residual, weights: weights,
                                          lanes: lanes, checkpoints: checkpoints, weightAt: weightAt, residualAt: residualAt,
                                          positivesAt: positivesAt, events: events)
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    // Σ w (y − p) at each checkpoint, per member: the shared part, scale × the positive weight,
    // and the rare positives whose residual is not exactly that.
    let scale = 1 << first.scaleBits
    var excess = [Int](repeating: 0, count: lanes)
    var d = 0
    for (c, stop) in first.checkpoints.enumerated() {
      while d < deviations.count && deviations[d].position < stop {
        let (k, e) = deviations[d]
        let bits = labelBits[k], w = Int(weights[Int(packed[k] & Ranking.indexMask)])
        for j in 0..<lanes where bits & (1 << j) != 0 { excess[j] += w * e }
        d += 1
      }
      for j in 0..<lanes {
        scratch.member[j].positives[c] = scratch.positives[c * ReferenceLanes.capacity + j]
        scratch.member[j].weight[c] = scratch.sharedWeight[c]
        scratch.member[j].residual[c] = scratch.negativeResidual[c] + scale * scratch.member[j].positives[c] + excess[j]
      }
    }
    var sharedSquared = 0
    if first.bins != nil {
      negativeSquared.withUnsafeBufferPointer { sq in
        for i in 0..<sq.count { sharedSquared &+= Int(weights[i]) &* sq[i] }
      }
    }
    var result: [Areas] = []
    for j in 0..<lanes {
      var squared = sharedSquared
      if first.bins != nil { for i in positives[j] { squared &+= Int(weights[Int(i)]) &* squaredExcess[Int(i)] } }
      members[j].write(totalPos: totals[j].pos, totalNeg: totals[j].neg, weightAt: scratch.member[j].weight,
                       positivesAt: scratch.member[j].positives, residualAt: scratch.member[j].residual, squaredResidual: squared,
                       best: Array(best[j]), into: out[j])
      let twiceAUC = Int(sums.twiceAUC[j]) + 2 * totals[j].neg * totals[j].pos
      result.append(Areas(auroc: Double(twiceAUC) / (2 * Double(totals[j].pos) * Double(totals[j].neg)),
                          auprc: sums.precision[j] / Double(totals[j].pos)))
    }
    return result
  }

  /// `RoundStatistics.pass` for every lane at once (see there for what each sum is); per
  /// checkpoint it records the shared weight and Σ w r₀, and each lane's positive weight.
  static func pass(packed: UnsafeBufferPointer<UInt32>, labelBits: UnsafeBufferPointer<UInt8>, label: UnsafeBufferPointer<Lanes>,
                   negativeResidual: UnsafeBufferPointer<Int>, weights: UnsafeBufferPointer<Int32>, lanes: Int,
                   checkpoints: UnsafeBufferPointer<Int>, weightAt: UnsafeMutableBufferPointer<Int>, residualAt: UnsafeMutableBufferPointer<Int>,
                   positivesAt: UnsafeMutableBufferPointer<Int>, events: UnsafeMutableBufferPointer<PassEvents>) -> (twiceAUC: Lanes, precision: Lanes) {
    var twiceAUC = Lanes.zero, precision = Lanes.zero
    var tp = Lanes.zero, fp = Lanes.zero  // over finished tie groups
    var p = Lanes.zero, t = 0.0           // within the current one
    var positiveHere: UInt8 = 0  // any lane's positive in the current tie group
    var s = 0
    // Unused lanes never reach an event.
    var nextFP = Lanes(repeating: .infinity), nextTP = Lanes(repeating: .infinity)
    for j in 0..<lanes { nextFP[j] = Double(events[j].nextFP); nextTP[j] = Double(events[j].nextTP) }
    guard let entries = packed.baseAddress, let w0 = weights.baseAddress, let r0 = negativeResidual.baseAddress,
          let bits0 = labelBits.baseAddress, let label0 = label.baseAddress else { return (.zero, .zero) }
    var k = 0
    for next in 0..<checkpoints.count {
      let stop = checkpoints[next]
      while k < stop {
        let e = entries[k]
        let wi = Int(w0[Int(e & Ranking.indexMask)])
        let w = Double(wi)
        let bits = bits0[k]
        positiveHere |= bits
        t += w
        p += w * label0[Int(bits)]
        s &+= wi &* r0[k]
        k &+= 1
        if e & Ranking.lastFlag != 0 {
          let n = Lanes(repeating: t) - p
          tp += p; fp += n
          if positiveHere != 0 {
            // A lane without positives here adds p · ... = 0, as the scalar pass adds nothing.
            twiceAUC += p * (n - 2 * fp)
            let seen = tp + fp
            precision += p * tp / seen.replacing(with: 1, where: seen .== .zero)
          }
          if any(fp .>= nextFP .| tp .>= nextTP) {
            for j in 0..<lanes where fp[j] >= nextFP[j] || tp[j] >= nextTP[j] {
              events[j].groupEnded(tp: Int(tp[j]), fp: Int(fp[j]), p: Int(p[j]), n: Int(n[j]))
              nextFP[j] = Double(events[j].nextFP); nextTP[j] = Double(events[j].nextTP)
            }
          }
          p = .zero; t = 0; positiveHere = 0
        }
      }
      weightAt[next] = Int(tp[0] + fp[0] + t)
      residualAt[next] = s
      for j in 0..<lanes { positivesAt[next * ReferenceLanes.capacity + j] = Int(tp[j] + p[j]) }
    }
    for j in 0..<lanes { events[j].finish(tp: Int(tp[j]), fp: Int(fp[j])) }
    return (twiceAUC, precision)
  }
}
