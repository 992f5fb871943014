import Common
import Data
import Evaluate
import Foundation

/// The study report's sections on the labels themselves: the noise curve of the `derive.from`
/// schemas, and the Dawid-Skene estimate of each labeller's quality.
extension StudyReport {
  /// Per finding: each label-noise schema's training-label sensitivity and specificity (relative
  /// to its source) and its classifier's AUROC against every reference; an SVG chart per finding
  /// (`noise-<finding>.svg`) beside the report.
  func noiseCurveSection(metrics table: CSVTable?) throws -> String {
    let study = run.study
    let noisy = study.settings.schemas.filter { $0.derive.from != nil && $0.name != nil }
    guard !noisy.isEmpty else { return "" }
    var md = "## Noise curve: AUROC against the training labels' sensitivity\n\n"
    md += "Schemas made by flipping another schema's labels (`derive.from`): sensitivity = 1 - flip_positive and specificity = 1 - flip_negative, relative to the source's labels (after its uncertainty policy). Cells: AUROC (95 % CI) against each reference.\n\n"
    let col = { (n: String) in table?.index(of: n) }
    let refs = table.map { t in ordered(t.rows.map { $0[col("reference")!] }) } ?? []
    func auroc(_ model: String, _ ref: String, _ finding: String) -> (Double, Double?, Double?)? {
      guard let t = table, let cm = col("model"), let cr = col("reference"), let cf = col("finding"), let cmet = col("metric"),
            let cv = col("value"), let lo = col("ci_low"), let hi = col("ci_high") else { return nil }
      guard let row = t.rows.first(where: { $0[cm] == model && $0[cr] == ref && $0[cf] == finding && $0[cmet] == "auroc" }),
            let v = Double(row[cv]) else { return nil }
      return (v, Double(row[lo]), Double(row[hi]))
    }
    for (f, finding) in study.findings.enumerated() {
      md += "### \(finding)\n\n| schema | from | sensitivity | specificity |" + refs.map { " \($0) |" }.joined() + "\n"
      md += "|---|---|---|---|" + refs.map { _ in "---|" }.joined() + "\n"
      var series: [String: [(Double, Double)]] = [:]
      let rows = noisy.map { item -> (String, String, Double, Double) in
        let r = study.flipRates(item.derive)[f]
        return (item.name!, item.derive.from!, 1 - r.positive, 1 - r.negative)
      }.sorted { ($0.1, $1.2, $0.3) < ($1.1, $0.2, $1.3) }
      for (name, from, sens, spec) in rows {
        md += "| \(name) | \(from) | \(String(format: "%.3f", sens)) | \(String(format: "%.3f", spec)) |"
        for ref in refs {
          guard let point = auroc(name, ref, finding) else { md += " - |"; continue }
          let (v, lo, hi) = point
          md += " \(Format.estimate(v, lo, hi)) |"
          series["\(from), specificity \(String(format: "%.2f", spec)), vs \(ref)", default: []].append((sens, v))
        }
        md += "\n"
      }
      md += "\n"
      if !series.isEmpty {
        let file = "noise-\(finding.replacingOccurrences(of: " ", with: "_")).svg"
        let svg = NoiseCurve.svg(title: "\(finding): AUROC vs training-label sensitivity",
                                 series: series.keys.sorted().map { ($0, series[$0]!) })
        try AtomicFile.write(svg, to: study.runRoot.appendingPathComponent(file))
        md += "![\(finding) noise curve](\(file))\n\n"
      }
    }
    return md
  }

  /// For each `derive.dawid_skene` schema: each source labeller's estimated sensitivity and
  /// specificity per finding and the prevalence, next to the same rates measured against every
  /// file schema that is not one of its sources (in the synthetic study: the truth).
  func labellerQualitySection() throws -> String {
    let study = run.study
    let consensus = study.settings.schemas.filter { $0.derive.dawidSkene != nil && $0.name != nil }
    guard !consensus.isEmpty else { return "" }
    var md = "## Labeller quality without a reference (Dawid-Skene)\n\n"
    md += "Estimated from the labellers' training labels alone (each labeller's uncertain labels under its own policy; a missing row is missing), EM started from the soft majority vote. Measured: against another schema's labels of the same reports, where the config has one.\n\n"
    for item in consensus {
      let name = item.name!, sources = item.derive.dawidSkene!
      let tables = try sources.map { try study.labelTable(schema: $0) }
      let fits = try study.consensus(name, sources: tables, output: item.derive.output ?? .hard).fits
      let others = study.settings.schemas.filter { $0.file != nil && $0.name != nil && !sources.contains($0.name!) }.map { $0.name! }
      let referenceTables = try others.map { try study.labelTable(schema: $0) }
      md += "### \(name): \(sources.joined(separator: ", "))\n\n"
      for (f, finding) in study.findings.enumerated() {
        let fit = fits[f]
        md += "\(finding): \(fit.status == .estimated ? "\(fit.iterations) EM iterations\(fit.converged ? "" : " (not converged)")" : fit.status.rawValue); estimated prevalence \(String(format: "%.3f", fit.prevalence)).\n\n"
        md += "| labeller | sensitivity (estimated) | specificity (estimated) |" + others.map { " sensitivity vs \($0) | specificity vs \($0) |" }.joined() + "\n"
        md += "|---|---|---|" + others.map { _ in "---|---|" }.joined() + "\n"
        for (j, s) in sources.enumerated() {
          md += "| \(s) | \(fit.sensitivity[j].map { String(format: "%.3f", $0) } ?? "n/a") | \(fit.specificity[j].map { String(format: "%.3f", $0) } ?? "n/a") |"
          for r in referenceTables {
            let (_, rows, _) = LabelDerivation.align([r, tables[j]])
            let columns = try LabelDerivation.binaryColumns([r, tables[j]], rows: rows, findings: [finding])[0]
            var truth: [Bool] = [], said: [Bool] = []
            for i in columns[0].indices { if let t = columns[0][i], let v = columns[1][i] { truth.append(t); said.append(v) } }
            let c = Confusion(predicted: said, truth: truth)
            md += " \(c.sensitivity.map { String(format: "%.3f", $0) } ?? "n/a") | \(c.specificity.map { String(format: "%.3f", $0) } ?? "n/a") |"
          }
          md += "\n"
        }
        md += "\n"
        for note in fit.notes { md += "- \(note)\n" }
        if !fit.notes.isEmpty { md += "\n" }
      }
    }
    return md
  }
}
