extension Subgroups {
  /// `Side` for up to four references at once, lane j being reference j (see `ReferenceLanes`
  /// for why the lanes are exact: the counts are integers below 2^53, and each lane's sums take
  /// the same operations in the same order as `Side.add`; a lane that adds nothing adds zeros).
  struct SideLanes {
    typealias Lanes = SIMD4<Double>
    var tp = Lanes.zero, fp = Lanes.zero
    var twiceDiscordant = Lanes.zero
    var precisionSum = Lanes.zero

    /// `Side.add` in every lane; `anyPositive`: some lane's `p` is above 0 (else only the counts move).
    @inline(__always)
    mutating func add(positives p: Lanes, negatives n: Lanes, anyPositive: Bool) {
      let fpBefore = fp
      tp += p; fp += n
      if anyPositive {
        twiceDiscordant += p * (2 * fpBefore + n)
        let seen = tp + fp
        precisionSum += p * tp / seen.replacing(with: 1, where: seen .== .zero)
      }
    }

    func side(_ j: Int) -> Side {
      Side(tp: Int(tp[j]), fp: Int(fp[j]), twiceDiscordant: Int(twiceDiscordant[j]), precisionSum: precisionSum[j])
    }
  }

  /// Up to four references' labels of the same cases, for `lanePass`.
  struct LabelLanes {
    /// Per case: bit j set when the case is positive for reference j.
    let bits: [UInt8]
    /// Per position of the score order: case index (bits 0-29), last of its tie group (bit 31).
    let packed: [UInt32]

    /// Nil unless 2 to 4 label sets whose rankings share one order (the same scores), of few
    /// enough cases for exact sums in doubles.
    init?(labelSets: [[Bool]], rankings: [Ranking]) {
      guard labelSets.count >= 2, labelSets.count <= ReferenceLanes.capacity, rankings.count == labelSets.count,
            rankings[0].count < ReferenceLanes.maximumCases,
            rankings.dropFirst().allSatisfy({ $0.order == rankings[0].order && $0.groupStarts == rankings[0].groupStarts }) else { return nil }
      bits = labelSets[0].indices.map { i in
        var b: UInt8 = 0
        for (j, labels) in labelSets.enumerated() where labels[i] { b |= 1 << j }
        return b
      }
      packed = rankings[0].packed.map { $0 & ~Ranking.positiveFlag }
    }
  }

  /// `pass` for the references of `lanes` at once: sides[v], sides[k + v] and sides[2k] are
  /// value v's subgroup, its complement and all known cases, per lane.
  static func lanePass(_ lanes: LabelLanes, weights: UnsafeBufferPointer<Int32>, groupOf: UnsafeBufferPointer<Int32>, values k: Int,
                       tieP: UnsafeMutableBufferPointer<SideLanes.Lanes>, tieT: UnsafeMutableBufferPointer<Double>,
                       tieBits: UnsafeMutableBufferPointer<UInt8>, sides: UnsafeMutableBufferPointer<SideLanes>) {
    typealias Lanes = SideLanes.Lanes
    for v in 0...(2 * k) { sides[v] = SideLanes() }
    for v in 0..<k { tieP[v] = .zero; tieT[v] = 0; tieBits[v] = 0 }
    let complements = k == 2 ? 0 : k  // two values: copied at the end, as in `pass`
    lanes.packed.withUnsafeBufferPointer { packed in
      lanes.bits.withUnsafeBufferPointer { bits in
        ReferenceLanes.labels.withUnsafeBufferPointer { label in
          var allP = Lanes.zero, allT = 0.0, allBits: UInt8 = 0
          var starts = true  // this entry starts a tie group
          for e in packed {
            let i = Int(e & Ranking.indexMask)
            let g = Int(groupOf[i])
            if starts && e & Ranking.lastFlag != 0 {
              // A tie group of one case (see `pass`).
              let w = g >= 0 ? Double(weights[i]) : 0
              if w > 0 {
                let b = bits[i]
                let p = w * label[Int(b)], n = Lanes(repeating: w) - p
                sides[g].add(positives: p, negatives: n, anyPositive: b != 0)
                for v in 0..<complements where v != g { sides[k + v].add(positives: p, negatives: n, anyPositive: b != 0) }
                sides[2 * k].add(positives: p, negatives: n, anyPositive: b != 0)
              }
              continue
            }
            starts = e & Ranking.lastFlag != 0
            if g >= 0 {
              let w = Double(weights[i]), b = bits[i]
              let p = w * label[Int(b)]
              tieT[g] += w; tieP[g] += p; tieBits[g] |= b
              allT += w; allP += p; allBits |= b
            }
            if e & Ranking.lastFlag != 0, allT > 0 {
              for v in 0..<k {
                let p = tieP[v], n = Lanes(repeating: tieT[v]) - p
                sides[v].add(positives: p, negatives: n, anyPositive: tieBits[v] != 0)
                if v < complements {
                  let cp = allP - p
                  sides[k + v].add(positives: cp, negatives: (Lanes(repeating: allT) - allP) - n, anyPositive: any(cp .> 0))
                }
                tieP[v] = .zero; tieT[v] = 0; tieBits[v] = 0
              }
              sides[2 * k].add(positives: allP, negatives: Lanes(repeating: allT) - allP, anyPositive: allBits != 0)
              allP = .zero; allT = 0; allBits = 0
            }
          }
        }
      }
    }
    if k == 2 { sides[2] = sides[1]; sides[3] = sides[0] }
  }
}
