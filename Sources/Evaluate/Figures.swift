import CFigures
import Common
import Foundation

/// One figure of a report: shown inline in report.html and written as `figures/<file>.svg` and
/// `figures/<file>.pdf`, the same drawing in all three.
public struct Figure: Sendable {
  /// File name stem, unique within the report (`FigureFiles.stems`).
  public var file: String
  public var title: String
  public var svg: String
}

/// One classifier's training history (`metrics.jsonl`, one point per epoch), for the training
/// curves: train loss, tuning loss and mean tuning AUROC of the raw and the EMA weights, and the
/// learning rate at the epoch's end.
public struct TrainingCurves: Sendable {
  public var model: String
  /// Where the history came from (the metrics.jsonl path).
  public var source: String
  public var epochs: [Int]
  public var trainLoss: [Double?]
  public var tuneLossRaw: [Double?]
  public var tuneLossEMA: [Double?]
  public var tuneAUROCRaw: [Double?]
  public var tuneAUROCEMA: [Double?]
  public var learningRate: [Double?]

  public init(model: String, source: String, epochs: [Int], trainLoss: [Double?], tuneLossRaw: [Double?], tuneLossEMA: [Double?],
              tuneAUROCRaw: [Double?], tuneAUROCEMA: [Double?], learningRate: [Double?]) {
    self.model = model; self.source = source; self.epochs = epochs; self.trainLoss = trainLoss
    self.tuneLossRaw = tuneLossRaw; self.tuneLossEMA = tuneLossEMA; self.tuneAUROCRaw = tuneAUROCRaw
    self.tuneAUROCEMA = tuneAUROCEMA; self.learningRate = learningRate
  }
}

/// SVG to PDF (librsvg + cairo through CFigures) and the figure folder.
public enum FigureFiles {
  /// A PDF page of `svg`, vector and with its fonts embedded. Throws with the reason (for
  /// example, librsvg not installed).
  public static func pdf(svg: String, title: String) throws -> Data {
    var out: UnsafeMutablePointer<UInt8>?
    var length = 0
    var err = [CChar](repeating: 0, count: 512)
    let creator = "cxr \(BuildInfo.version)"
    let status = svg.withCString { text in
      cfg_svg_to_pdf(text, strlen(text), title, creator, &out, &length, &err, err.count)
    }
    guard status == 0, let out else {
      throw UserError("cannot make the PDF of figure '\(title)': \(String(cString: err))")
    }
    defer { cfg_free(out) }
    return Data(bytes: out, count: length)
  }

  /// Nil when PDFs can be made here, else why not.
  public static var pdfUnavailableReason: String? {
    var err = [CChar](repeating: 0, count: 512)
    return cfg_pdf_available(&err, err.count) == 1 ? nil : String(cString: err)
  }

  /// File-safe stems for `names` (lowercase letters, digits, '-'), made unique in order by a
  /// numeric suffix, so "Chest Tube" and "chest_tube" do not overwrite each other.
  static func stems(_ names: [String]) -> [String] {
    var used = Set<String>()
    return names.map { name in
      var slug = ""
      for ch in name.lowercased().unicodeScalars {
        if CharacterSet.alphanumerics.contains(ch), ch.isASCII { slug.unicodeScalars.append(ch) }
        else if !slug.hasSuffix("-") { slug += "-" }
      }
      while slug.hasSuffix("-") { slug.removeLast() }
      if slug.isEmpty { slug = "figure" }
      var stem = slug, k = 2
      while !used.insert(stem).inserted { stem = "\(slug)-\(k)"; k += 1 }
      return stem
    }
  }

  /// Writes each figure as `<file>.svg` and `<file>.pdf` into `dir` (created if missing). When
  /// PDFs cannot be made here, the SVGs are still written and the reason is returned (the report
  /// shows it as a note); any other failure throws.
  public static func write(_ figures: [Figure], to dir: URL) throws -> String? {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let unavailable = pdfUnavailableReason
    // The renderings are independent (one librsvg handle and cairo surface each) and take most of
    // the time here, so they run on all cores; the files are written in order afterwards.
    let pdfs = unavailable == nil ? figures.concurrentMap { f in Result { try pdf(svg: f.svg, title: f.title) } } : []
    for (k, f) in figures.enumerated() {
      try AtomicFile.write(f.svg, to: dir.appendingPathComponent(f.file + ".svg"))
      if unavailable == nil {
        try AtomicFile.write(try pdfs[k].get(), to: dir.appendingPathComponent(f.file + ".pdf"))
      }
    }
    return unavailable.map { "figures were written as SVG only (no PDF): \($0)" }
  }
}

extension EvaluationResult {
  /// Which figure of the report: a kind with its finding and reference, where it has them.
  struct FigureKey: Hashable {
    var kind: String
    var finding = ""
    var reference = ""
  }

  /// Every figure of the report, in the report's order, with its key.
  func keyedFigures() -> [(key: FigureKey, figure: Figure)] {
    var drawn: [(FigureKey, String, String, String)] = []  // key, name for the file, title, svg
    func add(_ key: FigureKey, _ name: String, _ title: String, _ svg: String?) {
      if let svg { drawn.append((key, name, title, svg)) }
    }
    for f in findings {
      for metric in ["auroc", "auprc"] {
        let title = "\(f): \(metric.uppercased()) (95 % CI), model × reference"
        add(FigureKey(kind: metric, finding: f), "\(f) \(metric) heatmap", title,
            SVG.heatmap(title: title, rowTitle: "model (its training labels)", columnTitle: "reference (labels the test set is scored against)",
                        rows: models, columns: references) { r, c in
              row(model: models[r], reference: references[c], finding: f, metric: metric).map { SVG.Cell(value: $0.value, low: $0.ciLow, high: $0.ciHigh) }
            })
      }
      for ref in references {
        let sets = curves.filter { $0.reference == ref && $0.finding == f }
        guard !sets.isEmpty else { continue }
        let banded = sets.contains { $0.rocBand != nil }
        let note = banded ? "shaded: pointwise 95 % bootstrap CI (\(rounds) rounds)" : nil
        let rocTitle = "ROC: \(f) vs \(ref)"
        add(FigureKey(kind: "roc", finding: f, reference: ref), "\(f) vs \(ref) roc", rocTitle,
            SVG.curves(title: rocTitle, note: note, xLabel: "false positive rate (1 − specificity)", yLabel: "true positive rate (sensitivity)",
                       series: sets.map { set in
                         let v = row(model: set.model, reference: ref, finding: f, metric: "auroc")
                         return SVG.Series(name: "\(set.model): AUROC \(Format.estimate(v?.value, v?.ciLow, v?.ciHigh))", points: set.curves.roc,
                                           band: Self.bandPoints(set.rocBand), style: models.firstIndex(of: set.model))
                       }, diagonal: true))
        let prTitle = "PR: \(f) vs \(ref)"
        let first = row(model: sets[0].model, reference: ref, finding: f, metric: "auprc")
        let sameCases = sets.allSatisfy { s in
          let r = row(model: s.model, reference: ref, finding: f, metric: "auprc")
          return r?.n == first?.n && r?.nPos == first?.nPos
        }
        let baseline = first.flatMap { r -> SVG.Baseline? in
          guard sameCases, r.n > 0 else { return nil }
          let prevalence = Double(r.nPos) / Double(r.n)
          return SVG.Baseline(y: prevalence, label: "prevalence \(Format.short(prevalence)) (\(r.nPos) of \(r.n)): a classifier without skill")
        }
        add(FigureKey(kind: "pr", finding: f, reference: ref), "\(f) vs \(ref) pr", prTitle,
            SVG.curves(title: prTitle, note: note, xLabel: "recall (sensitivity)", yLabel: "precision (PPV)",
                       series: sets.map { set in
                         let v = row(model: set.model, reference: ref, finding: f, metric: "auprc")
                         return SVG.Series(name: "\(set.model): AUPRC \(Format.estimate(v?.value, v?.ciLow, v?.ciHigh))", points: Self.steps(set.curves.pr),
                                           band: Self.bandPoints(set.prBand), style: models.firstIndex(of: set.model))
                       }, diagonal: false, baseline: baseline))
        add(FigureKey(kind: "reliability", finding: f, reference: ref), "\(f) vs \(ref) reliability", "Reliability: \(f) vs \(ref)",
            reliabilitySVG(finding: f, reference: ref))
      }
    }
    for (kind, svg, title) in trainingFigures() { add(FigureKey(kind: kind), "training \(kind)", title, svg) }
    let stems = FigureFiles.stems(drawn.map(\.1))
    return zip(drawn, stems).map { d, stem in (d.0, Figure(file: stem, title: d.2, svg: d.3)) }
  }

  /// Every figure of the report, in the report's order.
  public var figures: [Figure] { keyedFigures().map(\.figure) }

  static func bandPoints(_ band: CurveBand?) -> [(x: Double, low: Double, high: Double)] {
    guard let band else { return [] }
    return band.x.indices.map { (band.x[$0], band.low[$0], band.high[$0]) }
  }

  /// The PR curve as the step function whose area is the average precision: from the previous
  /// recall to each threshold's recall at that threshold's precision (starting at recall 0).
  static func steps(_ pr: [(Double, Double)]) -> [(Double, Double)] {
    guard let first = pr.first else { return [] }
    var out = [(0.0, first.1)]
    var lastRecall = 0.0
    for (r, p) in pr {
      if r > lastRecall { out.append((lastRecall, p)); out.append((r, p)) }
      lastRecall = r
    }
    return out.count > 1 ? out : pr
  }

  /// The training curves: loss, tuning AUROC (raw solid, EMA dashed) and learning rate per epoch.
  func trainingFigures() -> [(kind: String, svg: String, title: String)] {
    guard !training.isEmpty else { return [] }
    let maxEpoch = Double(training.flatMap(\.epochs).max() ?? 1)
    func series(_ pick: (TrainingCurves) -> [(String, [Double?], String?)]) -> [SVG.Series] {
      training.enumerated().flatMap { i, t in
        pick(t).compactMap { label, values, dash -> SVG.Series? in
          let pts = zip(t.epochs, values).compactMap { e, v in v.flatMap { $0.isFinite ? (Double(e), $0) : nil } }
          guard !pts.isEmpty else { return nil }
          return SVG.Series(name: "\(t.model) \(label)", points: pts, markers: pts.count < 40, style: models.firstIndex(of: t.model) ?? i,
                            dashPattern: dash)
        }
      }
    }
    func range(_ s: [SVG.Series], floor: Double? = nil) -> ClosedRange<Double> {
      let ys = s.flatMap { $0.points.map(\.1) }
      var lo = floor ?? (ys.min() ?? 0), hi = ys.max() ?? 1
      if hi <= lo { hi = lo + 1 }
      let pad = (hi - lo) * 0.05
      lo = floor ?? (lo - pad); hi += pad
      return lo...hi
    }
    let x = 0.0...max(1, maxEpoch)
    let loss = series { [("train", $0.trainLoss, ""), ("tuning (raw)", $0.tuneLossRaw, "6 3"), ("tuning (EMA)", $0.tuneLossEMA, "2 2")] }
    let auroc = series { [("raw", $0.tuneAUROCRaw, ""), ("EMA", $0.tuneAUROCEMA, "6 3")] }
    let lr = series { [("", $0.learningRate, "")] }
    var out: [(String, String, String)] = []
    if !loss.isEmpty {
      let title = "Training: loss per epoch (BCE)"
      out.append(("loss", SVG.chart(title: title, note: "train: solid; tuning split, raw weights: dashed; EMA weights: dotted",
                                    xLabel: "epoch", yLabel: "loss", x: x, y: range(loss, floor: 0), series: loss, square: false), title))
    }
    if !auroc.isEmpty {
      let title = "Training: tuning AUROC per epoch (mean over findings)"
      out.append(("auroc", SVG.chart(title: title, note: "raw weights: solid; EMA weights: dashed", xLabel: "epoch", yLabel: "AUROC",
                                     x: x, y: range(auroc), series: auroc, square: false), title))
    }
    if !lr.isEmpty {
      let title = "Training: learning rate at each epoch's end"
      out.append(("lr", SVG.chart(title: title, xLabel: "epoch", yLabel: "learning rate", x: x, y: range(lr, floor: 0),
                                  series: lr.map { var s = $0; s.name = s.name.trimmingCharacters(in: .whitespaces); return s }, square: false), title))
    }
    return out
  }
}
