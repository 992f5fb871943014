import Common
import Foundation

/// Label tables made from other label tables at load time: simulated labelling noise at a
/// chosen sensitivity and specificity (`flip`), and votes of several labellers (`vote`).
/// Deterministic: the same inputs and seed give the same table on every machine.
public enum LabelDerivation {
  /// A source label after its schema's uncertainty policy: true, false, or nil (uncertain
  /// under `ignore`: left out).
  public static func binary(_ v: LabelValue, _ policy: UncertaintyPolicy) -> Bool? {
    switch v {
    case .positive: return true
    case .negative, .blank: return false
    case .uncertain:
      switch policy {
      case .ones: return true
      case .zeros: return false
      case .ignore: return nil
      }
    }
  }

  /// The flip probabilities of one finding.
  public struct FlipRates: Sendable, Equatable {
    /// P(a positive label becomes negative): the derived labeller's sensitivity is 1 - this
    /// (relative to the source).
    public var positive: Double
    /// P(a negative label becomes positive): specificity 1 - this.
    public var negative: Double
    public init(positive: Double, negative: Double) { self.positive = positive; self.negative = negative }
  }

  /// The uniform number in [0, 1) that decides whether `key`'s label of `finding` flips: a
  /// function of (seed, key, finding) only, so a row's fate does not depend on the file's row
  /// order, and with the same seed every label flipped at rate r is also flipped at any rate
  /// above r (a sweep's points are nested, so its curve is not noise on top of noise).
  public static func flipDraw(seed: UInt64, key: LabelKey, finding: String) -> Double {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over "subject/id\u{0}finding"
    for b in key.subject.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    h = (h ^ 0x2f) &* 0x100_0000_01b3
    for b in key.id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    h = (h ^ 0) &* 0x100_0000_01b3
    for b in finding.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    var rng = SplitMix64(seed: seed ^ h)
    return rng.uniform()
  }

  /// `source` with label noise: after the source's uncertainty policy, a positive label turns
  /// negative with probability `rates[f].positive` and a negative (or blank) one positive with
  /// probability `rates[f].negative`. Uncertain labels that the policy leaves out (`ignore`)
  /// stay uncertain and unflipped. Labels that do not flip are kept as written (a blank stays
  /// blank); flipped ones are written 1 or 0.
  public static func flip(_ source: LabelTable, name: String, rates: [FlipRates], seed: UInt64) -> LabelTable {
    precondition(rates.count == source.findings.count, "one FlipRates per finding")
    let nf = source.findings.count
    var values = source.values
    for key in source.keysInRowOrder {
      let r = source.rowOfKey[key]!
      for (f, finding) in source.findings.enumerated() {
        let i = r * nf + f
        guard let b = binary(values[i], source.uncertainty) else { continue }
        let rate = b ? rates[f].positive : rates[f].negative
        if rate > 0 && flipDraw(seed: seed, key: key, finding: finding) < rate {
          values[i] = b ? .negative : .positive
        } else if values[i] == .uncertain {
          values[i] = b ? .positive : .negative  // resolved by the policy (ones / zeros)
        }
      }
    }
    var t = source
    t.schema = name
    t.source = "\(source.schema) with labels flipped (seed \(seed))"
    t.values = values
    t.probabilities = nil
    return t
  }

  /// How a vote decides.
  public enum VoteRule: String, Sendable, CaseIterable {
    /// Positive when more voters say positive than negative.
    case majority
    /// Positive when any voter says positive.
    case any
    /// Positive when every voter that labelled the report says positive.
    case all
  }

  /// What a majority vote gives on a tie.
  public enum TieRule: String, Sendable, CaseIterable {
    case positive, negative
    /// Left out of the loss for that finding (like U-ignore).
    case uncertain
  }

  /// Reports of all `tables`, aligned: the union of their keys (in the first table's row order,
  /// then new keys of the next tables), and for each table the row of each key (nil: no row).
  /// Keys are matched with the subject when every table has it, else on the study/image id alone.
  public static func align(_ tables: [LabelTable]) -> (keys: [LabelKey], rows: [[Int?]], keyedBySubject: Bool) {
    let bySubject = tables.allSatisfy(\.keyedBySubject)
    func norm(_ k: LabelKey) -> LabelKey { bySubject ? k : LabelKey(subject: nil, id: k.id) }
    var keys: [LabelKey] = []
    var position: [LabelKey: Int] = [:]
    var perTable: [[LabelKey: Int]] = []
    for t in tables {
      var m: [LabelKey: Int] = [:]
      for k in t.keysInRowOrder {
        let n = norm(k)
        m[n] = t.rowOfKey[k]!
        if position[n] == nil { position[n] = keys.count; keys.append(n) }
      }
      perTable.append(m)
    }
    return (keys, perTable.map { m in keys.map { m[$0] } }, bySubject)
  }

  /// Each source's binary label of every aligned report per finding: `result[f][j][i]`
  /// (nil: no row, or uncertain under `ignore`).
  public static func binaryColumns(_ tables: [LabelTable], rows: [[Int?]], findings: [String]) throws -> [[[Bool?]]] {
    let columns = try tables.map { t in try findings.map { f -> Int in
      guard let c = t.findings.firstIndex(of: f) else { throw FileError("schema '\(t.schema)' has no finding '\(f)'") }
      return c
    } }
    return findings.indices.map { f in
      tables.indices.map { j in
        let t = tables[j], nf = t.findings.count, c = columns[j][f]
        return rows[j].map { r in r.flatMap { binary(t.values[$0 * nf + c], t.uncertainty) } }
      }
    }
  }

  /// The vote of `tables` on every report any of them labels. A source without a row for a
  /// report, or whose label is uncertain under `ignore`, does not vote; a report with no vote
  /// for a finding is uncertain there (left out of the loss).
  public static func vote(_ tables: [LabelTable], name: String, findings: [String], rule: VoteRule, ties: TieRule) throws -> LabelTable {
    let (keys, rows, bySubject) = align(tables)
    let columns = try binaryColumns(tables, rows: rows, findings: findings)
    let nf = findings.count
    var values = [LabelValue](repeating: .uncertain, count: keys.count * nf)
    for f in 0..<nf {
      for i in keys.indices {
        var pos = 0, neg = 0
        for j in tables.indices { if let b = columns[f][j][i] { if b { pos += 1 } else { neg += 1 } } }
        guard pos + neg > 0 else { continue }
        let v: LabelValue
        switch rule {
        case .any: v = pos > 0 ? .positive : .negative
        case .all: v = neg == 0 ? .positive : .negative
        case .majority:
          if pos != neg { v = pos > neg ? .positive : .negative } else {
            v = ties == .positive ? .positive : ties == .negative ? .negative : .uncertain
          }
        }
        values[i * nf + f] = v
      }
    }
    return LabelTable(schema: name, source: "vote (\(rule.rawValue)) of \(tables.map(\.schema).joined(separator: ", "))",
                      findings: findings, uncertainty: .ignore, join: tables.first?.join, keyedBySubject: bySubject,
                      values: values, rowOfKey: Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) }))
  }
}
