import Common
import Foundation

/// Number formatting shared by the files we write: full precision in CSV/JSON, 3 decimals for people.
public enum Format {
  static func full(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
  /// 3 decimals with a true minus sign (U+2212), as typeset text has it; a value that rounds to
  /// zero prints unsigned ("0.000", never "−0.000").
  public static func short(_ v: Double?, decimals: Int = 3) -> String {
    guard let v else { return "—" }
    let text = String(format: "%.\(decimals)f", abs(v))
    return v < 0 && text.contains(where: { $0 != "0" && $0 != "." }) ? "−" + text : text
  }
  static func p(_ v: Double) -> String { v < 0.001 ? String(format: "%.1e", v) : String(format: "%.3f", v) }
  static func p(_ v: Double?) -> String { v.map { p($0) } ?? "—" }
  /// A threshold for people: 4 significant digits, ∞ for "no case called positive".
  static func threshold(_ v: Double) -> String { v.isInfinite ? "∞" : String(format: "%.4g", v) }
  /// A number for metrics.json and agreement.json. JSON has no NaN or infinity, so a value that
  /// could not be computed (a one-class resample, PPV with no case called positive) is `null`.
  static func json(_ v: Double?) -> JSONNullable<Double> { JSONNullable(v.flatMap { $0.isFinite ? $0 : nil }) }
  /// metrics.json and agreement.json as the `JSONSerialization` writer they replaced wrote them,
  /// byte for byte: pretty-printed, keys sorted, "/" escaped as "\/". Its sort was numeric and
  /// case-insensitive with "_" first, JSONEncoder's is bytewise; they differ only where "_" meets
  /// a digit or an upper-case letter, which these files' keys (lower case, "_", the 1 of f1) never
  /// do. A non-finite number outside `json(_:)` cannot be written and gives "{}", as before.
  static func jsonDocument<Document: Encodable>(_ document: Document) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return (try? encoder.encode(document)) ?? Data("{}".utf8)
  }
  /// A CI for people. Both ends of one sign (as printed): "(0.712–0.801)", "(−0.356–−0.204)", an
  /// en dash between them. Ends of opposite signs: "[−0.050, 0.120]", since an en dash next to a
  /// minus sign is easily read as one long dash.
  /// "0.712 (0.650–0.770)", or the value alone without a CI.
  public static func estimate(_ v: Double?, _ lo: Double?, _ hi: Double?) -> String {
    let ci = interval(lo, hi)
    return ci.isEmpty ? short(v) : "\(short(v)) \(ci)"
  }
  public static func interval(_ lo: Double?, _ hi: Double?) -> String {
    guard let lo, let hi else { return "" }
    let a = short(lo), b = short(hi)
    return a.hasPrefix("−") == b.hasPrefix("−") ? "(\(a)–\(b))" : "[\(a), \(b)]"
  }
}

/// An optional that metrics.json and agreement.json write as `null`. Synthesized `Encodable`
/// leaves a nil optional's key out; these files keep every key of an entry, so that a reader
/// finds each key in each entry.
struct JSONNullable<Wrapped: Encodable>: Encodable {
  var wrapped: Wrapped?
  init(_ wrapped: Wrapped?) { self.wrapped = wrapped }

  func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    if let wrapped { try c.encode(wrapped) } else { try c.encodeNil() }
  }
}

/// metrics.json. The coding keys are the file's keys (`Format.jsonDocument` sorts them); the
/// sections of operating points, calibration and subgroups are in ReportSections.swift and
/// Subgroups.swift.
struct MetricsDocument: Encodable {
  var bootstrapRounds: Int
  var seed: UInt64
  var models: [String]
  var references: [String]
  var findings: [String]
  var metrics: [Metric]
  var comparisons: [PairedComparison]
  var holmFamily: String
  var ttestNote: String
  var notes: [String]
  var operatingPoints: [OperatingPoint]
  var tunedThresholds: [ChosenThreshold]
  /// null: no tuning predictions were given.
  var tuneReference: JSONNullable<String>
  var fixedThresholds: [Double]
  var calibrationBins: Int
  var calibration: [CalibrationScore]
  var reliability: [ReliabilityPoint]
  /// nil (no key at all) when no subgroups were asked for.
  var subgroups: [Subgroup]?

  enum CodingKeys: String, CodingKey {
    case bootstrapRounds = "bootstrap_rounds", seed, models, references, findings, metrics, comparisons
    case holmFamily = "holm_family", ttestNote = "ttest_note", notes
    case operatingPoints = "operating_points", tunedThresholds = "tuned_thresholds", tuneReference = "tune_reference"
    case fixedThresholds = "fixed_thresholds", calibrationBins = "calibration_bins", calibration, reliability, subgroups
  }

  /// A line of metrics.csv.
  struct Metric: Encodable {
    var model, reference, finding, metric: String
    var value: Double
    var ciLow, ciHigh: JSONNullable<Double>
    var n, nPos: Int

    init(_ r: MetricRow) {
      model = r.model; reference = r.reference; finding = r.finding; metric = r.metric; value = r.value
      ciLow = Format.json(r.ciLow); ciHigh = Format.json(r.ciHigh); n = r.n; nPos = r.nPos
    }

    enum CodingKeys: String, CodingKey {
      case model, reference, finding, metric, value, ciLow = "ci_low", ciHigh = "ci_high", n, nPos = "n_pos"
    }
  }

  /// A line of comparisons.csv: two models' AUROCs on the same cases.
  struct PairedComparison: Encodable {
    var reference, finding, modelA, modelB: String
    var aurocA, aurocB, difference: Double
    var ciLow, ciHigh, delongZ: JSONNullable<Double>
    var delongP: Double
    var n, nPos: Int
    var delongPHolm, ttestT, ttestP, ttestPHolm: JSONNullable<Double>
    var holmFamilySize: Int

    init(_ c: Comparison) {
      reference = c.reference; finding = c.finding; modelA = c.modelA; modelB = c.modelB
      aurocA = c.aurocA; aurocB = c.aurocB; difference = c.difference
      ciLow = Format.json(c.ciLow); ciHigh = Format.json(c.ciHigh); delongZ = Format.json(c.delongZ); delongP = c.delongP
      n = c.n; nPos = c.nPos
      delongPHolm = Format.json(c.delongPHolm); ttestT = Format.json(c.ttestT); ttestP = Format.json(c.ttestP)
      ttestPHolm = Format.json(c.ttestPHolm); holmFamilySize = c.holmFamilySize
    }

    enum CodingKeys: String, CodingKey {
      case reference, finding, modelA = "model_a", modelB = "model_b", aurocA = "auroc_a", aurocB = "auroc_b", difference
      case ciLow = "ci_low", ciHigh = "ci_high", delongZ = "delong_z", delongP = "delong_p", n, nPos = "n_pos"
      case delongPHolm = "delong_p_holm", ttestT = "ttest_t", ttestP = "ttest_p", ttestPHolm = "ttest_p_holm"
      case holmFamilySize = "holm_family_size"
    }
  }

  /// A value with its 95 % CI, each null where undefined (PPV with no case called positive, an
  /// AUROC of a one-class subgroup).
  struct ValueWithCI: Encodable {
    var value, ciLow, ciHigh: JSONNullable<Double>

    init(_ e: Estimate) { value = Format.json(e.value); ciLow = Format.json(e.ciLow); ciHigh = Format.json(e.ciHigh) }

    enum CodingKeys: String, CodingKey { case value, ciLow = "ci_low", ciHigh = "ci_high" }
  }
}

/// agreement.json. The coding keys are the file's keys (`Format.jsonDocument` sorts them).
struct AgreementDocument: Encodable {
  var bootstrapRounds: Int
  var seed: UInt64
  var schemas: [String]
  var findings: [String]
  var metrics: [Metric]
  var confusion: [ConfusionCounts]
  var notes: [String]

  enum CodingKeys: String, CodingKey {
    case bootstrapRounds = "bootstrap_rounds", seed, schemas, findings, metrics, confusion, notes
  }

  /// A line of agreement.csv: a schema against the human reading (or the annotators' AC1).
  struct Metric: Encodable {
    var schema, finding, metric: String
    var value, ciLow, ciHigh: JSONNullable<Double>
    var n, nPos: Int

    init(_ r: AgreementRow) {
      schema = r.schema; finding = r.finding; metric = r.metric
      value = Format.json(r.value); ciLow = Format.json(r.ciLow); ciHigh = Format.json(r.ciHigh); n = r.n; nPos = r.nPos
    }

    enum CodingKeys: String, CodingKey {
      case schema, finding, metric, value, ciLow = "ci_low", ciHigh = "ci_high", n, nPos = "n_pos"
    }
  }

  /// A line of confusion.csv.
  struct ConfusionCounts: Encodable {
    var schema, finding: String
    var tp, fp, fn, tn, leftOut: Int

    init(_ c: ConfusionRow) { schema = c.schema; finding = c.finding; tp = c.tp; fp = c.fp; fn = c.fn; tn = c.tn; leftOut = c.leftOut }

    enum CodingKeys: String, CodingKey { case schema, finding, tp, fp, fn, tn, leftOut = "left_out" }
  }
}

extension EvaluationResult {
  public var metricsCSV: String {
    var w = CSVWriter(header: ["model", "reference", "finding", "metric", "value", "ci_low", "ci_high", "n", "n_pos"])
    for r in rows {
      w.append([r.model, r.reference, r.finding, r.metric, Format.full(r.value), Format.full(r.ciLow), Format.full(r.ciHigh),
                "\(r.n)", "\(r.nPos)"])
    }
    return w.text
  }

  public var comparisonsCSV: String {
    var w = CSVWriter(header: ["reference", "finding", "model_a", "model_b", "auroc_a", "auroc_b", "difference",
                               "ci_low", "ci_high", "delong_z", "delong_p", "n", "n_pos",
                               "delong_p_holm", "ttest_t", "ttest_p", "ttest_p_holm", "holm_family_size"])
    for c in comparisons {
      w.append([c.reference, c.finding, c.modelA, c.modelB, Format.full(c.aurocA), Format.full(c.aurocB),
                Format.full(c.difference), Format.full(c.ciLow), Format.full(c.ciHigh), Format.full(c.delongZ),
                Format.full(c.delongP), "\(c.n)", "\(c.nPos)",
                Format.full(c.delongPHolm), Format.full(c.ttestT), Format.full(c.ttestP), Format.full(c.ttestPHolm), "\(c.holmFamilySize)"])
    }
    return w.text
  }

  public var json: Data {
    Format.jsonDocument(MetricsDocument(
      bootstrapRounds: rounds, seed: seed, models: models, references: references, findings: findings,
      metrics: rows.map(MetricsDocument.Metric.init), comparisons: comparisons.map(MetricsDocument.PairedComparison.init),
      holmFamily: EvaluationResult.holmFamily, ttestNote: EvaluationResult.tTestNote, notes: notes,
      operatingPoints: operatingPoints.map(MetricsDocument.OperatingPoint.init),
      tunedThresholds: tunedThresholds.map(MetricsDocument.ChosenThreshold.init), tuneReference: JSONNullable(tuneSource),
      fixedThresholds: fixedThresholds, calibrationBins: calibrationBins,
      calibration: calibration.map(MetricsDocument.CalibrationScore.init), reliability: reliability.map(MetricsDocument.ReliabilityPoint.init),
      subgroups: subgroups.isEmpty ? nil : subgroups.map(MetricsDocument.Subgroup.init)))
  }

  public var markdown: String {
    var md = "# Evaluation\n\n\(models.count) model(s) x \(references.count) reference(s), findings: \(findings.joined(separator: ", ")). "
    md += "95 % percentile bootstrap CIs from \(rounds) rounds (seed \(seed)); rounds missing a class are redrawn.\n\n"
    md += "## What made these numbers\n\nEach number is one model's test-set predictions scored against one reference's labels of the same images. "
    md += "Thresholds marked 'tune' were chosen on \(Markdown.escape(tuneSource ?? "no tuning split (none was given)")).\n\n"
    md += "| model | test predictions | weights | made by |\n|---|---|---|---|\n"
    for m in models {
      let p = predictionSources[m]
      md += "| \(Markdown.escape(m)) | \(Markdown.escape(p?.file ?? "?")) | \(Markdown.escape(p?.weightsText ?? "?")) | \(Markdown.escape(p?.madeBy ?? "not stated")) |\n"
    }
    md += "\n| reference | labels from |\n|---|---|\n" + references.map { "| \(Markdown.escape($0)) | \(Markdown.escape(referenceSources[$0] ?? "?")) |\n" }.joined() + "\n"
    md += "Figures (SVG and PDF): `figures/`; curve bands: `curve_bands.csv`.\n\n"
    if !notes.isEmpty {
      md += "## Notes\n\n" + notes.map { "- \(Markdown.escape($0))\n" }.joined() + "\n"
    }
    for f in findings {
      for metric in ["auroc", "auprc"] {
        md += "## \(Markdown.escape(f)): \(metric.uppercased())\n\n"
        md += "| model | " + references.map(Markdown.escape).joined(separator: " | ") + " |\n"
        md += "|---|" + references.map { _ in "---|" }.joined() + "\n"
        for m in models {
          md += "| \(Markdown.escape(m)) | " + references.map { ref in
            guard let r = row(model: m, reference: ref, finding: f, metric: metric) else { return "n/a" }
            return "\(Format.short(r.value)) \(Format.interval(r.ciLow, r.ciHigh))"
          }.joined(separator: " | ") + " |\n"
        }
        md += "\n"
      }
    }
    if !comparisons.isEmpty {
      md += "## Paired comparisons (AUROC)\n\n\(EvaluationResult.comparisonsLegend(rounds: rounds))\n\n"
      md += "| reference | finding | model A | model B | A − B | 95 % CI | DeLong p | DeLong p (Holm) | t-test p (study's method) | t-test p (Holm) |\n"
      md += "|---|---|---|---|---|---|---|---|---|---|\n"
      for c in comparisons {
        md += "| \(Markdown.escape(c.reference)) | \(Markdown.escape(c.finding)) | \(Markdown.escape(c.modelA)) | \(Markdown.escape(c.modelB)) | "
        md += "\(Format.short(c.difference)) | \(Format.interval(c.ciLow, c.ciHigh)) | \(Format.p(c.delongP)) | \(Format.p(c.delongPHolm)) | "
        md += "\(Format.p(c.ttestP)) | \(Format.p(c.ttestPHolm)) |\n"
      }
    }
    md += operatingPointsMarkdown + calibrationMarkdown
    md += subgroupsMarkdown
    return md
  }

  /// Writes metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv,
  /// curve_bands.csv, subgroups.csv, metrics.json, report.md, report.html and every figure as
  /// SVG and PDF (figures/) into `dir`.
  /// A figure problem that does not stop the evaluation (no PDF here) joins `notes`, so the
  /// report and whoever prints the notes say it.
  public mutating func write(to dir: URL) throws {
    let figures = keyedFigures()
    if let note = try FigureFiles.write(figures.map(\.figure), to: dir.appendingPathComponent("figures")) { notes.append(note) }
    try writeTables(to: dir, figures: figures)
  }

  private func writeTables(to dir: URL, figures: [(key: FigureKey, figure: Figure)]) throws {
    try AtomicFile.write(curveBandsCSV, to: dir.appendingPathComponent("curve_bands.csv"))
    try AtomicFile.write(metricsCSV, to: dir.appendingPathComponent("metrics.csv"))
    try AtomicFile.write(comparisonsCSV, to: dir.appendingPathComponent("comparisons.csv"))
    try AtomicFile.write(operatingPointsCSV, to: dir.appendingPathComponent("operating_points.csv"))
    try AtomicFile.write(calibrationCSV, to: dir.appendingPathComponent("calibration.csv"))
    try AtomicFile.write(reliabilityCSV, to: dir.appendingPathComponent("reliability.csv"))
    try AtomicFile.write(subgroupsCSV, to: dir.appendingPathComponent("subgroups.csv"))
    try AtomicFile.write(json, to: dir.appendingPathComponent("metrics.json"))
    try AtomicFile.write(markdown, to: dir.appendingPathComponent("report.md"))
    try AtomicFile.write(html(figures: figures), to: dir.appendingPathComponent("report.html"))
  }
}

extension AgreementResult {
  public var agreementCSV: String {
    var w = CSVWriter(header: ["schema", "finding", "metric", "value", "ci_low", "ci_high", "n", "n_pos"])
    for r in rows {
      w.append([r.schema, r.finding, r.metric, Format.full(r.value), Format.full(r.ciLow), Format.full(r.ciHigh), "\(r.n)", "\(r.nPos)"])
    }
    return w.text
  }

  public var confusionCSV: String {
    var w = CSVWriter(header: ["schema", "finding", "tp", "fp", "fn", "tn", "left_out"])
    for c in confusions { w.append([c.schema, c.finding, "\(c.tp)", "\(c.fp)", "\(c.fn)", "\(c.tn)", "\(c.leftOut)"]) }
    return w.text
  }

  public var json: Data {
    Format.jsonDocument(AgreementDocument(
      bootstrapRounds: rounds, seed: seed, schemas: schemas, findings: findings,
      metrics: rows.map(AgreementDocument.Metric.init), confusion: confusions.map(AgreementDocument.ConfusionCounts.init), notes: notes))
  }

  public var markdown: String {
    var md = "# Label agreement with the human reading\n\n95 % percentile bootstrap CIs from \(rounds) rounds (seed \(seed)). "
    md += "Human cases marked equivocal (-1, 'equivocal', 'uncertain' or blank) are left out per finding.\n\n"
    if !notes.isEmpty { md += "## Notes\n\n" + notes.map { "- \(Markdown.escape($0))\n" }.joined() + "\n" }
    for f in findings {
      md += "## \(Markdown.escape(f))\n\n| schema | " + Confusion.metricNames.joined(separator: " | ") + " | TP | FP | FN | TN | left out |\n"
      md += "|---|" + String(repeating: "---|", count: Confusion.metricNames.count + 5) + "\n"
      for s in schemas {
        md += "| \(Markdown.escape(s)) | " + Confusion.metricNames.map { m in
          guard let r = rows.first(where: { $0.schema == s && $0.finding == f && $0.metric == m }) else { return "n/a" }
          return "\(Format.short(r.value)) \(Format.interval(r.ciLow, r.ciHigh))"
        }.joined(separator: " | ")
        if let c = confusions.first(where: { $0.schema == s && $0.finding == f }) {
          md += " | \(c.tp) | \(c.fp) | \(c.fn) | \(c.tn) | \(c.leftOut)"
        }
        md += " |\n"
      }
      md += "\n"
    }
    let ac1 = rows.filter { $0.schema == Agreement.annotatorsName }
    if !ac1.isEmpty {
      md += "## Inter-annotator agreement (Gwet's AC1)\n\n| finding | categories | AC1 | 95 % CI | n |\n|---|---|---|---|---|\n"
      for r in ac1 { md += "| \(Markdown.escape(r.finding)) | \(Agreement.ac1Label(r.metric)) | \(Format.short(r.value)) | \(Format.interval(r.ciLow, r.ciHigh)) | \(r.n) |\n" }
    }
    return md
  }

  /// Writes agreement.csv, confusion.csv, agreement.json, report.md and report.html into `dir`.
  public func write(to dir: URL) throws {
    try AtomicFile.write(agreementCSV, to: dir.appendingPathComponent("agreement.csv"))
    try AtomicFile.write(confusionCSV, to: dir.appendingPathComponent("confusion.csv"))
    try AtomicFile.write(json, to: dir.appendingPathComponent("agreement.json"))
    try AtomicFile.write(markdown, to: dir.appendingPathComponent("report.md"))
    try AtomicFile.write(html, to: dir.appendingPathComponent("report.html"))
  }
}

enum Markdown {
  /// Keeps user text (names, ids) from breaking tables or turning into markup.
  static func escape(_ s: String) -> String {
    var out = ""
    for ch in s {
      switch ch {
      case "|", "\\", "*", "_", "`", "[", "]", "<", ">", "#": out += "\\\(ch)"
      case "\n", "\r": out += " "
      default: out.append(ch)
      }
    }
    return out
  }
}
