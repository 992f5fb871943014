import Common
import Foundation

/// The files and report sections of operating points, calibration and the multiple-comparison
/// columns.
extension EvaluationResult {
  static let holmFamily = "Holm's step-down adjustment within each reference and finding: the family is the pairwise comparisons of that reference and finding's models (holm_family_size of them), adjusted separately for DeLong's p and the t-test's p"
  static let tTestNote = "ttest_p is the study's method: a paired t-test over the paired bootstrap rounds' AUROCs (as scipy.stats.ttest_rel). The rounds are resamples of one test set, not independent replications, so its p-value shrinks as rounds are added; DeLong's test is the better-founded comparison"

  static func comparisonsLegend(rounds: Int) -> String {
    "A − B with its paired-bootstrap 95 % CI and DeLong's test. Holm's adjustment is made within each reference and finding "
      + "(the family: the pairwise comparisons of its models), for DeLong's p and the t-test's p separately. "
      + "The t-test is the study's method, a paired t-test over the \(rounds) paired bootstrap rounds' AUROCs; those rounds are "
      + "resamples of one test set, not replications, so its p-value shrinks as rounds are added. DeLong's test is the better-founded one."
  }

  public var operatingPointsCSV: String {
    var header = ["model", "reference", "finding", "rule", "chosen_on", "threshold", "tune_sensitivity", "tune_specificity",
                  "tp", "fp", "fn", "tn"]
    for m in OperatingPoints.metricNames { header += [m, "\(m)_ci_low", "\(m)_ci_high"] }
    var w = CSVWriter(header: header + ["n", "n_pos"])
    for r in operatingPoints {
      var fields = [r.model, r.reference, r.finding, r.rule, r.chosenOn.rawValue, Format.full(r.threshold),
                    Format.full(r.tuneSensitivity), Format.full(r.tuneSpecificity),
                    "\(r.confusion.tp)", "\(r.confusion.fp)", "\(r.confusion.fn)", "\(r.confusion.tn)"]
      for e in r.metrics { fields += [Format.full(e.value), Format.full(e.ciLow), Format.full(e.ciHigh)] }
      w.append(fields + ["\(r.n)", "\(r.nPos)"])
    }
    return w.text
  }

  public var calibrationCSV: String {
    var w = CSVWriter(header: ["model", "reference", "finding", "metric", "strategy", "bins", "value", "ci_low", "ci_high", "n", "n_pos"])
    for r in calibration {
      w.append([r.model, r.reference, r.finding, r.metric, r.strategy?.rawValue ?? "", r.bins.map { "\($0)" } ?? "",
                Format.full(r.value), Format.full(r.ciLow), Format.full(r.ciHigh), "\(r.n)", "\(r.nPos)"])
    }
    return w.text
  }

  public var reliabilityCSV: String {
    var w = CSVWriter(header: ["model", "reference", "finding", "strategy", "bins", "bin", "lower", "upper", "count",
                               "mean_predicted", "fraction_positive"])
    for b in reliability {
      w.append([b.model, b.reference, b.finding, b.strategy.rawValue, "\(calibrationBins)", "\(b.bin)", Format.full(b.lower),
                Format.full(b.upper), "\(b.count)", Format.full(b.meanPredicted), Format.full(b.fractionPositive)])
    }
    return w.text
  }

  /// Which thresholds the operating points use, in words.
  var operatingPointsLegend: String {
    var s = "A case is called positive when its score is ≥ the threshold. "
    if let tuneSource {
      s += "Thresholds chosen on 'tune' were picked on the tuning predictions against \(tuneSource) (Youden's J; the highest threshold "
        + "with sensitivity ≥ 0.90 / 0.95; the lowest with specificity ≥ 0.90 / 0.95) and applied unchanged to the test set; "
        + "their CIs cover the test set's sampling only, not the choice. "
    } else {
      s += "No tuning predictions were given (--tune-predictions, --tune-reference), so no threshold was chosen without the test set. "
    }
    if !fixedThresholds.isEmpty { s += "'fixed' thresholds were given on the command line. " }
    s += "Rows chosen on 'test' read the best sensitivity at the stated specificity off the test set's own ROC (re-read in every "
      + "bootstrap round): they describe the curve and are optimistic as operating points. 95 % CIs from the \(rounds) bootstrap rounds."
    return s
  }

  func operatingPointRows(finding f: String, reference ref: String) -> [OperatingPointRow] {
    operatingPoints.filter { $0.finding == f && $0.reference == ref }
  }

  var operatingPointsMarkdown: String {
    guard !operatingPoints.isEmpty else { return "" }
    var md = "\n## Operating points\n\n\(Markdown.escape(operatingPointsLegend))\n\n"
    for f in findings {
      for ref in references {
        let rows = operatingPointRows(finding: f, reference: ref)
        guard !rows.isEmpty else { continue }
        md += "### \(Markdown.escape(f)) against \(Markdown.escape(ref))\n\n"
        md += "| model | rule | chosen on | threshold | sensitivity | specificity | PPV | NPV | F1 | TP | FP | FN | TN |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
          md += "| \(Markdown.escape(r.model)) | \(Markdown.escape(OperatingPoints.displayName(r.rule))) | \(r.chosenOn.rawValue) | \(Format.threshold(r.threshold)) | "
          md += r.metrics.map { Format.estimate($0.value, $0.ciLow, $0.ciHigh) }.joined(separator: " | ")
          md += " | \(r.confusion.tp) | \(r.confusion.fp) | \(r.confusion.fn) | \(r.confusion.tn) |\n"
        }
        md += "\n"
      }
    }
    return md
  }

  var calibrationLegend: String {
    "Brier score: the mean of (p − y)². Expected calibration error (ECE): Σ_b (n_b / n) · |observed rate − mean predicted| over the "
      + "\(calibrationBins) bins b, equal-width (bins of [0, 1]) or equal-mass (edges at the scores' quantiles). "
      + "95 % CIs from the \(rounds) bootstrap rounds, with the bins' edges fixed as cut on the test scores."
  }

  var calibrationMarkdown: String {
    guard !calibration.isEmpty else { return "" }
    var md = "## Calibration\n\n\(Markdown.escape(calibrationLegend))\n\n"
    for f in findings {
      let rows = calibration.filter { $0.finding == f }
      guard !rows.isEmpty else { continue }
      md += "### \(Markdown.escape(f))\n\n| model | reference | Brier | ECE (\(calibrationBins) equal-width bins) | ECE (\(calibrationBins) equal-mass bins) | n |\n"
      md += "|---|---|---|---|---|---|\n"
      for ref in references {
        for m in models {
          guard let cells = calibrationCells(model: m, reference: ref, finding: f) else { continue }
          md += "| \(Markdown.escape(m)) | \(Markdown.escape(ref)) | " + cells.text.joined(separator: " | ") + " | \(cells.n) |\n"
        }
      }
      md += "\n"
    }
    return md
  }

  /// Brier, ECE uniform, ECE quantile as "value (CI)" strings.
  func calibrationCells(model m: String, reference ref: String, finding f: String) -> (text: [String], n: Int)? {
    let rows = calibration.filter { $0.model == m && $0.reference == ref && $0.finding == f }
    guard !rows.isEmpty else { return nil }
    let order: [(String, BinStrategy?)] = [("brier", nil), ("ece", .uniform), ("ece", .quantile)]
    let text = order.map { metric, strategy -> String in
      guard let r = rows.first(where: { $0.metric == metric && $0.strategy == strategy }) else { return "n/a" }
      return Format.estimate(r.value, r.ciLow, r.ciHigh)
    }
    return (text, rows[0].n)
  }

  /// The HTML of one finding and reference: operating points and calibration tables.
  func operatingPointsAndCalibrationHTML(finding f: String, reference ref: String) -> String {
    var b = ""
    let rows = operatingPointRows(finding: f, reference: ref)
    if !rows.isEmpty {
      b += "<table class=\"operating-points\"><tr><th>model</th><th>rule</th><th>chosen on</th><th>threshold</th>"
      b += "<th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th><th>F1</th><th>TP</th><th>FP</th><th>FN</th><th>TN</th></tr>"
      for r in rows {
        b += "<tr><td>\(HTML.escape(r.model))</td><td>\(HTML.escape(OperatingPoints.displayName(r.rule)))</td><td>\(r.chosenOn.rawValue)</td>"
        b += "<td>\(Format.threshold(r.threshold))</td>"
        b += r.metrics.map { "<td>\(Format.estimate($0.value, $0.ciLow, $0.ciHigh))</td>" }.joined()
        b += "<td>\(r.confusion.tp)</td><td>\(r.confusion.fp)</td><td>\(r.confusion.fn)</td><td>\(r.confusion.tn)</td></tr>"
      }
      b += "</table>\n"
    }
    let cal = models.compactMap { m in calibrationCells(model: m, reference: ref, finding: f).map { (m, $0) } }
    if !cal.isEmpty {
      b += "<table class=\"calibration\"><tr><th>model</th><th>Brier</th><th>ECE (\(calibrationBins) equal-width bins)</th>"
      b += "<th>ECE (\(calibrationBins) equal-mass bins)</th><th>n</th></tr>"
      for (m, cells) in cal {
        b += "<tr><td>\(HTML.escape(m))</td>" + cells.text.map { "<td>\($0)</td>" }.joined() + "<td>\(cells.n)</td></tr>"
      }
      b += "</table>\n"
    }
    return b
  }

  /// The reliability diagram of one finding and reference (equal-width bins), nil without calibration.
  func reliabilitySVG(finding f: String, reference ref: String) -> String? {
    let series = models.compactMap { m -> (name: String, points: [(Double, Double)])? in
      let bins = reliability.filter { $0.model == m && $0.reference == ref && $0.finding == f && $0.strategy == .uniform }
      guard !bins.isEmpty else { return nil }
      let ece = calibration.first { $0.model == m && $0.reference == ref && $0.finding == f && $0.strategy == .uniform }?.value
      return ("\(m) (ECE \(Format.short(ece)))", bins.map { ($0.meanPredicted, $0.fractionPositive) })
    }
    guard !series.isEmpty else { return nil }
    return SVG.reliability(title: "Reliability: \(f) vs \(ref)", bins: calibrationBins, series: series)
  }
}

/// The entries of metrics.json's operating_points, tuned_thresholds, calibration and reliability
/// (the lines of the CSV files of the same names).
extension MetricsDocument {
  /// A model's operating point on a reference and finding; the threshold is null where it is
  /// +inf (no case called positive).
  struct OperatingPoint: Encodable {
    var model, reference, finding, rule: String
    var chosenOn: ThresholdSource
    var threshold, tuneSensitivity, tuneSpecificity: JSONNullable<Double>
    var tp, fp, fn, tn: Int
    var sensitivity, specificity, ppv, npv, f1: ValueWithCI
    var n, nPos: Int

    init(_ r: OperatingPointRow) {
      model = r.model; reference = r.reference; finding = r.finding; rule = r.rule; chosenOn = r.chosenOn
      threshold = Format.json(r.threshold)
      tuneSensitivity = Format.json(r.tuneSensitivity); tuneSpecificity = Format.json(r.tuneSpecificity)
      tp = r.confusion.tp; fp = r.confusion.fp; fn = r.confusion.fn; tn = r.confusion.tn
      // Looked up by the key they are written under, which is their name in OperatingPoints.metricNames.
      func metric(_ key: CodingKeys) -> ValueWithCI { ValueWithCI(r.metric(key.rawValue) ?? Estimate(value: nil)) }
      sensitivity = metric(.sensitivity); specificity = metric(.specificity); ppv = metric(.ppv); npv = metric(.npv); f1 = metric(.f1)
      n = r.n; nPos = r.nPos
    }

    enum CodingKeys: String, CodingKey {
      case model, reference, finding, rule, chosenOn = "chosen_on", threshold
      case tuneSensitivity = "tune_sensitivity", tuneSpecificity = "tune_specificity", tp, fp, fn, tn
      case sensitivity, specificity, ppv, npv, f1, n, nPos = "n_pos"
    }
  }

  /// A threshold chosen on the tuning predictions, with its sensitivity and specificity there.
  struct ChosenThreshold: Encodable {
    var model, finding, rule: String
    var threshold: JSONNullable<Double>
    var sensitivity, specificity: Double
    var n, nPos: Int

    init(_ t: TunedThreshold) {
      model = t.model; finding = t.finding; rule = t.rule; threshold = Format.json(t.threshold)
      sensitivity = t.sensitivity; specificity = t.specificity; n = t.n; nPos = t.nPos
    }

    enum CodingKeys: String, CodingKey { case model, finding, rule, threshold, sensitivity, specificity, n, nPos = "n_pos" }
  }

  /// A Brier score or ECE; strategy and bins are null for Brier, which has no bins.
  struct CalibrationScore: Encodable {
    var model, reference, finding, metric: String
    var strategy: JSONNullable<BinStrategy>
    var bins: JSONNullable<Int>
    var value: Double
    var ciLow, ciHigh: JSONNullable<Double>
    var n, nPos: Int

    init(_ r: CalibrationRow) {
      model = r.model; reference = r.reference; finding = r.finding; metric = r.metric
      strategy = JSONNullable(r.strategy); bins = JSONNullable(r.bins); value = r.value
      ciLow = Format.json(r.ciLow); ciHigh = Format.json(r.ciHigh); n = r.n; nPos = r.nPos
    }

    enum CodingKeys: String, CodingKey {
      case model, reference, finding, metric, strategy, bins, value, ciLow = "ci_low", ciHigh = "ci_high", n, nPos = "n_pos"
    }
  }

  /// A bin of a reliability diagram.
  struct ReliabilityPoint: Encodable {
    var model, reference, finding: String
    var strategy: BinStrategy
    var bin: Int
    var lower, upper: Double
    var count: Int
    var meanPredicted, fractionPositive: Double

    init(_ b: ReliabilityBin) {
      model = b.model; reference = b.reference; finding = b.finding; strategy = b.strategy; bin = b.bin
      lower = b.lower; upper = b.upper; count = b.count; meanPredicted = b.meanPredicted; fractionPositive = b.fractionPositive
    }

    enum CodingKeys: String, CodingKey {
      case model, reference, finding, strategy, bin, lower, upper, count
      case meanPredicted = "mean_predicted", fractionPositive = "fraction_positive"
    }
  }
}
