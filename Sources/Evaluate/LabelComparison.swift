import Common
import Foundation

/// `cxr labels compare`: labellers of the same reports compared without a human reference —
/// pairwise agreement (raw, Cohen's kappa, Gwet's AC1) and the Dawid-Skene estimates of each
/// labeller's sensitivity and specificity and of the prevalence, per finding, with percentile
/// bootstrap CIs over reports; with a human file, the measured values (as `cxr agree` computes
/// them) next to the estimates.
public struct LabelComparison: Sendable, Codable {
  public struct Pair: Sendable, Codable, Equatable {
    public var finding: String
    public var labellerA: String
    public var labellerB: String
    /// Reports both labelled (after the uncertainty policy).
    public var n: Int
    public var agreement: Double?
    public var cohenKappa: Double?
    public var gwetAC1: Double?
    /// Each side's share of positive labels on those reports.
    public var positiveRateA: Double?
    public var positiveRateB: Double?
  }

  /// One estimated quantity: a labeller's sensitivity or specificity, or the prevalence
  /// (labeller `LabelComparison.consensus`).
  public struct Estimate: Sendable, Codable, Equatable {
    public var finding: String
    public var labeller: String
    public var metric: String
    public var value: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
    /// The same quantity measured against the human reading, when one was given.
    public var measured: Double?
    public var measuredLow: Double?
    public var measuredHigh: Double?
    /// Reports the measured value rests on.
    public var measuredN: Int?
  }

  public struct FindingFit: Sendable, Codable, Equatable {
    public var finding: String
    public var status: DawidSkene.Status
    public var iterations: Int
    public var converged: Bool
    public var logLikelihood: Double
    public var items: Int
    /// Wall time of the fit (grouping the items by pattern, then EM to convergence), for the benchmark.
    public var seconds: Double
  }

  public static let consensus = "(all labellers)"

  public var labellers: [String]
  public var findings: [String]
  public var policy: String
  public var rounds: Int
  public var seed: UInt64
  public var human: String?
  public var pairs: [Pair] = []
  public var estimates: [Estimate] = []
  public var fits: [FindingFit] = []
  public var notes: [String] = []
  /// Report ids (the union over the labellers, in first-seen order) and per finding each id's
  /// Dawid-Skene posterior probability of being positive.
  public var ids: [String] = []
  public var posteriors: [String: [Double]] = [:]

  /// Compares `labellers` (name, table with `id`, `dicom_id` or `study_id` and one column per
  /// finding) on `findings` after `policy`.
  public static func run(labellers: [(name: String, table: CSVTable)], findings: [String], policy: UncertainPolicy,
                         human: CSVTable? = nil, rounds: Int = 1000, seed: UInt64 = 0,
                         options: DawidSkene.Options = DawidSkene.Options()) throws -> LabelComparison {
    guard labellers.count >= 3 else {
      throw FileError("cxr labels compare needs at least 3 --schema NAME=FILE labellers of the same reports (got \(labellers.count)): Dawid-Skene cannot tell one labeller's errors from another's with fewer; for two, use cxr agree against a human reading")
    }
    try Evaluation.checkUniqueNames(labellers.map(\.name), option: "--schema")
    let refs = try labellers.map { try ReferenceLabels(name: $0.name, table: $0.table, findings: findings, policy: policy) }
    var result = LabelComparison(labellers: labellers.map(\.name), findings: findings, policy: policy.rawValue, rounds: rounds,
                                 seed: seed, human: human?.source)
    // The union of the reports in first-seen order; the common case (every file lists the same
    // reports in the same order) needs no hashing.
    if refs.allSatisfy({ $0.ids == refs[0].ids }) {
      result.ids = refs[0].ids
    } else {
      var seen = Set<String>()
      for r in refs { for id in r.ids where seen.insert(id).inserted { result.ids.append(id) } }
    }
    for r in refs where r.ids.count < result.ids.count {
      result.notes.append("'\(r.name)' (\(r.source)) has no row for \(result.ids.count - r.ids.count) of the \(result.ids.count) reports; its labels count as missing there")
    }
    var measured: [String: AgreementRow] = [:]
    var humanPrevalence: [String: (Double, Int)] = [:]
    if let human {
      let agreement = try Agreement.run(human: human, schemas: labellers.map { ($0.name, $0.table) }, findings: findings,
                                        policy: policy, rounds: rounds, seed: seed)
      for row in agreement.rows { measured["\(row.schema)\t\(row.finding)\t\(row.metric)"] = row }
      result.notes += agreement.notes
      let h = try HumanLabels(table: human, columns: findings)
      let inStudy = Set(result.ids)
      for f in findings {
        let values = h.ids.filter(inStudy.contains).compactMap { h.labels[f]![$0] }
        if !values.isEmpty { humanPrevalence[f] = (Double(values.filter { $0 }.count) / Double(values.count), values.count) }
      }
    }
    // Each labeller's row of every report, looked up once for all findings.
    let rowOf: [[Int?]] = refs.map { r in r.ids == result.ids ? Array(r.ids.indices) : result.ids.map { r.row[$0] } }
    for f in findings {
      let columns: [[Bool?]] = refs.indices.map { j in
        let column = refs[j].columns[f]!
        return rowOf[j].map { $0.flatMap { column[$0] } }
      }
      for a in 0..<refs.count {
        for b in (a + 1)..<refs.count { result.pairs.append(pair(f, refs[a].name, refs[b].name, columns[a], columns[b])) }
      }
      let start = DispatchTime.now().uptimeNanoseconds
      let patterns = try DawidSkene.Patterns(columns, labellers: result.labellers)
      var fit = patterns.fit(weights: nil, options: options)
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      fit.notes = patterns.notes(for: fit, labellers: result.labellers)
      result.notes += fit.notes.map { "\(f): \($0)" }
      result.fits.append(FindingFit(finding: f, status: fit.status, iterations: fit.iterations, converged: fit.converged,
                                    logLikelihood: fit.logLikelihood, items: result.ids.count - fit.unlabelledItems,
                                    seconds: seconds))
      result.posteriors[f] = fit.posterior
      let L = refs.count
      // Bootstrap over reports: the whole EM again on each draw (same start, same stopping rule).
      let boot = Bootstrap.statistics(caseCount: result.ids.count, rounds: fit.status == .estimated ? rounds : 0, seed: seed,
                                      metrics: 1 + 2 * L) { w in
        let b = patterns.fit(weights: w, options: options)
        guard b.status == .estimated else { return [Double?](repeating: nil, count: 1 + 2 * L) }
        return [b.prevalence] + b.sensitivity + b.specificity
      }
      func estimate(_ labeller: String, _ metric: String, _ value: Double?, _ k: Int) -> Estimate {
        let ci = boot[k].isEmpty ? nil : percentileInterval(boot[k])
        var e = Estimate(finding: f, labeller: labeller, metric: metric, value: value, ciLow: ci?.low, ciHigh: ci?.high)
        if let m = measured["\(labeller)\t\(f)\t\(metric)"] {
          e.measured = m.value; e.measuredLow = m.ciLow; e.measuredHigh = m.ciHigh; e.measuredN = m.n
        }
        return e
      }
      var prevalence = estimate(consensus, "prevalence", fit.prevalence, 0)
      if let h = humanPrevalence[f] { prevalence.measured = h.0; prevalence.measuredN = h.1 }
      result.estimates.append(prevalence)
      for j in 0..<L {
        result.estimates.append(estimate(refs[j].name, "sensitivity", fit.sensitivity[j], 1 + j))
        result.estimates.append(estimate(refs[j].name, "specificity", fit.specificity[j], 1 + L + j))
      }
    }
    return result
  }

  static func pair(_ finding: String, _ a: String, _ b: String, _ x: [Bool?], _ y: [Bool?]) -> Pair {
    var xa: [Int] = [], yb: [Int] = []
    for i in x.indices { if let p = x[i], let q = y[i] { xa.append(p ? 1 : 0); yb.append(q ? 1 : 0) } }
    let n = xa.count
    let agree = zip(xa, yb).filter { $0 == $1 }.count
    func rate(_ v: [Int]) -> Double? { n > 0 ? Double(v.reduce(0, +)) / Double(n) : nil }
    return Pair(finding: finding, labellerA: a, labellerB: b, n: n, agreement: n > 0 ? Double(agree) / Double(n) : nil,
                cohenKappa: cohenKappa(xa, yb, categories: 2), gwetAC1: gwetAC1(xa, yb, categories: 2),
                positiveRateA: rate(xa), positiveRateB: rate(yb))
  }
}

extension LabelComparison {
  public var pairwiseCSV: String {
    var w = CSVWriter(header: ["finding", "labeller_a", "labeller_b", "n", "agreement", "cohen_kappa", "gwet_ac1",
                               "positive_rate_a", "positive_rate_b"])
    for p in pairs {
      w.append([p.finding, p.labellerA, p.labellerB, "\(p.n)", Format.full(p.agreement), Format.full(p.cohenKappa),
                Format.full(p.gwetAC1), Format.full(p.positiveRateA), Format.full(p.positiveRateB)])
    }
    return w.text
  }

  public var estimatesCSV: String {
    var w = CSVWriter(header: ["finding", "labeller", "metric", "estimate", "ci_low", "ci_high", "measured", "measured_ci_low",
                               "measured_ci_high", "measured_n"])
    for e in estimates {
      w.append([e.finding, e.labeller, e.metric, Format.full(e.value), Format.full(e.ciLow), Format.full(e.ciHigh),
                Format.full(e.measured), Format.full(e.measuredLow), Format.full(e.measuredHigh), e.measuredN.map(String.init) ?? ""])
    }
    return w.text
  }

  /// `id` and each finding's posterior probability (a soft-label schema file as it is).
  public var consensusCSV: String {
    var w = CSVWriter(header: ["id"] + findings)
    for (i, id) in ids.enumerated() { w.append([id] + findings.map { Format.full(posteriors[$0]![i]) }) }
    return w.text
  }

  public var markdown: String {
    var md = "# Labellers compared without a reference\n\n"
    md += "Labellers: \(labellers.map { "`\($0)`" }.joined(separator: ", ")); \(ids.count) reports. "
    md += "Uncertain labels: `\(policy)` (\(policy == "ones" ? "counted as positive" : policy == "zeros" ? "counted as negative" : "left out, as missing")) before everything below; a blank label is negative. "
    md += "Dawid-Skene (1979) EM per finding, started from the soft majority vote; 95 % percentile bootstrap CIs over reports from \(rounds) rounds (seed \(seed)), the EM refitted on each draw."
    if let human { md += " Measured: against the human reading in `\(human)`, as `cxr agree` computes it (equivocal human cases left out)." }
    md += "\n\n"
    if !notes.isEmpty { md += "## Notes\n\n" + notes.map { "- \(Markdown.escape($0))\n" }.joined() + "\n" }
    func cell(_ v: Double?, _ lo: Double?, _ hi: Double?) -> String {
      guard let v else { return "n/a" }
      return Format.short(v) + (lo != nil && hi != nil ? " \(Format.interval(lo, hi))" : "")
    }
    for f in findings {
      md += "## \(Markdown.escape(f))\n\n"
      if let fit = fits.first(where: { $0.finding == f }) {
        md += "EM: \(fit.status == .estimated ? "\(fit.iterations) iterations, \(fit.converged ? "converged" : "not converged")" : fit.status.rawValue) over \(fit.items) reports.\n\n"
      }
      md += "| labeller | sensitivity (estimated) | specificity (estimated) |\(human != nil ? " sensitivity (measured) | specificity (measured) |" : "")\n"
      md += "|---|---|---|\(human != nil ? "---|---|" : "")\n"
      if let p = estimates.first(where: { $0.finding == f && $0.metric == "prevalence" }) {
        md += "| prevalence | \(cell(p.value, p.ciLow, p.ciHigh)) | |\(human != nil ? " \(cell(p.measured, nil, nil)) | |" : "")\n"
      }
      for l in labellers {
        let s = estimates.first { $0.finding == f && $0.labeller == l && $0.metric == "sensitivity" }
        let p = estimates.first { $0.finding == f && $0.labeller == l && $0.metric == "specificity" }
        md += "| \(Markdown.escape(l)) | \(cell(s?.value, s?.ciLow, s?.ciHigh)) | \(cell(p?.value, p?.ciLow, p?.ciHigh)) |"
        if human != nil { md += " \(cell(s?.measured, s?.measuredLow, s?.measuredHigh)) | \(cell(p?.measured, p?.measuredLow, p?.measuredHigh)) |" }
        md += "\n"
      }
      md += "\n| labeller A | labeller B | n | agreement | Cohen's kappa | Gwet's AC1 |\n|---|---|---|---|---|---|\n"
      for p in pairs where p.finding == f {
        md += "| \(Markdown.escape(p.labellerA)) | \(Markdown.escape(p.labellerB)) | \(p.n) | \(Format.short(p.agreement)) | \(Format.short(p.cohenKappa)) | \(Format.short(p.gwetAC1)) |\n"
      }
      md += "\n"
    }
    return md
  }

  /// Writes pairwise.csv, dawid_skene.csv, consensus.csv, comparison.json and report.md into `dir`.
  public func write(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try AtomicFile.write(pairwiseCSV, to: dir.appendingPathComponent("pairwise.csv"))
    try AtomicFile.write(estimatesCSV, to: dir.appendingPathComponent("dawid_skene.csv"))
    try AtomicFile.write(consensusCSV, to: dir.appendingPathComponent("consensus.csv"))
    var summary = self
    summary.ids = []
    summary.posteriors = [:]
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try AtomicFile.write(try enc.encode(summary), to: dir.appendingPathComponent("comparison.json"))
    try AtomicFile.write(markdown, to: dir.appendingPathComponent("report.md"))
  }
}

extension Jobs {
  /// `cxr labels compare --schema NAME=FILE ... [--human FILE] [--findings A,B] --out DIR`.
  @discardableResult
  public static func compareLabels(schemas: [String], human: String?, findings: [String]?, uncertain: UncertainPolicy,
                                   rounds: Int, seed: UInt64, out: URL) throws -> LabelComparison {
    try checkRounds(rounds)
    let specs = try schemas.map { try NamedPath(parsing: $0, option: "--schema") }
    guard specs.count >= 3 else {
      throw FileError("cxr labels compare needs at least 3 --schema NAME=FILE labellers of the same reports (got \(specs.count)): Dawid-Skene cannot tell one labeller's errors from another's with fewer; for two, use cxr agree against a human reading")
    }
    let tables = try specs.map { try CSVTable.read(URL(fileURLWithPath: $0.path)) }
    let humanTable = try human.map { try CSVTable.read(URL(fileURLWithPath: $0)) }
    let idColumns: Set<String> = ["id", "dicom_id", "study_id", "subject_id", "path", "index"]
    let chosen: [String]
    if let findings { chosen = findings } else {
      chosen = tables[0].header.filter { col in !idColumns.contains(col) && !col.isEmpty && tables.allSatisfy { $0.index(of: col) != nil }
        && (humanTable.map { $0.index(of: col) != nil } ?? true) }
      guard !chosen.isEmpty else {
        throw FileError("no finding column is shared by all the --schema files\(human != nil ? " and \(human!)" : ""); name them with --findings")
      }
    }
    let result = try LabelComparison.run(labellers: zip(specs, tables).map { ($0.name, $1) }, findings: chosen, policy: uncertain,
                                         human: humanTable, rounds: rounds, seed: seed)
    try result.write(to: out)
    return result
  }
}
