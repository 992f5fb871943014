import Common
import Foundation

/// Inline SVG plots for the HTML reports. No script, no external resource: the page is one file.
enum HTML {
  static func escape(_ s: String) -> String { HTMLText.escape(s) }

  static let style = """
    body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
    h1{font-size:1.6em}h2{font-size:1.3em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
    table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
    th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
    .plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #eee;padding:4px}
    .notes li{color:#8a4b00}svg text{font-family:inherit}
    """

  static func page(title: String, body: String) -> String {
    """
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>\(style)</style></head>
    <body>
    \(body)
    </body></html>

    """
  }
}

enum SVG {
  static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                        "#bcbd22", "#17becf"]

  /// One decimal, without String(format:) (which dominated writing 100k curve points).
  static func num(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    let magnitude = abs(tenths)
    return "\(tenths < 0 ? "-" : "")\(magnitude / 10).\(magnitude % 10)"
  }

  /// Drops points closer than `step` (in both axes) to the last kept one, so a 20,000-case curve
  /// stays a few hundred points; the first and last points are always kept.
  static func thin(_ points: [(Double, Double)], step: Double = 0.002) -> [(Double, Double)] {
    guard points.count > 2 else { return points }
    var kept = [points[0]]
    for p in points.dropFirst().dropLast() {
      let last = kept[kept.count - 1]
      if abs(p.0 - last.0) >= step || abs(p.1 - last.1) >= step { kept.append(p) }
    }
    kept.append(points[points.count - 1])
    return kept
  }

  /// A unit-square line chart (ROC or PR) with a legend below.
  static func curves(title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)])],
                     diagonal: Bool, markers: Bool = false) -> String {
    let size = 300.0, left = 50.0, top = 30.0
    let legendHeight = Double(series.count) * 16 + 8
    let width = left + size + 20, height = top + size + 45 + legendHeight
    func x(_ v: Double) -> Double { left + v * size }
    func y(_ v: Double) -> Double { top + (1 - v) * size }
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
    s += "<title>\(HTML.escape(title))</title>"
    s += "<text x=\"\(num(left + size / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(HTML.escape(title))</text>"
    s += "<rect x=\"\(num(left))\" y=\"\(num(top))\" width=\"\(num(size))\" height=\"\(num(size))\" fill=\"#fff\" stroke=\"#444\"/>"
    for t in stride(from: 0.0, through: 1.0, by: 0.2) {
      s += "<line x1=\"\(num(x(t)))\" y1=\"\(num(top))\" x2=\"\(num(x(t)))\" y2=\"\(num(top + size))\" stroke=\"#eee\"/>"
      s += "<line x1=\"\(num(left))\" y1=\"\(num(y(t)))\" x2=\"\(num(left + size))\" y2=\"\(num(y(t)))\" stroke=\"#eee\"/>"
      s += "<text x=\"\(num(x(t)))\" y=\"\(num(top + size + 14))\" text-anchor=\"middle\" font-size=\"10\">\(String(format: "%.1f", t))</text>"
      s += "<text x=\"\(num(left - 4))\" y=\"\(num(y(t) + 3))\" text-anchor=\"end\" font-size=\"10\">\(String(format: "%.1f", t))</text>"
    }
    if diagonal {
      s += "<line x1=\"\(num(x(0)))\" y1=\"\(num(y(0)))\" x2=\"\(num(x(1)))\" y2=\"\(num(y(1)))\" stroke=\"#aaa\" stroke-dasharray=\"4 3\"/>"
    }
    s += "<text x=\"\(num(left + size / 2))\" y=\"\(num(top + size + 30))\" text-anchor=\"middle\" font-size=\"11\">\(HTML.escape(xLabel))</text>"
    s += "<text transform=\"translate(14 \(num(top + size / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">\(HTML.escape(yLabel))</text>"
    for (i, serie) in series.enumerated() {
      let color = palette[i % palette.count]
      let pts = (markers ? serie.points : thin(serie.points)).map { "\(num(x($0.0))),\(num(y($0.1)))" }.joined(separator: " ")
      s += "<polyline class=\"curve\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(pts)\"/>"
      if markers {
        for p in serie.points {
          s += "<circle class=\"bin\" cx=\"\(num(x(p.0)))\" cy=\"\(num(y(p.1)))\" r=\"2.5\" fill=\"\(color)\"/>"
        }
      }
      let ly = top + size + 48 + Double(i) * 16
      s += "<line x1=\"\(num(left))\" y1=\"\(num(ly - 4))\" x2=\"\(num(left + 18))\" y2=\"\(num(ly - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
      s += "<text x=\"\(num(left + 24))\" y=\"\(num(ly))\" font-size=\"11\">\(HTML.escape(serie.name))</text>"
    }
    return s + "</svg>"
  }

  /// A reliability diagram: per model, the observed share of positives against the mean predicted
  /// probability of each non-empty bin, one marker per bin, with the diagonal of perfect calibration.
  static func reliability(title: String, bins: Int, series: [(name: String, points: [(Double, Double)])]) -> String {
    curves(title: title, xLabel: "mean predicted probability (\(bins) equal-width bins)", yLabel: "observed fraction positive",
           series: series, diagonal: true, markers: true)
  }

  /// Colour for a value in [lo, 1]: white to dark blue.
  static func shade(_ v: Double, lo: Double) -> String {
    let t = max(0, min(1, (v - lo) / max(1e-9, 1 - lo)))
    let r = Int(247 - t * (247 - 8)), g = Int(251 - t * (251 - 48)), b = Int(255 - t * (255 - 107))
    return String(format: "#%02x%02x%02x", r, g, b)
  }

  /// A heatmap of rows x columns with the value written in each cell (the study's Figs. 3-4).
  static func heatmap(title: String, rows: [String], columns: [String], value: (Int, Int) -> Double?) -> String {
    let cellW = 78.0, cellH = 30.0, left = 150.0, top = 110.0
    let width = left + cellW * Double(columns.count) + 20, height = top + cellH * Double(rows.count) + 20
    let values = rows.indices.flatMap { r in columns.indices.compactMap { c in value(r, c) } }
    let lo = min(values.min() ?? 0.5, 0.5)
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
    s += "<title>\(HTML.escape(title))</title>"
    s += "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(HTML.escape(title))</text>"
    for (c, name) in columns.enumerated() {
      let cx = left + (Double(c) + 0.5) * cellW
      s += "<text transform=\"translate(\(num(cx)) \(num(top - 6))) rotate(-35)\" font-size=\"11\">\(HTML.escape(name))</text>"
    }
    for (r, name) in rows.enumerated() {
      let ry = top + Double(r) * cellH
      s += "<text x=\"\(num(left - 6))\" y=\"\(num(ry + cellH / 2 + 4))\" text-anchor=\"end\" font-size=\"11\">\(HTML.escape(name))</text>"
      for c in columns.indices {
        let cx = left + Double(c) * cellW
        let v = value(r, c)
        let fill = v.map { shade($0, lo: lo) } ?? "#eeeeee"
        s += "<rect class=\"cell\" x=\"\(num(cx))\" y=\"\(num(ry))\" width=\"\(num(cellW))\" height=\"\(num(cellH))\" fill=\"\(fill)\" stroke=\"#fff\"/>"
        let dark = v.map { ($0 - lo) / max(1e-9, 1 - lo) > 0.55 } ?? false
        s += "<text x=\"\(num(cx + cellW / 2))\" y=\"\(num(ry + cellH / 2 + 4))\" text-anchor=\"middle\" font-size=\"11\" fill=\"\(dark ? "#fff" : "#222")\">\(v.map { String(format: "%.3f", $0) } ?? "n/a")</text>"
      }
    }
    return s + "</svg>"
  }

  /// A 2x2 confusion matrix: rows are the schema's call, columns the human reading.
  static func confusion(title: String, tp: Int, fp: Int, fn: Int, tn: Int) -> String {
    let cell = 70.0, left = 80.0, top = 52.0
    let width = left + 2 * cell + 10, height = top + 2 * cell + 10
    let maxCount = Double(max(1, max(max(tp, fp), max(fn, tn))))
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"confusion\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
    s += "<title>\(HTML.escape(title))</title>"
    s += "<text x=\"4\" y=\"14\" font-size=\"12\" font-weight=\"bold\">\(HTML.escape(title))</text>"
    s += "<text x=\"\(num(left + cell))\" y=\"30\" text-anchor=\"middle\" font-size=\"10\">human</text>"
    s += "<text x=\"\(num(left + cell / 2))\" y=\"46\" text-anchor=\"middle\" font-size=\"10\">positive</text>"
    s += "<text x=\"\(num(left + 1.5 * cell))\" y=\"46\" text-anchor=\"middle\" font-size=\"10\">negative</text>"
    s += "<text x=\"\(num(left - 6))\" y=\"\(num(top + cell / 2 + 4))\" text-anchor=\"end\" font-size=\"10\">schema +</text>"
    s += "<text x=\"\(num(left - 6))\" y=\"\(num(top + 1.5 * cell + 4))\" text-anchor=\"end\" font-size=\"10\">schema −</text>"
    for (i, (label, count)) in [("TP", tp), ("FP", fp), ("FN", fn), ("TN", tn)].enumerated() {
      let cx = left + Double(i % 2) * cell, cy = top + Double(i / 2) * cell
      let t = Double(count) / maxCount
      s += "<rect class=\"cell\" x=\"\(num(cx))\" y=\"\(num(cy))\" width=\"\(num(cell))\" height=\"\(num(cell))\" fill=\"\(shade(t, lo: 0))\" stroke=\"#fff\"/>"
      s += "<text x=\"\(num(cx + cell / 2))\" y=\"\(num(cy + cell / 2))\" text-anchor=\"middle\" font-size=\"14\" fill=\"\(t > 0.55 ? "#fff" : "#222")\">\(count)</text>"
      s += "<text x=\"\(num(cx + cell / 2))\" y=\"\(num(cy + cell / 2 + 16))\" text-anchor=\"middle\" font-size=\"10\" fill=\"\(t > 0.55 ? "#fff" : "#555")\">\(label)</text>"
    }
    return s + "</svg>"
  }
}

extension EvaluationResult {
  /// The self-contained report: heatmaps per finding, ROC and PR curves per reference, comparisons.
  public var html: String {
    var b = "<h1>Evaluation</h1>\n<p>\(models.count) model(s) × \(references.count) reference(s); 95 % percentile bootstrap CIs from \(rounds) rounds (seed \(seed)).</p>\n"
    if !notes.isEmpty {
      b += "<h2>Notes</h2><ul class=\"notes\">" + notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>\n"
    }
    if !operatingPoints.isEmpty { b += "<p class=\"legend\">Operating points: \(HTML.escape(operatingPointsLegend))</p>\n" }
    if !calibration.isEmpty { b += "<p class=\"legend\">Calibration: \(HTML.escape(calibrationLegend))</p>\n" }
    for f in findings {
      b += "<h2>\(HTML.escape(f))</h2>\n<div class=\"plots\">"
      for metric in ["auroc", "auprc"] {
        b += "<div class=\"plot\">" + SVG.heatmap(title: "\(f): \(metric.uppercased()), model × reference", rows: models, columns: references) { r, c in
          row(model: models[r], reference: references[c], finding: f, metric: metric)?.value
        } + "</div>"
      }
      b += "</div>\n"
      for ref in references {
        let sets = curves.filter { $0.reference == ref && $0.finding == f }
        guard !sets.isEmpty else { continue }
        b += "<h3>\(HTML.escape(f)) against \(HTML.escape(ref))</h3>\n<div class=\"plots\">"
        let rocSeries = sets.map { set -> (name: String, points: [(Double, Double)]) in
          let v = row(model: set.model, reference: ref, finding: f, metric: "auroc")?.value
          return ("\(set.model) (AUROC \(Format.short(v)))", set.curves.roc)
        }
        let prSeries = sets.map { set -> (name: String, points: [(Double, Double)]) in
          let v = row(model: set.model, reference: ref, finding: f, metric: "auprc")?.value
          return ("\(set.model) (AUPRC \(Format.short(v)))", set.curves.pr)
        }
        b += "<div class=\"plot\">" + SVG.curves(title: "ROC: \(f) vs \(ref)", xLabel: "false positive rate", yLabel: "true positive rate",
                                                  series: rocSeries, diagonal: true) + "</div>"
        b += "<div class=\"plot\">" + SVG.curves(title: "PR: \(f) vs \(ref)", xLabel: "recall", yLabel: "precision",
                                                  series: prSeries, diagonal: false) + "</div>"
        if let diagram = reliabilitySVG(finding: f, reference: ref) { b += "<div class=\"plot\">" + diagram + "</div>" }
        b += "</div>\n"
        b += "<table><tr><th>model</th><th>AUROC (95 % CI)</th><th>AUPRC (95 % CI)</th><th>n</th><th>positives</th></tr>"
        for m in models {
          guard let a = row(model: m, reference: ref, finding: f, metric: "auroc"),
                let p = row(model: m, reference: ref, finding: f, metric: "auprc") else { continue }
          b += "<tr><td>\(HTML.escape(m))</td><td>\(Format.short(a.value)) \(Format.interval(a.ciLow, a.ciHigh))</td>"
          b += "<td>\(Format.short(p.value)) \(Format.interval(p.ciLow, p.ciHigh))</td><td>\(a.n)</td><td>\(a.nPos)</td></tr>"
        }
        b += "</table>\n"
        b += operatingPointsAndCalibrationHTML(finding: f, reference: ref)
      }
    }
    if !comparisons.isEmpty {
      b += "<h2>Paired comparisons (AUROC): DeLong's test and paired bootstrap</h2>\n<p class=\"legend\">\(HTML.escape(EvaluationResult.comparisonsLegend(rounds: rounds)))</p>\n"
      b += "<table><tr><th>reference</th><th>finding</th><th>model A</th><th>model B</th><th>A − B</th><th>95 % CI</th><th>DeLong z</th><th>DeLong p</th>"
      b += "<th>DeLong p (Holm)</th><th>t-test p (study's method)</th><th>t-test p (Holm)</th></tr>"
      for c in comparisons {
        b += "<tr><td>\(HTML.escape(c.reference))</td><td>\(HTML.escape(c.finding))</td><td>\(HTML.escape(c.modelA))</td><td>\(HTML.escape(c.modelB))</td>"
        b += "<td>\(Format.short(c.difference))</td><td>\(Format.interval(c.ciLow, c.ciHigh))</td><td>\(Format.short(c.delongZ, decimals: 2))</td><td>\(Format.p(c.delongP))</td>"
        b += "<td>\(Format.p(c.delongPHolm))</td><td>\(Format.p(c.ttestP))</td><td>\(Format.p(c.ttestPHolm))</td></tr>"
      }
      b += "</table>\n"
    }
    b += subgroupsHTML
    return HTML.page(title: "cxr evaluation", body: b)
  }
}

extension AgreementResult {
  public var html: String {
    var b = "<h1>Label agreement with the human reading</h1>\n<p>95 % percentile bootstrap CIs from \(rounds) rounds (seed \(seed)). Human cases marked equivocal (-1, ‘equivocal’, ‘uncertain’ or blank) are left out per finding.</p>\n"
    if !notes.isEmpty {
      b += "<h2>Notes</h2><ul class=\"notes\">" + notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>\n"
    }
    for f in findings {
      b += "<h2>\(HTML.escape(f))</h2>\n<table><tr><th>schema</th>" + Confusion.metricNames.map { "<th>\($0)</th>" }.joined() + "<th>n</th></tr>"
      for s in schemas {
        b += "<tr><td>\(HTML.escape(s))</td>"
        var n = 0
        for m in Confusion.metricNames {
          let r = rows.first { $0.schema == s && $0.finding == f && $0.metric == m }
          n = r?.n ?? n
          b += "<td>\(Format.short(r?.value)) \(Format.interval(r?.ciLow, r?.ciHigh))</td>"
        }
        b += "<td>\(n)</td></tr>"
      }
      b += "</table>\n<div class=\"plots\">"
      for c in confusions where c.finding == f {
        b += "<div class=\"plot\">" + SVG.confusion(title: "\(c.schema): \(f)", tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn) + "</div>"
      }
      b += "</div>\n"
    }
    let ac1 = rows.filter { $0.schema == Agreement.annotatorsName }
    if !ac1.isEmpty {
      b += "<h2>Inter-annotator agreement (Gwet's AC1)</h2>\n<table><tr><th>finding</th><th>categories</th><th>AC1</th><th>95 % CI</th><th>n</th></tr>"
      for r in ac1 {
        b += "<tr><td>\(HTML.escape(r.finding))</td><td>\(Agreement.ac1Label(r.metric))</td><td>\(Format.short(r.value))</td><td>\(Format.interval(r.ciLow, r.ciHigh))</td><td>\(r.n)</td></tr>"
      }
      b += "</table>\n"
    }
    return HTML.page(title: "cxr agreement", body: b)
  }
}
