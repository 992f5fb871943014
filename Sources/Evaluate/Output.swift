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
  static func json(_ v: Double?) -> Any { v.map { $0.isFinite ? $0 as Any : NSNull() } ?? NSNull() }
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
    var doc: [String: Any] = [
      "bootstrap_rounds": rounds, "seed": seed,
      "models": models, "references": references, "findings": findings,
      "metrics": rows.map { r -> [String: Any] in
        ["model": r.model, "reference": r.reference, "finding": r.finding, "metric": r.metric, "value": r.value,
         "ci_low": Format.json(r.ciLow), "ci_high": Format.json(r.ciHigh), "n": r.n, "n_pos": r.nPos]
      },
      "comparisons": comparisons.map { c -> [String: Any] in
        ["reference": c.reference, "finding": c.finding, "model_a": c.modelA, "model_b": c.modelB,
         "auroc_a": c.aurocA, "auroc_b": c.aurocB, "difference": c.difference, "ci_low": Format.json(c.ciLow),
         "ci_high": Format.json(c.ciHigh), "delong_z": Format.json(c.delongZ), "delong_p": c.delongP, "n": c.n, "n_pos": c.nPos,
         "delong_p_holm": Format.json(c.delongPHolm), "ttest_t": Format.json(c.ttestT), "ttest_p": Format.json(c.ttestP),
         "ttest_p_holm": Format.json(c.ttestPHolm), "holm_family_size": c.holmFamilySize]
      },
      "holm_family": EvaluationResult.holmFamily,
      "ttest_note": EvaluationResult.tTestNote,
      "notes": notes,
    ]
    doc.merge(extraJSON) { a, _ in a }
    if !subgroups.isEmpty { doc["subgroups"] = subgroupsJSON }
    return (try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
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
    let doc: [String: Any] = [
      "bootstrap_rounds": rounds, "seed": seed, "schemas": schemas, "findings": findings,
      "metrics": rows.map { r -> [String: Any] in
        ["schema": r.schema, "finding": r.finding, "metric": r.metric, "value": Format.json(r.value),
         "ci_low": Format.json(r.ciLow), "ci_high": Format.json(r.ciHigh), "n": r.n, "n_pos": r.nPos]
      },
      "confusion": confusions.map { c -> [String: Any] in
        ["schema": c.schema, "finding": c.finding, "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn, "left_out": c.leftOut]
      },
      "notes": notes,
    ]
    return (try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
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
