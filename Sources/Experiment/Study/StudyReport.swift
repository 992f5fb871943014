import Common
import Data
import Evaluate
import Foundation

/// The study's one-page summary (`<run>/report.md`): per finding, the training-schema x
/// reference AUROC and AUPRC matrices with 95 % CIs; what failed and why; label statistics;
/// stage timings. The plots are in `evaluation/report.html`.
struct StudyReport {
  let run: StudyRun
  let outcomes: [(String, StageOutcome)]
  let pipeline: Pipeline

  func write() throws {
    let study = run.study
    var md = "# \(study.name)\n\n"
    md += "Config: `config.yaml` (resolved). Plots: [evaluation/report.html](evaluation/report.html). "
    md += "All numbers: `evaluation/metrics.csv`.\n\n"

    let failed = outcomes.filter { !$0.1.succeeded }
    if !failed.isEmpty {
      md += "## What did not run\n\n| stage | why |\n|---|---|\n"
      for (name, o) in failed {
        let why: String
        switch o {
        case .failed(let m): why = "failed: " + m
        case .blocked(let m): why = "not run: " + m
        case .interrupted(let m): why = "interrupted (resumable: run the same command again): " + m
        default: why = ""
        }
        md += "| \(name) | \(why.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")) |\n"
      }
      md += "\n"
    }

    // Which weights made each classifier's test predictions, and what ran them.
    var made = ""
    for schema in study.schemaNames {
      guard let table = try? CSVTable.read(run.predictionsURL(schema)) else { continue }
      let info = PredictionsFile.header(table.comments)
      made += "| \(schema) | \(info["weights_kind"] ?? "?") | `\(info["weights"] ?? "?")` (sha256 \(info["weights_sha256"].map { String($0.prefix(12)) } ?? "?")) | \(info["provenance"] ?? "?") |\n"
    }
    if !made.isEmpty {
      md += "## Which weights made the predictions\n\n| schema | weights | file | made by |\n|---|---|---|---|\n" + made + "\n"
    }
    let references = (try? study.testIndex()).flatMap { $0 }.map { try? run.references(index: $0) } ?? nil
    if let references, !references.isEmpty {
      md += "References (columns below): " + references.map { "`\($0.name)` (\($0.source))" }.joined(separator: ", ") + ".\n\n"
    }

    let metrics = run.evaluationFolder.appendingPathComponent("metrics.csv")
    if let table = try? CSVTable.read(metrics) {
      let col = { (n: String) in table.index(of: n)! }
      let (cm, cr, cf, cmet, cv, lo, hi) = (col("model"), col("reference"), col("finding"), col("metric"), col("value"),
                                           col("ci_low"), col("ci_high"))
      let models = ordered(table.rows.map { $0[cm] })
      let refs = ordered(table.rows.map { $0[cr] })
      for finding in ordered(table.rows.map { $0[cf] }) {
        for metric in ["auroc", "auprc"] {
          md += "## \(finding): \(metric.uppercased()) (rows: training schema, columns: reference)\n\n"
          md += "| schema | " + refs.joined(separator: " | ") + " |\n|---|" + refs.map { _ in "---|" }.joined() + "\n"
          for m in models {
            md += "| \(m) |"
            for r in refs {
              if let row = table.rows.first(where: { $0[cm] == m && $0[cr] == r && $0[cf] == finding && $0[cmet] == metric }),
                 let v = Double(row[cv]) {
                md += " \(Format.estimate(v, Double(row[lo]), Double(row[hi]))) |"
              } else {
                md += " - |"
              }
            }
            md += "\n"
          }
          md += "\n"
        }
      }
    } else {
      md += "No evaluation yet (see above).\n\n"
    }

    md += (try? noiseCurveSection(metrics: try? CSVTable.read(metrics))) ?? ""
    md += (try? labellerQualitySection()) ?? ""
    md += "## Training labels\n\n| schema | images | positives per finding | uncertain | unlabelled images | label rows matching no image |\n|---|---|---|---|---|---|\n"
    if let index = try? study.trainIndex() {
      for s in study.schemaNames {
        guard let l = try? study.labelling(schema: s, index: index) else { md += "| \(s) | unreadable | | | | |\n"; continue }
        let counts = l.counts()
        let pos = zip(study.findings, counts).map { "\($0): \($1.positive)" }.joined(separator: ", ")
        let unc = zip(study.findings, counts).map { "\($0): \($1.uncertain)" }.joined(separator: ", ")
        md += "| \(s) | \(l.set.count) | \(pos) | \(unc) | \(l.unlabelledImages) | \(l.unusedRows) |\n"
      }
    }
    md += "\n## Timings\n\n| stage | outcome | seconds (last run) |\n|---|---|---|\n"
    for (name, o) in outcomes {
      let what: String
      switch o {
      case .ran: what = "ran"
      case .skipped: what = "up to date"
      case .failed: what = "failed"
      case .blocked: what = "not run"
      case .interrupted: what = "interrupted"
      }
      md += "| \(name) | \(what) | \(pipeline.seconds(of: name).map { String(format: "%.1f", $0) } ?? "-") |\n"
    }
    try AtomicFile.write(md, to: run.reportURL)
  }

  func ordered(_ xs: [String]) -> [String] {
    var seen = Set<String>()
    return xs.filter { seen.insert($0).inserted }
  }
}
