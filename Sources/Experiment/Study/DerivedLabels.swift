import Common
import Data
import Evaluate
import Foundation

/// How a derived schema's labels are made (`derive:` of a schema item), at load time, from the
/// label tables of the schemas it names.
extension Study {
  /// The labels of schema `name` for the study's findings: read from its file, or derived from
  /// other schemas (each source read once).
  public func labelTable(schema name: String) throws -> LabelTable {
    var memo: [String: LabelTable] = [:]
    return try labelTable(name, memo: &memo)
  }

  func labelTable(_ name: String, memo: inout [String: LabelTable]) throws -> LabelTable {
    if let t = memo[name] { return t }
    let i = try schemaIndex(name)
    let item = settings.schemas[i]
    let table: LabelTable
    if item.derive.isSet {
      let sources = try item.derive.sources.map { try labelTable($0, memo: &memo) }
      table = try derive(name, item.derive, from: sources)
    } else {
      guard let schema = try labelSchema(.schemas, i) else { throw ConfigError("\(config.source): schemas[\(i)] needs a file") }
      table = try schema.read(findings: findings)
    }
    memo[name] = table
    return table
  }

  /// The flip rates of a `derive.from` schema, per study finding.
  func flipRates(_ d: StudyConfig.Derive) -> [LabelDerivation.FlipRates] {
    findings.map { f in
      LabelDerivation.FlipRates(positive: d.perFinding[f]?.flipPositive ?? d.flipPositive ?? 0,
                                negative: d.perFinding[f]?.flipNegative ?? d.flipNegative ?? 0)
    }
  }

  func derive(_ name: String, _ d: StudyConfig.Derive, from sources: [LabelTable]) throws -> LabelTable {
    if d.from != nil {
      return LabelDerivation.flip(sources[0], name: name, rates: flipRates(d), seed: UInt64(d.seed ?? settings.seed))
    }
    if d.vote != nil {
      return try LabelDerivation.vote(sources, name: name, findings: findings, rule: d.rule ?? .majority, ties: d.ties ?? .positive)
    }
    return try consensus(name, sources: sources, output: d.output ?? .hard).table
  }

  /// The Dawid-Skene consensus of `sources` (each under its own uncertainty policy; a source
  /// without a row for a report is missing there), with the fit of each finding.
  func consensus(_ name: String, sources: [LabelTable], output: StudyConfig.ConsensusOutput)
    throws -> (table: LabelTable, fits: [DawidSkene.Fit]) {
    let (keys, rows, bySubject) = LabelDerivation.align(sources)
    let columns = try LabelDerivation.binaryColumns(sources, rows: rows, findings: findings)
    let nf = findings.count
    var values = [LabelValue](repeating: .negative, count: keys.count * nf)
    var soft = [Float](repeating: 0, count: keys.count * nf)
    var fits: [DawidSkene.Fit] = []
    for f in 0..<nf {
      let fit: DawidSkene.Fit
      do { fit = try DawidSkene.fit(columns[f], labellers: sources.map(\.schema)) } catch let e as UserError {
        throw ConfigError("schema '\(name)', \(findings[f]): \(e.message)")
      }
      for i in keys.indices {
        let p = fit.posterior[i]
        soft[i * nf + f] = Float(p)
        values[i * nf + f] = p >= 0.5 ? .positive : .negative
      }
      fits.append(fit)
    }
    let table = LabelTable(schema: name, source: "Dawid-Skene consensus of \(sources.map(\.schema).joined(separator: ", "))",
                           findings: findings, uncertainty: .ones, join: sources.first?.join, keyedBySubject: bySubject,
                           values: values, rowOfKey: Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) }),
                           probabilities: output == .soft ? soft : nil)
    return (table, fits)
  }

  /// What a derived schema's labels depend on beyond its own item: every schema it is made
  /// from, recursively (their settings and file fingerprints), keyed `source.<name>.*`.
  func derivationInputs(_ name: String) throws -> [String: String] {
    var v: [String: String] = [:]
    var visited = Set<String>()
    func visit(_ n: String) throws {
      let item = settings.schemas[try schemaIndex(n)]
      for s in item.derive.sources where visited.insert(s).inserted {
        var source = settings.schemas[try schemaIndex(s)]
        source.testFile = nil
        for (k, x) in try NodeEncoder.flatten(source, prefix: "source.\(s)") where !k.hasPrefix("source.\(s).test_file") { v[k] = x }
        if !source.derive.isSet {
          for k in v.keys where k.hasPrefix("source.\(s).derive") || k.hasPrefix("source.\(s).sweep") { v[k] = nil }
        }
        if let file = source.file { v["file source.\(s).file"] = Fingerprint.file(URL(fileURLWithPath: file)) }
        try visit(s)
      }
    }
    try visit(name)
    return v
  }
}
