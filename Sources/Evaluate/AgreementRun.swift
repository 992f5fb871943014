import Common
import Foundation

/// Human reading of reports: `id` + one column per finding. Positive and negative as in
/// `LabelCell`; equivocal cases — `-1`, `-1.0`, `uncertain`, `equivocal`, or blank — are left out
/// of that finding.
public struct HumanLabels: Sendable {
  public let source: String
  public let ids: [String]
  /// column -> id -> label (equivocal ids absent).
  public let labels: [String: [String: Bool]]
  /// column -> number of equivocal cases.
  public let equivocal: [String: Int]

  public init(table: CSVTable, columns: [String]) throws {
    source = table.source
    let idCol = try table.require("id")
    let cols = try columns.map { try table.require($0) }
    var labels: [String: [String: Bool]] = Dictionary(uniqueKeysWithValues: columns.map { ($0, [:]) })
    var equivocal: [String: Int] = Dictionary(uniqueKeysWithValues: columns.map { ($0, 0) })
    var ids: [String] = []
    var seen = Set<String>()
    for (r, row) in table.rows.enumerated() {
      let id = row[idCol]
      guard seen.insert(id).inserted else {
        throw FileError("\(table.source):\(table.lines[r]): id '\(id)' appears twice; keep one row per id")
      }
      ids.append(id)
      for (name, c) in zip(columns, cols) {
        guard let cell = LabelCell(row[c]) else {
          throw FileError("\(table.source):\(table.lines[r]): column '\(name)' holds '\(row[c])'; expected 1/0 (or present/absent), or -1, 'equivocal' or blank for an equivocal case")
        }
        switch cell {
        case .positive: labels[name]![id] = true
        case .negative: labels[name]![id] = false
        case .uncertain, .blank: equivocal[name]! += 1
        }
      }
    }
    self.ids = ids; self.labels = labels; self.equivocal = equivocal
  }
}

public struct ConfusionRow: Codable, Equatable, Sendable {
  public var schema: String
  public var finding: String
  public var tp: Int, fp: Int, fn: Int, tn: Int
  /// Human-equivocal cases left out (plus schema-uncertain ones under `ignore`).
  public var leftOut: Int
}

/// One line of agreement.csv.
public struct AgreementRow: Codable, Equatable, Sendable {
  public var schema: String
  public var finding: String
  public var metric: String
  public var value: Double?
  public var ciLow: Double?
  public var ciHigh: Double?
  public var n: Int
  public var nPos: Int
}

public struct AgreementResult: Sendable {
  public var schemas: [String]
  public var findings: [String]
  public var rows: [AgreementRow]
  public var confusions: [ConfusionRow]
  public var notes: [String]
  public var rounds: Int
  public var seed: UInt64
}

public enum Agreement {
  /// The name under which inter-annotator AC1 rows appear in the `schema` column.
  public static let annotatorsName = "annotators"

  /// Each schema against the human labels, per finding. `annotators`: two column names of the
  /// human file, where `{finding}` stands for the finding (e.g. `{finding}_r1,{finding}_r2`).
  public static func run(human: CSVTable, schemas: [(name: String, table: CSVTable)], findings: [String],
                         policy: UncertainPolicy = .ones, annotators: (String, String)? = nil,
                         rounds: Int = 1000, seed: UInt64 = 0) throws -> AgreementResult {
    guard !schemas.isEmpty else { throw FileError("give at least one --schema NAME=labels.csv") }
    try Evaluation.checkUniqueNames(schemas.map(\.name), option: "--schema")
    let humanLabels = try HumanLabels(table: human, columns: findings)
    var result = AgreementResult(schemas: schemas.map(\.name), findings: findings, rows: [], confusions: [], notes: [],
                                 rounds: rounds, seed: seed)
    for (name, table) in schemas {
      let schema = try ReferenceLabels(name: name, table: table, findings: findings, policy: policy)
      let humanIDs = Set(humanLabels.ids)
      let onlyHuman = humanLabels.ids.filter { schema.row[$0] == nil }
      let onlySchema = schema.ids.filter { !humanIDs.contains($0) }
      if !onlyHuman.isEmpty {
        result.notes.append("\(onlyHuman.count) id(s) of the human file (\(humanLabels.source)) are not in schema '\(name)' (\(table.source)) and were left out, e.g. \(Evaluation.sample(onlyHuman))")
      }
      if !onlySchema.isEmpty {
        result.notes.append("\(onlySchema.count) id(s) of schema '\(name)' (\(table.source)) are not in the human file and were left out, e.g. \(Evaluation.sample(onlySchema))")
      }
      for f in findings {
        var truth: [Bool] = [], predicted: [Bool] = []
        var leftOut = 0
        for id in humanLabels.ids where schema.row[id] != nil {
          guard let h = humanLabels.labels[f]![id], let s = schema.label(f, id: id) else { leftOut += 1; continue }
          truth.append(h); predicted.append(s)
        }
        let c = Confusion(predicted: predicted, truth: truth)
        result.confusions.append(ConfusionRow(schema: name, finding: f, tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn, leftOut: leftOut))
        let positives = truth.indices.filter { truth[$0] }.map { Int32($0) }
        if positives.isEmpty || positives.count == truth.count {
          result.notes.append("the human file has only \(positives.isEmpty ? "negative" : "positive") cases for '\(f)' among the \(truth.count) it shares with '\(name)': bootstrap CIs were not computed and undefined metrics are left blank")
        }
        let boot = (positives.isEmpty || positives.count == truth.count) ? Array(repeating: [], count: Confusion.metricNames.count)
          : Bootstrap.statistics(caseCount: truth.count, rounds: rounds, seed: seed, positives: positives,
                                 metrics: Confusion.metricNames.count) { w in
              Confusion(predicted: predicted, truth: truth, weights: w).metrics
            }
        for (k, metric) in Confusion.metricNames.enumerated() {
          let ci = percentileInterval(boot[k])
          result.rows.append(AgreementRow(schema: name, finding: f, metric: metric, value: c.metrics[k],
                                          ciLow: ci?.low, ciHigh: ci?.high, n: truth.count, nPos: c.tp + c.fn))
        }
      }
    }
    if let (a, b) = annotators {
      for f in findings {
        let colA = a.replacingOccurrences(of: "{finding}", with: f), colB = b.replacingOccurrences(of: "{finding}", with: f)
        let raters = try HumanLabels(table: human, columns: [colA, colB])
        var ra: [Bool] = [], rb: [Bool] = []
        for id in raters.ids {
          guard let x = raters.labels[colA]![id], let y = raters.labels[colB]![id] else { continue }
          ra.append(x); rb.append(y)
        }
        let boot = Bootstrap.statistics(caseCount: ra.count, rounds: rounds, seed: seed, metrics: 1) { w in
          [gwetAC1(ra, rb, weights: w)]
        }
        let ci = percentileInterval(boot[0])
        // n_pos: cases that at least one annotator called positive.
        let label = a.contains("{finding}") ? f : "\(colA) vs \(colB)"
        result.rows.append(AgreementRow(schema: annotatorsName, finding: label, metric: "gwet_ac1", value: gwetAC1(ra, rb),
                                        ciLow: ci?.low, ciHigh: ci?.high, n: ra.count,
                                        nPos: ra.indices.filter { ra[$0] || rb[$0] }.count))
        // The study's AC1: three categories (present / absent / uncertain); blank = not read, left out.
        let ia = try human.require(colA), ib = try human.require(colB)
        var xa: [Int] = [], xb: [Int] = []
        for row in human.rows {
          guard let p = LabelCell(row[ia]), let q = LabelCell(row[ib]), p != .blank, q != .blank else { continue }
          let k: (LabelCell) -> Int = { $0 == .positive ? 0 : $0 == .negative ? 1 : 2 }
          xa.append(k(p)); xb.append(k(q))
        }
        let boot3 = Bootstrap.statistics(caseCount: xa.count, rounds: rounds, seed: seed, metrics: 1) { w in
          [gwetAC1(xa, xb, categories: 3, weights: w)]
        }
        let ci3 = percentileInterval(boot3[0].filter { $0.isFinite })
        result.rows.append(AgreementRow(schema: annotatorsName, finding: label, metric: "gwet_ac1_3cat",
                                        value: gwetAC1(xa, xb, categories: 3), ciLow: ci3?.low, ciHigh: ci3?.high, n: xa.count,
                                        nPos: xa.indices.filter { xa[$0] == 0 || xb[$0] == 0 }.count))
        if !a.contains("{finding}") { break }  // literal columns: one AC1, not one per finding
      }
    }
    return result
  }
}
