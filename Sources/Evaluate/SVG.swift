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
    .notes li{color:#8a4b00}.legend{color:#444}figure{margin:0}figcaption{font-size:.85em;color:#444}
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
  /// One font for every figure, inline and in the files (Debian's fonts-dejavu-core has it; the
  /// PDF embeds it), so a figure looks the same in the report, the SVG and the PDF.
  static let font = "DejaVu Sans, Helvetica, Arial, sans-serif"
  /// Okabe & Ito's palette, distinguishable under the common colour-vision deficiencies; yellow
  /// (weak on white) last. Series past the palette repeat it with a dash pattern.
  static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
  static let dashes = ["", "6 3", "2 2", "8 3 2 3"]
  static func color(_ i: Int) -> String { palette[i % palette.count] }
  static func dash(_ i: Int) -> String { dashes[(i / palette.count) % dashes.count] }

  /// One decimal, without String(format:) (which dominated writing 100k curve points).
  static func num(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    let magnitude = abs(tenths)
    return "\(tenths < 0 ? "-" : "")\(magnitude / 10).\(magnitude % 10)"
  }

  /// The root element: its size in CSS pixels (what librsvg makes the PDF page), the font, a title.
  static func open(width: Double, height: Double, title: String, cssClass: String? = nil) -> String {
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\"\(cssClass.map { " class=\"\($0)\"" } ?? "") width=\"\(num(width))\" height=\"\(num(height))\" "
    s += "viewBox=\"0 0 \(num(width)) \(num(height))\" font-family=\"\(font)\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
    s += "<title>\(HTML.escape(title))</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    return s
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

  /// A series of a line chart: its points, an optional pointwise band (x, low, high), markers.
  struct Series {
    var name: String
    var points: [(Double, Double)]
    var band: [(x: Double, low: Double, high: Double)] = []
    var markers = false
    /// Palette slot (colour and dash); nil: the series' position.
    var style: Int? = nil
    /// A dash pattern of its own (e.g. EMA dashed beside raw solid); nil: the slot's.
    var dashPattern: String? = nil
  }

  /// A horizontal reference line across the plot (e.g. the prevalence on a PR plot).
  struct Baseline {
    var y: Double
    var label: String
  }

  /// Tick values: 4-7 round numbers spanning lo...hi.
  static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / 5
    let magnitude = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var t = (lo / step).rounded(.up) * step
    var out: [Double] = []
    while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
    return out
  }

  static func tickLabel(_ v: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1e-3 && a < 1e4 {
      var text = String(format: "%.4f", v)
      while text.hasSuffix("0") { text.removeLast() }
      if text.hasSuffix(".") { text.removeLast() }
      return text.replacingOccurrences(of: "-", with: "−")
    }
    return String(format: "%.0e", v).replacingOccurrences(of: "-", with: "−")
  }

  /// A line chart with axes, optional diagonal, baseline, bands and a legend below. `note` is a
  /// line under the title (what the shading means).
  static func chart(title: String, note: String? = nil, xLabel: String, yLabel: String,
                    x xRange: ClosedRange<Double>, y yRange: ClosedRange<Double>, xTicks: [Double]? = nil, yTicks: [Double]? = nil,
                    series: [Series], diagonal: Bool = false, baseline: Baseline? = nil, square: Bool = true) -> String {
    let plotW = square ? 300.0 : 380.0, plotH = 300.0, left = 58.0, top = note == nil ? 30.0 : 44.0
    let legendHeight = Double(series.count + (baseline == nil ? 0 : 1)) * 16 + 8
    let width = left + plotW + 24, height = top + plotH + 45 + legendHeight
    let xSpan = max(1e-12, xRange.upperBound - xRange.lowerBound), ySpan = max(1e-12, yRange.upperBound - yRange.lowerBound)
    func x(_ v: Double) -> Double { left + (v - xRange.lowerBound) / xSpan * plotW }
    func y(_ v: Double) -> Double { top + (1 - (v - yRange.lowerBound) / ySpan) * plotH }
    var s = open(width: width, height: height, title: title)
    s += "<text x=\"\(num(left + plotW / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(HTML.escape(title))</text>"
    if let note {
      s += "<text x=\"\(num(left + plotW / 2))\" y=\"33\" text-anchor=\"middle\" font-size=\"10\" fill=\"#444\">\(HTML.escape(note))</text>"
    }
    s += "<rect x=\"\(num(left))\" y=\"\(num(top))\" width=\"\(num(plotW))\" height=\"\(num(plotH))\" fill=\"#fff\" stroke=\"#444\"/>"
    for t in xTicks ?? ticks(xRange.lowerBound, xRange.upperBound) {
      s += "<line x1=\"\(num(x(t)))\" y1=\"\(num(top))\" x2=\"\(num(x(t)))\" y2=\"\(num(top + plotH))\" stroke=\"#eee\"/>"
      s += "<text x=\"\(num(x(t)))\" y=\"\(num(top + plotH + 14))\" text-anchor=\"middle\" font-size=\"10\">\(tickLabel(t))</text>"
    }
    for t in yTicks ?? ticks(yRange.lowerBound, yRange.upperBound) {
      s += "<line x1=\"\(num(left))\" y1=\"\(num(y(t)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(y(t)))\" stroke=\"#eee\"/>"
      s += "<text x=\"\(num(left - 4))\" y=\"\(num(y(t) + 3))\" text-anchor=\"end\" font-size=\"10\">\(tickLabel(t))</text>"
    }
    if diagonal {
      s += "<line x1=\"\(num(x(xRange.lowerBound)))\" y1=\"\(num(y(yRange.lowerBound)))\" x2=\"\(num(x(xRange.upperBound)))\" y2=\"\(num(y(yRange.upperBound)))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
    }
    if let baseline {
      s += "<line class=\"baseline\" x1=\"\(num(left))\" y1=\"\(num(y(baseline.y)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(y(baseline.y)))\" stroke=\"#777\" stroke-dasharray=\"2 3\"/>"
    }
    s += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(top + plotH + 30))\" text-anchor=\"middle\" font-size=\"11\">\(HTML.escape(xLabel))</text>"
    s += "<text transform=\"translate(14 \(num(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">\(HTML.escape(yLabel))</text>"
    // Bands first, under every line.
    for (i, serie) in series.enumerated() where !serie.band.isEmpty {
      let ok = serie.band.filter { $0.low.isFinite && $0.high.isFinite }
      guard ok.count > 1 else { continue }
      let upper = ok.map { "\(num(x($0.x))),\(num(y($0.high)))" }, lower = ok.reversed().map { "\(num(x($0.x))),\(num(y($0.low)))" }
      s += "<polygon class=\"band\" fill=\"\(color(serie.style ?? i))\" fill-opacity=\"0.15\" stroke=\"none\" points=\"\((upper + lower).joined(separator: " "))\"/>"
    }
    for (i, serie) in series.enumerated() {
      let slot = serie.style ?? i
      let c = color(slot), d = serie.dashPattern ?? dash(slot)
      let dashAttr = d.isEmpty ? "" : " stroke-dasharray=\"\(d)\""
      let pts = (serie.markers ? serie.points : thin(serie.points)).map { "\(num(x($0.0))),\(num(y($0.1)))" }.joined(separator: " ")
      s += "<polyline class=\"curve\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.6\"\(dashAttr) points=\"\(pts)\"/>"
      if serie.markers {
        for p in serie.points {
          s += "<circle class=\"bin\" cx=\"\(num(x(p.0)))\" cy=\"\(num(y(p.1)))\" r=\"2.5\" fill=\"\(c)\"/>"
        }
      }
      let ly = top + plotH + 48 + Double(i) * 16
      s += "<line x1=\"\(num(left))\" y1=\"\(num(ly - 4))\" x2=\"\(num(left + 18))\" y2=\"\(num(ly - 4))\" stroke=\"\(c)\" stroke-width=\"3\"\(dashAttr)/>"
      s += "<text x=\"\(num(left + 24))\" y=\"\(num(ly))\" font-size=\"11\">\(HTML.escape(serie.name))</text>"
    }
    if let baseline {
      let ly = top + plotH + 48 + Double(series.count) * 16
      s += "<line x1=\"\(num(left))\" y1=\"\(num(ly - 4))\" x2=\"\(num(left + 18))\" y2=\"\(num(ly - 4))\" stroke=\"#777\" stroke-dasharray=\"2 3\"/>"
      s += "<text x=\"\(num(left + 24))\" y=\"\(num(ly))\" font-size=\"11\">\(HTML.escape(baseline.label))</text>"
    }
    return s + "</svg>"
  }

  /// A unit-square line chart (ROC or PR) with a legend below.
  static func curves(title: String, note: String? = nil, xLabel: String, yLabel: String, series: [Series],
                     diagonal: Bool, baseline: Baseline? = nil) -> String {
    let unit = Array(stride(from: 0.0, through: 1.0, by: 0.2))
    return chart(title: title, note: note, xLabel: xLabel, yLabel: yLabel, x: 0...1, y: 0...1, xTicks: unit, yTicks: unit,
                 series: series, diagonal: diagonal, baseline: baseline)
  }

  /// A reliability diagram: per model, the observed share of positives against the mean predicted
  /// probability of each non-empty bin, one marker per bin, with the diagonal of perfect calibration.
  static func reliability(title: String, bins: Int, series: [(name: String, points: [(Double, Double)])]) -> String {
    curves(title: title, xLabel: "mean predicted probability (\(bins) equal-width bins)", yLabel: "observed fraction positive",
           series: series.map { Series(name: $0.name, points: $0.points, markers: true) }, diagonal: true)
  }

  /// Colour for a value in [lo, 1]: white to dark blue (one hue: readable without colour vision).
  static func shade(_ v: Double, lo: Double) -> String {
    let t = max(0, min(1, (v - lo) / max(1e-9, 1 - lo)))
    let r = Int(247 - t * (247 - 8)), g = Int(251 - t * (251 - 48)), b = Int(255 - t * (255 - 107))
    return String(format: "#%02x%02x%02x", r, g, b)
  }

  /// One heatmap cell: the value and its CI.
  struct Cell {
    var value: Double
    var low: Double?
    var high: Double?
  }

  /// A heatmap of rows x columns (the study's Figs. 3-4): the value and its CI written in each
  /// cell, the axes titled, and a colour bar from the lowest shade to 1.
  static func heatmap(title: String, rowTitle: String, columnTitle: String, rows: [String], columns: [String],
                      cell: (Int, Int) -> Cell?) -> String {
    let cellW = 112.0, cellH = 40.0, left = 170.0, top = 128.0, barW = 14.0
    let gridW = cellW * Double(columns.count)
    // Tall enough for the rotated row title and the colour bar however few the rows.
    let bodyH = max(cellH * Double(rows.count), 170)
    let width = left + gridW + 30 + barW + 44, height = top + bodyH + 20
    let cells = rows.indices.map { r in columns.indices.map { c in cell(r, c) } }
    let values = cells.flatMap { $0.compactMap { $0?.value } }
    let lo = min(values.min() ?? 0.5, 0.5)
    var s = open(width: width, height: height, title: title, cssClass: "heatmap")
    s += "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(HTML.escape(title))</text>"
    s += "<text x=\"\(num(left + gridW / 2))\" y=\"38\" text-anchor=\"middle\" font-size=\"11\" font-style=\"italic\">\(HTML.escape(columnTitle))</text>"
    s += "<text transform=\"translate(14 \(num(top + bodyH / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\" font-style=\"italic\">\(HTML.escape(rowTitle))</text>"
    for (c, name) in columns.enumerated() {
      let cx = left + (Double(c) + 0.5) * cellW
      s += "<text transform=\"translate(\(num(cx)) \(num(top - 6))) rotate(-35)\" font-size=\"11\">\(HTML.escape(name))</text>"
    }
    for (r, name) in rows.enumerated() {
      let ry = top + Double(r) * cellH
      s += "<text x=\"\(num(left - 6))\" y=\"\(num(ry + cellH / 2 + 4))\" text-anchor=\"end\" font-size=\"11\">\(HTML.escape(name))</text>"
      for c in columns.indices {
        let cx = left + Double(c) * cellW
        let v = cells[r][c]
        let fill = v.map { shade($0.value, lo: lo) } ?? "#eeeeee"
        s += "<rect class=\"cell\" x=\"\(num(cx))\" y=\"\(num(ry))\" width=\"\(num(cellW))\" height=\"\(num(cellH))\" fill=\"\(fill)\" stroke=\"#fff\"/>"
        let dark = v.map { ($0.value - lo) / max(1e-9, 1 - lo) > 0.55 } ?? false
        let ink = dark ? "#fff" : "#222"
        s += "<text x=\"\(num(cx + cellW / 2))\" y=\"\(num(ry + 17))\" text-anchor=\"middle\" font-size=\"12\" fill=\"\(ink)\">\(v.map { Format.short($0.value) } ?? "n/a")</text>"
        if let v, !Format.interval(v.low, v.high).isEmpty {
          s += "<text class=\"ci\" x=\"\(num(cx + cellW / 2))\" y=\"\(num(ry + 32))\" text-anchor=\"middle\" font-size=\"9\" fill=\"\(ink)\">\(Format.interval(v.low, v.high))</text>"
        }
      }
    }
    // Colour bar: lo at the bottom, 1 at the top, in 40 steps.
    let barX = left + gridW + 30, barH = bodyH, steps = 40
    for k in 0..<steps {
      let v = lo + (1 - lo) * (Double(k) + 0.5) / Double(steps)
      let y0 = top + barH * (1 - Double(k + 1) / Double(steps))
      s += "<rect x=\"\(num(barX))\" y=\"\(num(y0))\" width=\"\(num(barW))\" height=\"\(num(barH / Double(steps) + 0.5))\" fill=\"\(shade(v, lo: lo))\"/>"
    }
    s += "<rect class=\"colorbar\" x=\"\(num(barX))\" y=\"\(num(top))\" width=\"\(num(barW))\" height=\"\(num(barH))\" fill=\"none\" stroke=\"#444\"/>"
    for t in [lo, (lo + 1) / 2, 1] {
      let ty = top + barH * (1 - (t - lo) / max(1e-9, 1 - lo))
      s += "<text x=\"\(num(barX + barW + 4))\" y=\"\(num(ty + 3))\" font-size=\"9\">\(Format.short(t, decimals: 2))</text>"
    }
    return s + "</svg>"
  }

  /// A 2x2 confusion matrix: rows are the schema's call, columns the human reading.
  static func confusion(title: String, tp: Int, fp: Int, fn: Int, tn: Int) -> String {
    let cell = 70.0, left = 80.0, top = 52.0
    let width = left + 2 * cell + 10, height = top + 2 * cell + 10
    let maxCount = Double(max(1, max(max(tp, fp), max(fn, tn))))
    var s = open(width: width, height: height, title: title, cssClass: "confusion")
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
  public var html: String { html(figures: keyedFigures()) }

  /// What made the numbers, for people: each model's predictions file and weights, each
  /// reference's labels, the tuning split's.
  var provenanceHTML: String {
    var b = "<h2>What made these numbers</h2>\n<p class=\"legend\">Every number below is one model's test-set predictions scored against one reference's labels of the same images, on the images both have (n in each table). "
    b += "Thresholds marked ‘tune’ were chosen on \(HTML.escape(tuneSource ?? "no tuning split (none was given)")), never on the test set.</p>\n"
    b += "<table><tr><th>model</th><th>test predictions</th><th>weights</th><th>made by</th></tr>"
    for m in models {
      let p = predictionSources[m]
      b += "<tr><td>\(HTML.escape(m))</td><td>\(HTML.escape(p?.file ?? "?"))</td><td>\(HTML.escape(p?.weightsText ?? "?"))</td><td>\(HTML.escape(p?.madeBy ?? "not stated"))</td></tr>"
    }
    b += "</table>\n<table><tr><th>reference</th><th>labels from</th></tr>"
    for r in references { b += "<tr><td>\(HTML.escape(r))</td><td>\(HTML.escape(referenceSources[r] ?? "?"))</td></tr>" }
    b += "</table>\n"
    if !training.isEmpty {
      b += "<p class=\"legend\">Training curves: " + training.map { "\(HTML.escape($0.model)) from \(HTML.escape($0.source))" }.joined(separator: "; ") + " (tuning metrics on each model's own tuning split).</p>\n"
    }
    return b
  }

  func html(figures: [(key: FigureKey, figure: Figure)]) -> String {
    let byKey = Dictionary(figures.map { ($0.key, $0.figure) }, uniquingKeysWith: { a, _ in a })
    func plot(_ key: FigureKey) -> String {
      guard let f = byKey[key] else { return "" }
      return "<figure class=\"plot\">\(f.svg)<figcaption>\(HTML.escape(f.title)): <a href=\"figures/\(f.file).svg\">SVG</a> · <a href=\"figures/\(f.file).pdf\">PDF</a></figcaption></figure>"
    }
    var b = "<h1>Evaluation</h1>\n<p>\(models.count) model(s) × \(references.count) reference(s); 95 % percentile bootstrap CIs from \(rounds) rounds (seed \(seed)).</p>\n"
    b += provenanceHTML
    if !notes.isEmpty {
      b += "<h2>Notes</h2><ul class=\"notes\">" + notes.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>\n"
    }
    if !operatingPoints.isEmpty { b += "<p class=\"legend\">Operating points: \(HTML.escape(operatingPointsLegend))</p>\n" }
    if !calibration.isEmpty { b += "<p class=\"legend\">Calibration: \(HTML.escape(calibrationLegend))</p>\n" }
    for f in findings {
      b += "<h2>\(HTML.escape(f))</h2>\n<div class=\"plots\">"
      b += plot(FigureKey(kind: "auroc", finding: f)) + plot(FigureKey(kind: "auprc", finding: f))
      b += "</div>\n"
      for ref in references {
        guard byKey[FigureKey(kind: "roc", finding: f, reference: ref)] != nil else { continue }
        b += "<h3>\(HTML.escape(f)) against \(HTML.escape(ref))</h3>\n"
        b += "<p class=\"legend\">Each model's test predictions scored against the labels of reference ‘\(HTML.escape(ref))’ (\(HTML.escape(referenceSources[ref] ?? "?"))); weights as listed under ‘What made these numbers’.</p>\n<div class=\"plots\">"
        for kind in ["roc", "pr", "reliability"] { b += plot(FigureKey(kind: kind, finding: f, reference: ref)) }
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
    if !training.isEmpty {
      b += "<h2>Training</h2>\n<div class=\"plots\">" + ["loss", "auroc", "lr"].map { plot(FigureKey(kind: $0)) }.joined() + "</div>\n"
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
    b += Saliency.html(saliency)
    return HTML.page(title: "cxr evaluation", body: b)
  }

  /// The pointwise bands of every ROC and PR curve on their grid: one row per point.
  public var curveBandsCSV: String {
    var w = CSVWriter(header: ["model", "reference", "finding", "curve", "x", "estimate", "ci_low", "ci_high"])
    func v(_ x: Double) -> String { x.isNaN ? "" : Format.full(x) }
    for set in curves {
      for (curve, band) in [("roc", set.rocBand), ("pr", set.prBand)] {
        guard let band else { continue }
        for i in band.x.indices {
          w.append([set.model, set.reference, set.finding, curve, v(band.x[i]), v(band.estimate[i]), v(band.low[i]), v(band.high[i])])
        }
      }
    }
    return w.text
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
