import Common
import Foundation

/// A per-image attribute to stratify the evaluation by (chest tube yes/no, view position, a
/// user column such as sex or age band): image id -> value. Images without a value are left out
/// of that attribute's subgroups (and of their complements).
public struct SubgroupAttribute: Sendable, Equatable {
  public var name: String
  /// Where the values came from, for notes ("chest_tube.csv masks", a CSV path).
  public var source: String
  public var values: [String: String]

  public init(name: String, source: String, values: [String: String]) {
    self.name = name; self.source = source; self.values = values
  }

  /// At most this many distinct values per attribute: more means a continuous column (age in
  /// years, a timestamp) that needs binning before it can stratify anything.
  public static let maximumValues = 20
  public static let idColumns = ["id", "dicom_id", "SOPInstanceUID"]

  /// Reads a user CSV keyed by image id (`id`, `dicom_id` or `SOPInstanceUID`): every other
  /// column (or those in `columns`) becomes an attribute; a blank cell means "unknown".
  /// `option` names the setting the file came from, for the messages.
  public static func read(_ url: URL, columns: [String]? = nil, option: String = "--subgroups") throws -> [SubgroupAttribute] {
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw FileError("\(option) \(url.path): no such file; give a CSV with an id column and one column per attribute (e.g. id,sex,age_band)")
    }
    return try parse(CSVTable.read(url), columns: columns, option: option)
  }

  public static func parse(_ table: CSVTable, columns: [String]? = nil, option: String = "--subgroups") throws -> [SubgroupAttribute] {
    guard let idColumn = idColumns.lazy.compactMap({ table.index(of: $0) }).first else {
      throw FileError("\(table.source) (\(option)) has no id column (\(idColumns.joined(separator: ", "))); its columns are: \(table.header.joined(separator: ", ")); add one holding the test images' ids")
    }
    let others = table.header.indices.filter { $0 != idColumn && !table.header[$0].isEmpty }.map { table.header[$0] }
    let chosen: [String]
    if let columns, !columns.isEmpty {
      for c in columns where table.index(of: c) == nil || c == table.header[idColumn] {
        throw FileError("\(table.source) (\(option)) has no attribute column '\(c)'; its attribute columns are: \(others.joined(separator: ", "))")
      }
      chosen = columns
    } else {
      chosen = others
    }
    guard !chosen.isEmpty else {
      throw FileError("\(table.source) (\(option)) has only the id column '\(table.header[idColumn])'; add a column per attribute (e.g. sex, age_band, site)")
    }
    var seen: [String: Int] = [:]
    var values = chosen.map { _ in [String: String]() }
    let indices = chosen.map { table.index(of: $0)! }
    for (r, row) in table.rows.enumerated() {
      let id = row[idColumn].trimmingCharacters(in: .whitespaces)
      guard !id.isEmpty else {
        throw FileError("\(table.source):\(table.lines[r]): the id is blank; fill it in or remove the row")
      }
      if let first = seen.updateValue(table.lines[r], forKey: id) {
        throw FileError("\(table.source):\(table.lines[r]): id '\(id)' appears twice (first on line \(first)); keep one row per image")
      }
      for (k, c) in indices.enumerated() {
        let v = row[c].trimmingCharacters(in: .whitespaces)
        if !v.isEmpty { values[k][id] = v }
      }
    }
    for (k, name) in chosen.enumerated() {
      let distinct = Set(values[k].values)
      if distinct.count > maximumValues {
        throw FileError("\(table.source) (\(option)): column '\(name)' has \(distinct.count) distinct values, more than \(maximumValues); subgroups need categories: bin it (e.g. age_band 18-39, 40-64, 65+) or leave it out with --subgroup-columns / evaluate.subgroups.columns")
      }
    }
    return zip(chosen, values).map { SubgroupAttribute(name: $0, source: table.source, values: $1) }
  }
}

/// One model x reference x finding on one subgroup (attribute = value), beside its complement
/// (the cases with another known value of the attribute). CIs are percentile intervals over the
/// evaluation's own bootstrap rounds (same seed, same whole-test-set draws); the differences are
/// subgroup minus complement computed within each round.
public struct SubgroupRow: Sendable, Equatable {
  public var attribute: String
  public var value: String
  public var model: String
  public var reference: String
  public var finding: String
  public var n: Int
  public var nPos: Int
  public var auroc: Estimate
  public var auprc: Estimate
  public var complementN: Int
  public var complementNPos: Int
  public var complementAUROC: Estimate
  public var complementAUPRC: Estimate
  /// Subgroup minus complement.
  public var aurocDifference: Estimate
  public var auprcDifference: Estimate
  /// All cases with a known value of the attribute (the subgroup and its complement together):
  /// what the model seems to do before stratifying.
  public var overallAUROC: Estimate
  public var overallAUPRC: Estimate
  /// Subgroup minus all known cases: a shortcut (scores that follow the attribute, not the
  /// finding) shows here, as an AUROC near 0.5 within every value however high it is overall.
  public var aurocVersusOverall: Estimate
  public var auprcVersusOverall: Estimate
  /// Rounds in which subgroup and complement both held both classes (the differences' CI uses these).
  public var roundsUsed: Int

  public var prevalence: Double { n > 0 ? Double(nPos) / Double(n) : .nan }
  public var complementPrevalence: Double { complementN > 0 ? Double(complementNPos) / Double(complementN) : .nan }
}

public enum Subgroups {
  /// The fewest cases a subgroup and its complement each need (besides holding both classes).
  public static let defaultMinimumCases = 10

  /// Cases grouped by one attribute: the value index of each case (-1: unknown), and the values.
  struct Grouping {
    var name: String
    var values: [String]
    var groupOf: [Int32]
  }

  /// Builds the grouping of `ids` (the evaluated cases, in case order) for each attribute.
  static func groupings(_ attributes: [SubgroupAttribute], ids: [String]) -> [Grouping] {
    attributes.map { a in
      let values = Array(Set(ids.compactMap { a.values[$0] })).sorted()
      let indexOf = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, Int32($0)) })
      return Grouping(name: a.name, values: values, groupOf: ids.map { a.values[$0].flatMap { indexOf[$0] } ?? -1 })
    }
  }

  /// The running sums of one side (a subgroup or a complement) over the descending score order.
  struct Side {
    var tp = 0, fp = 0
    /// Σ over tie groups of p · (2 · negatives above + negatives tied): 2·P·N minus twice the AUC numerator.
    var twiceDiscordant = 0
    var precisionSum = 0.0

    @inline(__always)
    mutating func add(positives p: Int, negatives n: Int) {
      guard p + n > 0 else { return }
      let fpBefore = fp
      tp += p; fp += n
      if p > 0 {
        twiceDiscordant += p * (2 * fpBefore + n)
        precisionSum += Double(p) * Double(tp) / Double(tp + fp)
      }
    }

    /// Nil when a class is missing (AUROC undefined).
    var areas: Areas? {
      guard tp > 0, fp > 0 else { return nil }
      let twicePN = 2 * Double(tp) * Double(fp)
      return Areas(auroc: (twicePN - Double(twiceDiscordant)) / twicePN, auprc: precisionSum / Double(tp))
    }
  }

  /// Per value: the subgroup's and the complement's areas (sides v and k + v), and those of all
  /// cases with a known value (side 2k), for case counts `weights`, in one pass
  /// over the ranking's (already sorted) order: tie groups are those of all cases, so a subgroup's
  /// tie groups are its members of them, and the complement's counts in a tie group are the
  /// known-value totals minus the subgroup's. Equals `Ranking(scores: subset...).areas()`.
  static func pass(_ ranking: Ranking, weights: UnsafeBufferPointer<Int32>, groupOf: UnsafeBufferPointer<Int32>, values k: Int,
                   tieP: inout [Int], tieT: inout [Int], sides: inout [Side]) {
    // Through buffer pointers: writes into the arrays themselves checked their uniqueness (a
    // runtime call) at every case.
    tieP.withUnsafeMutableBufferPointer { tieP in
      tieT.withUnsafeMutableBufferPointer { tieT in
        sides.withUnsafeMutableBufferPointer { sides in
          pass(ranking, weights: weights, groupOf: groupOf, values: k, tieP: tieP, tieT: tieT, sides: sides)
        }
      }
    }
  }

  private static func pass(_ ranking: Ranking, weights: UnsafeBufferPointer<Int32>, groupOf: UnsafeBufferPointer<Int32>, values k: Int,
                           tieP: UnsafeMutableBufferPointer<Int>, tieT: UnsafeMutableBufferPointer<Int>,
                           sides: UnsafeMutableBufferPointer<Side>) {
    for v in 0...(2 * k) { sides[v] = Side() }
    for v in 0..<k { tieP[v] = 0; tieT[v] = 0 }
    // With two values, each one's complement (within the known values) is the other value: the
    // same adds in the same order, so it is copied at the end instead of summed alongside.
    let complements = k == 2 ? 0 : k
    ranking.packed.withUnsafeBufferPointer { packed in
      var allP = 0, allT = 0
      var starts = true  // this entry starts a tie group
      for e in packed {
        let i = Int(e & Ranking.indexMask)
        let g = Int(groupOf[i])
        if starts && e & Ranking.lastFlag != 0 {
          // A tie group of one case (most of them): it goes to its value's side, to every other
          // value's complement and to all known cases, which is what the general path below
          // adds for it (its other sides get nothing), without the per-value tallies.
          let w = g >= 0 ? Int(weights[i]) : 0
          if w > 0 {
            let p = w & -Int((e >> 30) & 1), n = w - p
            sides[g].add(positives: p, negatives: n)
            for v in 0..<complements where v != g { sides[k + v].add(positives: p, negatives: n) }
            sides[2 * k].add(positives: p, negatives: n)
          }
          continue
        }
        starts = e & Ranking.lastFlag != 0
        if g >= 0 {
          let w = Int(weights[i])
          let p = w & -Int((e >> 30) & 1)
          tieT[g] += w; tieP[g] += p
          allT += w; allP += p
        }
        if e & Ranking.lastFlag != 0, allT > 0 {
          for v in 0..<k {
            let p = tieP[v], n = tieT[v] - p
            sides[v].add(positives: p, negatives: n)
            if v < complements { sides[k + v].add(positives: allP - p, negatives: (allT - allP) - n) }
            tieP[v] = 0; tieT[v] = 0
          }
          sides[2 * k].add(positives: allP, negatives: allT - allP)
          allP = 0; allT = 0
        }
      }
    }
    if k == 2 { sides[2] = sides[1]; sides[3] = sides[0] }
  }

  /// Subgroup and complement areas in every round: `[ranking][attribute][value][metric][round]`
  /// with metrics (subgroup AUROC, subgroup AUPRC, complement AUROC, complement AUPRC, all known
  /// cases' AUROC, their AUPRC), NaN where a side lacks a class. Round `r` is the draw of `Bootstrap.areas` for the same labels, seed and
  /// round, so these rounds are the evaluation's own.
  static func bootstrap(labels: [Bool], rankings: [Ranking], groupings: [Grouping], rounds: Int, seed: UInt64) -> [[[[[Double]]]]] {
    bootstrap(labelSets: [labels], rankings: [rankings], groupings: groupings, rounds: rounds, seed: seed)[0]
  }

  /// `bootstrap(labels:...)` for several label sets of the same cases (the references of a
  /// finding), each result exactly that call's for its set alone (`[set][ranking]...`): one draw
  /// per round serves every set whose classes it holds (`Bootstrap.areas(labelSets:...)`), and
  /// each model's passes over up to four sets run as one (`lanePass`) where their rankings share
  /// one order.
  static func bootstrap(labelSets: [[Bool]], rankings: [[Ranking]], groupings: [Grouping], rounds: Int, seed: UInt64) -> [[[[[[Double]]]]]] {
    let sets = labelSets.count, metrics = 6
    let n = labelSets.first?.count ?? 0
    precondition(rankings.count == sets && rankings.allSatisfy { $0.count == rankings[0].count }, "the same models for every label set")
    let models = rankings.first?.count ?? 0
    let positives = labelSets.map { labels in labels.indices.filter { labels[$0] }.map { Int32($0) } }
    let slots = models * groupings.reduce(0) { $0 + $1.values.count }
    let empty = (0..<models).map { _ in groupings.map { g in g.values.map { _ in Array(repeating: [Double](), count: metrics) } } }
    let live = (0..<sets).filter { rounds > 0 && slots > 0 && !positives[$0].isEmpty && positives[$0].count < n }
    guard !live.isEmpty else { return labelSets.map { _ in empty } }
    // Per model, groups of up to four live sets that share a pass (else one set each).
    struct Group { var model: Int; var sets: [Int]; var lanes: LabelLanes? }
    var groups: [Group] = []
    for m in 0..<models {
      for start in stride(from: 0, to: live.count, by: ReferenceLanes.capacity) {
        let members = Array(live[start..<min(start + ReferenceLanes.capacity, live.count)])
        if let lanes = LabelLanes(labelSets: members.map { labelSets[$0] }, rankings: members.map { rankings[$0][m] }) {
          groups.append(Group(model: m, sets: members, lanes: lanes))
        } else {
          for j in members { groups.append(Group(model: m, sets: [j], lanes: nil)) }
        }
      }
    }
    // First slot of each (model, grouping) within a set: [slot][metric][round].
    let valuesPerModel = groupings.reduce(0) { $0 + $1.values.count }
    let groupingStart = groupings.indices.map { a in groupings[..<a].reduce(0) { $0 + $1.values.count } }
    let flat = (0..<sets).map { _ in UnsafeMutableBufferPointer<Double>.allocate(capacity: slots * metrics * rounds) }
    defer { for f in flat { f.deallocate() } }
    for f in flat { f.initialize(repeating: .nan) }
    let widest = groupings.map(\.values.count).max() ?? 0
    Bootstrap.forEachRound(rounds) { roundRange in
      var shared = [Int32](repeating: 0, count: n), own = shared
      var tieP = [Int](repeating: 0, count: widest), tieT = tieP
      var sides = [Side](repeating: Side(), count: 2 * widest + 1)
      var laneTieP = [SideLanes.Lanes](repeating: .zero, count: widest), laneTieT = [Double](repeating: 0, count: widest)
      var laneTieBits = [UInt8](repeating: 0, count: widest)
      var laneSides = [SideLanes](repeating: SideLanes(), count: 2 * widest + 1)
      var suits = [Bool](repeating: false, count: sets)
      // The six areas of value v of grouping a of model m, for set j in round r.
      func write(_ j: Int, _ m: Int, _ a: Int, _ r: Int, _ side: (Int) -> Side) {
        let k = groupings[a].values.count
        for v in 0..<k {
          let at = ((m * valuesPerModel + groupingStart[a] + v) * metrics) * rounds + r
          for (q, s) in [v, k + v, 2 * k].enumerated() {
            let areas = side(s).areas
            flat[j][at + 2 * q * rounds] = areas?.auroc ?? .nan
            flat[j][at + (2 * q + 1) * rounds] = areas?.auprc ?? .nan
          }
        }
      }
      func single(_ j: Int, _ m: Int, _ w: UnsafeBufferPointer<Int32>, _ r: Int) {
        for (a, g) in groupings.enumerated() {
          g.groupOf.withUnsafeBufferPointer { groupOf in
            pass(rankings[j][m], weights: w, groupOf: groupOf, values: g.values.count, tieP: &tieP, tieT: &tieT, sides: &sides)
          }
          write(j, m, a, r) { sides[$0] }
        }
      }
      for r in roundRange {
        shared.withUnsafeMutableBufferPointer { c in _ = Bootstrap.draw(into: c, seed: seed, round: r, positives: []) }
        for j in live {
          var pos = 0
          for i in positives[j] { pos += Int(shared[Int(i)]) }
          suits[j] = pos > 0 && pos < n
        }
        for j in live where !suits[j] {
          own.withUnsafeMutableBufferPointer { c in _ = Bootstrap.draw(into: c, seed: seed, round: r, positives: positives[j]) }
          own.withUnsafeBufferPointer { w in for m in 0..<models { single(j, m, w, r) } }
        }
        shared.withUnsafeBufferPointer { w in
          for group in groups {
            guard let lanes = group.lanes, group.sets.allSatisfy({ suits[$0] }) else {
              for j in group.sets where suits[j] { single(j, group.model, w, r) }
              continue
            }
            for (a, g) in groupings.enumerated() {
              g.groupOf.withUnsafeBufferPointer { groupOf in
                laneTieP.withUnsafeMutableBufferPointer { tieP in
                  laneTieT.withUnsafeMutableBufferPointer { tieT in
                    laneTieBits.withUnsafeMutableBufferPointer { tieBits in
                      laneSides.withUnsafeMutableBufferPointer { sides in
                        lanePass(lanes, weights: w, groupOf: groupOf, values: g.values.count, tieP: tieP, tieT: tieT, tieBits: tieBits, sides: sides)
                      }
                    }
                  }
                }
              }
              for (lane, j) in group.sets.enumerated() { write(j, group.model, a, r) { laneSides[$0].side(lane) } }
            }
          }
        }
      }
    }
    return (0..<sets).map { j in
      guard live.contains(j) else { return empty }
      var slot = 0
      return (0..<models).map { _ in
        groupings.map { g in
          g.values.map { _ in
            defer { slot += 1 }
            return (0..<metrics).map { q in Array(flat[j][((slot * metrics + q) * rounds)..<((slot * metrics + q + 1) * rounds)]) }
          }
        }
      }
    }
  }

  /// The subgroup rows of one reference and finding. `joined[m]` are model m's cases (ids,
  /// scores' ranking and labels); models in `valid` only. Appends what it skips to `notes`.
  /// `resampled`: the rounds, when they were drawn with other references' (`bootstrap(labelSets:...)`).
  static func evaluate(attributes: [SubgroupAttribute], minimumCases: Int, reference: String, finding: String,
                       models: [String], caseIDs: [[String]], labels: [[Bool]], rankings: [Ranking], valid: [Bool],
                       sameCases: Bool, rounds: Int, seed: UInt64, resampled: [[[[[Double]]]]]? = nil,
                       notes: inout [String]) -> [SubgroupRow] {
    guard !attributes.isEmpty else { return [] }
    precondition(resampled == nil || (sameCases && valid.allSatisfy { $0 }), "rounds resampled elsewhere cover all models on the same cases")
    var rows: [SubgroupRow] = []
    var noted = Set<String>()
    func note(_ s: String) { if noted.insert(s).inserted { notes.append(s) } }
    // One bootstrap over all models when they share the cases (one draw per round), else per model.
    let batches: [[Int]] = sameCases ? [models.indices.filter { valid[$0] }] : models.indices.filter { valid[$0] }.map { [$0] }
    for batch in batches where !batch.isEmpty {
      let first = batch[0]
      let groupings = Subgroups.groupings(attributes, ids: caseIDs[first])
      let samples = resampled ?? bootstrap(labels: labels[first], rankings: batch.map { rankings[$0] }, groupings: groupings, rounds: rounds, seed: seed)
      let ones = [Int32](repeating: 1, count: labels[first].count)
      for (b, m) in batch.enumerated() {
        for (a, g) in groupings.enumerated() {
          let k = g.values.count
          var tieP = [Int](repeating: 0, count: k), tieT = tieP
          var sides = [Side](repeating: Side(), count: 2 * k + 1)
          ones.withUnsafeBufferPointer { w in
            g.groupOf.withUnsafeBufferPointer { groupOf in
              pass(rankings[m], weights: w, groupOf: groupOf, values: k, tieP: &tieP, tieT: &tieT, sides: &sides)
            }
          }
          let unknown = g.groupOf.filter { $0 < 0 }.count
          if unknown > 0 {
            note("subgroups by '\(g.name)' on '\(reference)' / '\(finding)': \(unknown) of \(g.groupOf.count) case(s) have no value and are left out of its subgroups and complements")
          }
          if k < 2 {
            note("subgroups by '\(g.name)' on '\(reference)' / '\(finding)': the cases hold \(k == 0 ? "no value" : "one value ('\(g.values[0])')"), so there is nothing to compare; skipped")
            continue
          }
          for (v, value) in g.values.enumerated() {
            let sub = sides[v], comp = sides[k + v]
            let counts = (n: sub.tp + sub.fp, pos: sub.tp, cn: comp.tp + comp.fp, cpos: comp.tp)
            var why: [String] = []
            if counts.n < minimumCases { why.append("the subgroup has \(counts.n) case(s), fewer than \(minimumCases)") }
            if counts.cn < minimumCases { why.append("its complement has \(counts.cn) case(s), fewer than \(minimumCases)") }
            if counts.pos == 0 || counts.pos == counts.n { why.append("the subgroup holds only \(counts.pos == 0 ? "negative" : "positive") cases") }
            if counts.cpos == 0 || counts.cpos == counts.cn { why.append("its complement holds only \(counts.cpos == 0 ? "negative" : "positive") cases") }
            guard why.isEmpty, let s = sub.areas, let c = comp.areas, let all = sides[2 * k].areas else {
              note("subgroup '\(g.name)' = '\(value)' on '\(reference)' / '\(finding)' was skipped: \(why.joined(separator: "; ")) (n \(counts.n), positives \(counts.pos); complement n \(counts.cn), positives \(counts.cpos))")
              continue
            }
            let x = samples[b][a][v]
            func estimate(_ point: Double, _ values: [Double]) -> Estimate {
              let ci = percentileInterval(values.filter { !$0.isNaN })
              return Estimate(value: point, ciLow: ci?.low, ciHigh: ci?.high)
            }
            var aurocDiff: [Double] = [], auprcDiff: [Double] = [], aurocVsAll: [Double] = [], auprcVsAll: [Double] = []
            for r in x[0].indices where !x[0][r].isNaN {
              if !x[2][r].isNaN { aurocDiff.append(x[0][r] - x[2][r]); auprcDiff.append(x[1][r] - x[3][r]) }
              if !x[4][r].isNaN { aurocVsAll.append(x[0][r] - x[4][r]); auprcVsAll.append(x[1][r] - x[5][r]) }
            }
            if rounds > 0, aurocDiff.count < rounds {
              note("subgroup '\(g.name)' = '\(value)' on '\(reference)' / '\(finding)': in \(rounds - aurocDiff.count) of \(rounds) bootstrap round(s) the subgroup or its complement lacked a class; its CIs use the other rounds")
            }
            rows.append(SubgroupRow(attribute: g.name, value: value, model: models[m], reference: reference, finding: finding,
                                    n: counts.n, nPos: counts.pos, auroc: estimate(s.auroc, x[0]), auprc: estimate(s.auprc, x[1]),
                                    complementN: counts.cn, complementNPos: counts.cpos,
                                    complementAUROC: estimate(c.auroc, x[2]), complementAUPRC: estimate(c.auprc, x[3]),
                                    aurocDifference: estimate(s.auroc - c.auroc, aurocDiff),
                                    auprcDifference: estimate(s.auprc - c.auprc, auprcDiff),
                                    overallAUROC: estimate(all.auroc, x[4]), overallAUPRC: estimate(all.auprc, x[5]),
                                    aurocVersusOverall: estimate(s.auroc - all.auroc, aurocVsAll),
                                    auprcVersusOverall: estimate(s.auprc - all.auprc, auprcVsAll), roundsUsed: aurocDiff.count))
          }
        }
      }
    }
    return rows
  }

  /// Checks before any work: attribute names unique and not blank, and each attribute's ids
  /// meet the test ids (none at all is an error: the wrong id column; some is a note).
  static func check(_ attributes: [SubgroupAttribute], testIDs: Set<String>, notes: inout [String]) throws {
    var names = Set<String>()
    for a in attributes {
      guard !a.name.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw FileError("\(a.source): a subgroup attribute has a blank name; name every column")
      }
      guard names.insert(a.name).inserted else {
        throw FileError("subgroup attribute '\(a.name)' is given twice (\(a.source)); rename one of them")
      }
      guard !a.values.isEmpty else { continue }
      let unmatched = a.values.keys.filter { !testIDs.contains($0) }.count
      if unmatched == a.values.count {
        throw FileError("\(a.source): none of the \(a.values.count) id(s) with a '\(a.name)' value is a test image id (e.g. '\(a.values.keys.sorted()[0])'); the id column must hold the ids of the predictions and references (for CANDID-PTX the SOPInstanceUID)")
      }
      if unmatched > 0 {
        notes.append("subgroup attribute '\(a.name)' (\(a.source)): \(unmatched) of \(a.values.count) id(s) match no test image and were ignored")
      }
    }
  }
}

// MARK: - Files and report sections

extension EvaluationResult {
  public var subgroupsCSV: String {
    var w = CSVWriter(header: ["attribute", "value", "model", "reference", "finding", "n", "n_pos", "prevalence",
                               "auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high",
                               "complement_n", "complement_n_pos", "complement_prevalence",
                               "complement_auroc", "complement_auroc_ci_low", "complement_auroc_ci_high",
                               "complement_auprc", "complement_auprc_ci_low", "complement_auprc_ci_high",
                               "auroc_difference", "auroc_difference_ci_low", "auroc_difference_ci_high",
                               "auprc_difference", "auprc_difference_ci_low", "auprc_difference_ci_high",
                               "overall_auroc", "overall_auroc_ci_low", "overall_auroc_ci_high",
                               "overall_auprc", "overall_auprc_ci_low", "overall_auprc_ci_high",
                               "auroc_vs_overall", "auroc_vs_overall_ci_low", "auroc_vs_overall_ci_high",
                               "auprc_vs_overall", "auprc_vs_overall_ci_low", "auprc_vs_overall_ci_high", "rounds_used"])
    func e(_ x: Estimate) -> [String] { [Format.full(x.value), Format.full(x.ciLow), Format.full(x.ciHigh)] }
    for r in subgroups {
      w.append([r.attribute, r.value, r.model, r.reference, r.finding, "\(r.n)", "\(r.nPos)", Format.full(r.prevalence)]
               + e(r.auroc) + e(r.auprc) + ["\(r.complementN)", "\(r.complementNPos)", Format.full(r.complementPrevalence)]
               + e(r.complementAUROC) + e(r.complementAUPRC) + e(r.aurocDifference) + e(r.auprcDifference)
               + e(r.overallAUROC) + e(r.overallAUPRC) + e(r.aurocVersusOverall) + e(r.auprcVersusOverall) + ["\(r.roundsUsed)"])
    }
    return w.text
  }

  static let subgroupsLegend = "Each subgroup (attribute = value) against its complement (the cases with another known value). "
    + "95 % percentile CIs from the evaluation's bootstrap rounds: each round resamples the whole test set and scores both sides, "
    + "so Δ (subgroup − complement, and subgroup − all cases with a value) is paired; a Δ CI that excludes 0 is a gap the resampling does not explain. "
    + "Scores that follow the attribute rather than the finding give an AUROC near 0.5 within each value however high it is over all cases. "
    + "A gap in a pneumothorax classifier between images with and without a chest tube is the classic shortcut: the model may have learned the tube."

  private struct SubgroupTable { var attribute: String, reference: String, finding: String, rows: [SubgroupRow] }

  /// The tables: one per attribute, reference and finding, in the order computed.
  private var subgroupTables: [SubgroupTable] {
    var order: [String] = []
    var byKey: [String: SubgroupTable] = [:]
    for r in subgroups {
      let key = "\(r.attribute)\u{1}\(r.reference)\u{1}\(r.finding)"
      if byKey[key] == nil { order.append(key); byKey[key] = SubgroupTable(attribute: r.attribute, reference: r.reference, finding: r.finding, rows: []) }
      byKey[key]!.rows.append(r)
    }
    return order.map { byKey[$0]! }
  }

  private static func pct(_ v: Double) -> String { v.isNaN ? "—" : String(format: "%.1f %%", v * 100) }

  var subgroupsMarkdown: String {
    guard !subgroups.isEmpty else { return "" }
    var md = "\n## Subgroups\n\n\(Markdown.escape(EvaluationResult.subgroupsLegend))\n\n"
    for t in subgroupTables {
      md += "### \(Markdown.escape(t.finding)) by \(Markdown.escape(t.attribute)) (reference: \(Markdown.escape(t.reference)))\n\n"
      md += "| model | \(Markdown.escape(t.attribute)) | n | positives | prevalence | AUROC (95 % CI) | AUROC of the rest | Δ AUROC vs the rest (95 % CI) | AUROC of all | Δ AUROC vs all (95 % CI) | AUPRC (95 % CI) | Δ AUPRC vs the rest (95 % CI) |\n"
      md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
      for r in t.rows {
        md += "| \(Markdown.escape(r.model)) | \(Markdown.escape(r.value)) | \(r.n) | \(r.nPos) | \(Self.pct(r.prevalence)) | "
        md += "\(Format.estimate(r.auroc.value, r.auroc.ciLow, r.auroc.ciHigh)) | \(Format.short(r.complementAUROC.value)) | "
        md += "\(Format.estimate(r.aurocDifference.value, r.aurocDifference.ciLow, r.aurocDifference.ciHigh)) | "
        md += "\(Format.short(r.overallAUROC.value)) | \(Format.estimate(r.aurocVersusOverall.value, r.aurocVersusOverall.ciLow, r.aurocVersusOverall.ciHigh)) | "
        md += "\(Format.estimate(r.auprc.value, r.auprc.ciLow, r.auprc.ciHigh)) | "
        md += "\(Format.estimate(r.auprcDifference.value, r.auprcDifference.ciLow, r.auprcDifference.ciHigh)) |\n"
      }
      md += "\n"
    }
    return md
  }

  var subgroupsHTML: String {
    guard !subgroups.isEmpty else { return "" }
    var b = "<h2>Subgroups</h2>\n<p class=\"legend\">\(HTML.escape(EvaluationResult.subgroupsLegend))</p>\n"
    for t in subgroupTables {
      b += "<h3>\(HTML.escape(t.finding)) by \(HTML.escape(t.attribute)) (reference: \(HTML.escape(t.reference)))</h3>\n"
      b += "<table><tr><th>model</th><th>\(HTML.escape(t.attribute))</th><th>n</th><th>positives</th><th>prevalence</th><th>AUROC (95 % CI)</th>"
      b += "<th>AUROC of the rest</th><th>Δ AUROC vs the rest (95 % CI)</th><th>AUROC of all</th><th>Δ AUROC vs all (95 % CI)</th>"
      b += "<th>AUPRC (95 % CI)</th><th>Δ AUPRC vs the rest (95 % CI)</th></tr>"
      for r in t.rows {
        b += "<tr><td>\(HTML.escape(r.model))</td><td>\(HTML.escape(r.value))</td><td>\(r.n)</td><td>\(r.nPos)</td><td>\(Self.pct(r.prevalence))</td>"
        b += "<td>\(Format.estimate(r.auroc.value, r.auroc.ciLow, r.auroc.ciHigh))</td><td>\(Format.short(r.complementAUROC.value))</td>"
        b += "<td>\(Format.estimate(r.aurocDifference.value, r.aurocDifference.ciLow, r.aurocDifference.ciHigh))</td>"
        b += "<td>\(Format.short(r.overallAUROC.value))</td><td>\(Format.estimate(r.aurocVersusOverall.value, r.aurocVersusOverall.ciLow, r.aurocVersusOverall.ciHigh))</td>"
        b += "<td>\(Format.estimate(r.auprc.value, r.auprc.ciLow, r.auprc.ciHigh))</td>"
        b += "<td>\(Format.estimate(r.auprcDifference.value, r.auprcDifference.ciLow, r.auprcDifference.ciHigh))</td></tr>"
      }
      b += "</table>\n"
    }
    return b
  }
}

extension MetricsDocument {
  /// An entry of metrics.json's subgroups: a line of subgroups.csv, its complement and the
  /// overall figures nested. Prevalences are null for an empty side.
  struct Subgroup: Encodable {
    var attribute, value, model, reference, finding: String
    var n, nPos: Int
    var prevalence: JSONNullable<Double>
    var auroc, auprc: ValueWithCI
    var complement: Complement
    var aurocDifference, auprcDifference: ValueWithCI
    var overall: Overall
    var aurocVersusOverall, auprcVersusOverall: ValueWithCI
    var roundsUsed: Int

    /// The cases with another known value of the attribute.
    struct Complement: Encodable {
      var n, nPos: Int
      var prevalence: JSONNullable<Double>
      var auroc, auprc: ValueWithCI
      enum CodingKeys: String, CodingKey { case n, nPos = "n_pos", prevalence, auroc, auprc }
    }

    /// All cases with a known value of the attribute.
    struct Overall: Encodable {
      var auroc, auprc: ValueWithCI
    }

    init(_ r: SubgroupRow) {
      attribute = r.attribute; value = r.value; model = r.model; reference = r.reference; finding = r.finding
      n = r.n; nPos = r.nPos; prevalence = Format.json(r.prevalence)
      auroc = ValueWithCI(r.auroc); auprc = ValueWithCI(r.auprc)
      complement = Complement(n: r.complementN, nPos: r.complementNPos, prevalence: Format.json(r.complementPrevalence),
                              auroc: ValueWithCI(r.complementAUROC), auprc: ValueWithCI(r.complementAUPRC))
      aurocDifference = ValueWithCI(r.aurocDifference); auprcDifference = ValueWithCI(r.auprcDifference)
      overall = Overall(auroc: ValueWithCI(r.overallAUROC), auprc: ValueWithCI(r.overallAUPRC))
      aurocVersusOverall = ValueWithCI(r.aurocVersusOverall); auprcVersusOverall = ValueWithCI(r.auprcVersusOverall)
      roundsUsed = r.roundsUsed
    }

    enum CodingKeys: String, CodingKey {
      case attribute, value, model, reference, finding, n, nPos = "n_pos", prevalence, auroc, auprc, complement
      case aurocDifference = "auroc_difference", auprcDifference = "auprc_difference", overall
      case aurocVersusOverall = "auroc_vs_overall", auprcVersusOverall = "auprc_vs_overall", roundsUsed = "rounds_used"
    }
  }
}
