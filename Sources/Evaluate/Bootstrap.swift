import Foundation

/// Percentile bootstrap over cases. Round `r` draws its multinomial case counts from its own
/// stream `SeededRandom(seed, stream: r)`, so results do not depend on the number of threads;
/// a draw that misses a class is redrawn from the same stream.
public enum Bootstrap {
  /// Areas of every model in every round: `result[model][round]`. All models see the same
  /// draws, so differences between them are paired.
  public static func areas(labels: [Bool], rankings: [Ranking], rounds: Int, seed: UInt64) -> [[Areas]] {
    areas(labels: labels, rankings: rankings, also: [], rounds: rounds, seed: seed).areas
  }


  /// As `areas`, and in the same rounds (the same draws) the operating points and calibration of
  /// `passes` on the same cases: `statistics[pass][metric]` holds a metric's defined values over
  /// the rounds (undefined ones, e.g. PPV with no case called positive, are left out of its CI).
  static func areas(labels: [Bool], rankings: [Ranking], also passes: [RoundStatistics], rounds: Int, seed: UInt64)
    -> (areas: [[Areas]], statistics: [[[Double]]]) {
    areas(labelSets: [labels], rankings: [rankings], also: [passes], rounds: rounds, seed: seed)[0]
  }

  /// `areas(labels:rankings:also:rounds:seed:)` for several label sets of the same cases (the
  /// references of a finding), each result exactly what that call returns for its set alone. A
  /// round's draw is made once for all sets; a set whose classes it misses is redrawn from the
  /// round's stream, as it would be alone. With `scored` (each pass's cases), each model's
  /// passes over up to four sets run as one (`ReferenceLanes`), gathering the round's counts once.
  static func areas(labelSets: [[Bool]], rankings: [[Ranking]], also passes: [[RoundStatistics]], scored: [[ScoredCases]]? = nil,
                    rounds: Int, seed: UInt64) -> [(areas: [[Areas]], statistics: [[[Double]]])] {
    let sets = labelSets.count
    precondition(rankings.count == sets && passes.count == sets, "rankings and passes for every label set")
    precondition(rankings.allSatisfy { $0.count == rankings[0].count }, "the same models for every label set")
    let n = labelSets.first?.count ?? 0
    precondition(labelSets.allSatisfy { $0.count == n } && rankings.allSatisfy { $0.allSatisfy { $0.count == n } },
                 "every label set and ranking must cover the same cases")
    precondition(zip(rankings, passes).allSatisfy { $1.isEmpty || $1.count == $0.count }, "one pass per ranking, or none")
    let widths = passes.map { $0.map(\.width) }, width = widths.map { $0.reduce(0, +) }
    let positives = labelSets.map { labels in labels.indices.filter { labels[$0] }.map { Int32($0) } }
    var results = (0..<sets).map { j in (areas: rankings[j].map { _ in [Areas]() }, statistics: widths[j].map { [[Double]](repeating: [], count: $0) }) }
    // Sets missing a class are never resampled (their results stay empty).
    let live = (0..<sets).filter { j in rounds > 0 && !rankings[j].isEmpty && !positives[j].isEmpty && positives[j].count < n }
    guard !live.isEmpty else { return results }
    // Per model, the live sets with passes in groups that share a pass.
    struct Group { var model: Int; var sets: [Int]; var lanes: ReferenceLanes? }
    var groups: [Group] = []
    for m in 0..<rankings[live[0]].count {
      let withPasses = live.filter { !passes[$0].isEmpty }
      for start in stride(from: 0, to: withPasses.count, by: ReferenceLanes.capacity) {
        let members = Array(withPasses[start..<min(start + ReferenceLanes.capacity, withPasses.count)])
        let lanes = scored.flatMap { scored in ReferenceLanes(members: members.map { passes[$0][m] }, scored: members.map { scored[$0][m] }) }
        if lanes != nil {
          groups.append(Group(model: m, sets: members, lanes: lanes))
        } else {
          for j in members { groups.append(Group(model: m, sets: [j], lanes: nil)) }
        }
      }
      for j in live where passes[j].isEmpty { groups.append(Group(model: m, sets: [j], lanes: nil)) }
    }
    // Where each (set, model) writes its values within a round's row of its set.
    let modelOffset = widths.map { w in w.indices.map { m in w[..<m].reduce(0, +) } }
    let models = rankings.map(\.count)
    // Raw buffers, written by every thread at their own indices.
    let flat = (0..<sets).map { j in UnsafeMutableBufferPointer<Areas>.allocate(capacity: models[j] * rounds) }
    let stats = (0..<sets).map { j in UnsafeMutableBufferPointer<Double>.allocate(capacity: width[j] * rounds) }  // [metric][round]
    defer { for b in flat { b.deallocate() }; for b in stats { b.deallocate() } }
    for b in flat { b.initialize(repeating: Areas(auroc: .nan, auprc: .nan)) }
    for b in stats { b.initialize(repeating: .nan) }
    forEachRound(rounds) { roundRange in
      var shared = [Int32](repeating: 0, count: n), own = shared
      var scratch = passes.map { $0.map { $0.makeScratch() } }
      var laneScratch = groups.map { $0.lanes?.makeScratch() }
      // The chunk's values round by round, moved into `stats` (metric by metric) at its end:
      // written straight there, each round's values landed a round-count apart, a cache line
      // (and often a page) each.
      let chunk = roundRange.count
      let values = (0..<sets).map { j in UnsafeMutableBufferPointer<Double>.allocate(capacity: width[j] * chunk) }
      defer { for v in values { v.deallocate() } }
      for v in values { v.initialize(repeating: .nan) }
      var totals = [(pos: Int, neg: Int)](repeating: (0, 0), count: sets)
      var suits = [Bool](repeating: false, count: sets)
      for r in roundRange {
        let row = r - roundRange.lowerBound
        // Where (set, model) writes its values for this round.
        func out(_ j: Int, _ m: Int) -> UnsafeMutableBufferPointer<Double> {
          let start = row * width[j] + modelOffset[j][m]
          return UnsafeMutableBufferPointer(rebasing: values[j][start..<(start + widths[j][m])])
        }
        shared.withUnsafeMutableBufferPointer { c in _ = draw(into: c, seed: seed, round: r, positives: []) }
        for j in live {
          var pos = 0
          for i in positives[j] { pos += Int(shared[Int(i)]) }
          totals[j] = (pos, n - pos); suits[j] = pos > 0 && pos < n
        }
        // A set the shared draw does not suit (a class missing: rare) is done alone on its own draw.
        for j in live where !suits[j] {
          let pos = own.withUnsafeMutableBufferPointer { draw(into: $0, seed: seed, round: r, positives: positives[j]) }
          own.withUnsafeBufferPointer { w in
            for m in 0..<models[j] {
              flat[j][m * rounds + r] = passes[j].isEmpty
                ? rankings[j][m].areas(weights: w, totalPos: pos, totalNeg: n - pos)!
                : passes[j][m].areas(rankings[j][m], weights: w, totalPos: pos, totalNeg: n - pos, scratch: &scratch[j][m], into: out(j, m))
            }
          }
        }
        shared.withUnsafeBufferPointer { w in
          for (g, group) in groups.enumerated() {
            let m = group.model
            if let lanes = group.lanes, group.sets.allSatisfy({ suits[$0] }) {
              let a = lanes.areas(weights: w, totals: group.sets.map { totals[$0] }, scratch: &laneScratch[g]!,
                                  into: group.sets.map { out($0, m) })
              for (j, areas) in zip(group.sets, a) { flat[j][m * rounds + r] = areas }
              continue
            }
            for j in group.sets where suits[j] {
              let (pos, neg) = totals[j]
              flat[j][m * rounds + r] = passes[j].isEmpty
                ? rankings[j][m].areas(weights: w, totalPos: pos, totalNeg: neg)!  // both classes drawn
                : passes[j][m].areas(rankings[j][m], weights: w, totalPos: pos, totalNeg: neg, scratch: &scratch[j][m], into: out(j, m))
            }
          }
        }
      }
      // Eight metrics (a cache line of each round's values) at a time.
      for j in live {
        for k0 in stride(from: 0, to: width[j], by: 8) {
          let k1 = min(k0 + 8, width[j])
          for row in 0..<chunk {
            for k in k0..<k1 { stats[j][k * rounds + roundRange.lowerBound + row] = values[j][row * width[j] + k] }
          }
        }
      }
    }
    for j in live {
      var start = 0
      results[j].statistics = widths[j].map { w in
        defer { start += w }
        return (start..<(start + w)).map { k in stats[j][(k * rounds)..<((k + 1) * rounds)].filter { !$0.isNaN } }
      }
      results[j].areas = (0..<models[j]).map { m in Array(flat[j][(m * rounds)..<((m + 1) * rounds)]) }
    }
    return results
  }

  /// Multinomial case counts for round `round`, redrawn until both classes are present.
  /// With `positives` empty the class check is skipped.
  /// Returns the number of positive draws.
  @discardableResult
  static func draw(into counts: UnsafeMutableBufferPointer<Int32>, seed: UInt64, round: Int, positives: [Int32]) -> Int {
    let n = counts.count
    var rng = SeededRandom(seed: seed, stream: UInt64(round))
    while true {
      for i in 0..<n { counts[i] = 0 }
      for _ in 0..<n { counts[rng.index(below: n)] += 1 }
      if positives.isEmpty { return 0 }
      var pos = 0
      for i in positives { pos += Int(counts[Int(i)]) }
      if pos > 0 && pos < n { return pos }
    }
  }

  /// Runs `body` over contiguous slices of 0..<rounds on all cores.
  static func forEachRound(_ rounds: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(rounds, max(1, ProcessInfo.processInfo.activeProcessorCount * 4))
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      let lo = rounds * c / chunks, hi = rounds * (c + 1) / chunks
      if lo < hi { body(lo..<hi) }
    }
  }

  /// Generic percentile bootstrap of a statistic of case weights (used by `agree`). `statistic`
  /// returns one value per metric (nil where undefined in that round); rounds are redrawn when
  /// `positives` (if given) are missing entirely or make up every case.
  public static func statistics(caseCount n: Int, rounds: Int, seed: UInt64, positives: [Int32] = [],
                                metrics: Int, statistic: (UnsafeBufferPointer<Int32>) -> [Double?]) -> [[Double]] {
    guard rounds > 0, n > 0 else { return Array(repeating: [], count: metrics) }
    var flat = [Double](repeating: .nan, count: metrics * rounds)
    flat.withUnsafeMutableBufferPointer { out in
      let outBase = out.baseAddress!
      forEachRound(rounds) { roundRange in
        var counts = [Int32](repeating: 0, count: n)
        counts.withUnsafeMutableBufferPointer { c in
          for r in roundRange {
            draw(into: c, seed: seed, round: r, positives: positives)
            let values = statistic(UnsafeBufferPointer(c))
            for m in 0..<metrics { outBase[m * rounds + r] = values[m] ?? .nan }
          }
        }
      }
    }
    // Rounds where a metric is undefined (e.g. PPV with no predicted positive) are left out of its CI.
    return (0..<metrics).map { m in flat[(m * rounds)..<((m + 1) * rounds)].filter { !$0.isNaN } }
  }
}

/// A 95 % (by default) percentile interval with linear interpolation, as numpy.percentile.
/// Only the four order statistics the two ends need are found (by selection, O(n)), not the
/// whole sort: a study's evaluation takes some 50,000 of these intervals over 1,000 rounds.
public func percentileInterval(_ values: [Double], level: Double = 0.95) -> (low: Double, high: Double)? {
  guard !values.isEmpty else { return nil }
  let tail = (1 - level) / 2
  let n = values.count
  func position(_ p: Double) -> (lo: Int, hi: Int, h: Double) {
    let h = Double(n - 1) * p
    let lo = Int(h.rounded(.down))
    return (lo, min(lo + 1, n - 1), h)
  }
  let a = position(tail), b = position(1 - tail)
  guard !values.contains(where: \.isNaN), a.lo <= b.lo else {
    // NaN has no place in an order; keep the sort's answer for it (and for a level below 0).
    let sorted = values.sorted()
    func q(_ x: (lo: Int, hi: Int, h: Double)) -> Double { sorted[x.lo] + (x.h - Double(x.lo)) * (sorted[x.hi] - sorted[x.lo]) }
    return (q(a), q(b))
  }
  // The usual case (a 95 % interval of ~1,000 rounds): the ends lie among the few smallest and
  // the few largest values, kept in two short sorted lists in one pass.
  let lowCount = a.hi + 1, highCount = n - b.lo
  if lowCount <= 64, highCount <= 64, lowCount + highCount <= n {
    let low = values.extremes(lowCount, largest: false), high = values.extremes(highCount, largest: true)
    func sorted(_ i: Int) -> Double { i < lowCount ? low[i] : high[n - 1 - i] }
    func q(_ x: (lo: Int, hi: Int, h: Double)) -> Double { sorted(x.lo) + (x.h - Double(x.lo)) * (sorted(x.hi) - sorted(x.lo)) }
    return (q(a), q(b))
  }
  var work = values
  return work.withUnsafeMutableBufferPointer { v -> (low: Double, high: Double) in
    // Each order statistic in turn, within what lies above the one before; selecting one leaves
    // the positions below it as they are, so every selected position ends holding its value.
    var start = 0
    for index in [a.lo, a.hi, b.lo, b.hi].sorted() where index >= start {
      select(index, in: v, from: start)
      start = index + 1
    }
    func q(_ x: (lo: Int, hi: Int, h: Double)) -> Double { v[x.lo] + (x.h - Double(x.lo)) * (v[x.hi] - v[x.lo]) }
    return (q(a), q(b))
  }
}

extension Array where Element == Double {
  /// The `k` smallest values in ascending order (`largest`: the `k` largest, in descending order),
  /// ties kept: a sorted list of `k`, where a value is compared once with the list's last and
  /// almost always turned away. No NaN.
  func extremes(_ k: Int, largest: Bool) -> [Double] {
    precondition(k >= 1 && k <= count, "between 1 and all of the values")
    @inline(__always) func before(_ x: Double, _ y: Double) -> Bool { largest ? x > y : x < y }
    var list = [Double]()
    list.reserveCapacity(k)
    for x in self {
      if list.count == k {
        guard before(x, list[k - 1]) else { continue }
        list.removeLast()
      }
      // After the last of those it does not come before (equal values keep their order).
      var lo = 0, hi = list.count
      while lo < hi {
        let mid = (lo + hi) / 2
        if before(x, list[mid]) { hi = mid } else { lo = mid + 1 }
      }
      list.insert(x, at: lo)
    }
    return list
  }
}

/// Rearranges `v[start...]` so that `v[index]` holds the value a sort would put there, smaller or
/// equal values before it and greater or equal after (Hoare's selection with a median-of-three
/// pivot; equal values split evenly, so the many ties of a count metric's rounds stay O(n)).
/// `v[..<start]` must already hold the smallest `start` values.
func select(_ index: Int, in v: UnsafeMutableBufferPointer<Double>, from start: Int) {
  var lo = start, hi = v.count - 1
  while lo < hi {
    let mid = lo + (hi - lo) / 2
    // Median of three as the pivot value.
    if v[mid] < v[lo] { v.swapAt(mid, lo) }
    if v[hi] < v[lo] { v.swapAt(hi, lo) }
    if v[hi] < v[mid] { v.swapAt(hi, mid) }
    let pivot = v[mid]
    var i = lo, j = hi
    while i <= j {
      while v[i] < pivot { i += 1 }
      while pivot < v[j] { j -= 1 }
      if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
    }
    // Now v[lo...j] <= pivot <= v[i...hi], and anything between i and j equals the pivot.
    if index <= j { hi = j } else if index >= i { lo = i } else { return }
  }
}
