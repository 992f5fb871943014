import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Every figure of the evaluation report as its own SVG and PDF file: the SVG parses as XML, the
/// PDF opens in poppler (`pdfinfo`: one page of the SVG's size; `pdffonts`: the font embedded),
/// and the report renders in headless Chromium with every plot and no console error.
final class FigureFilesTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-figures") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func evaluation() throws -> EvaluationResult {
    var rng = TestRandom(21)
    var ids: [String] = [], truth: [String: [String: Double?]] = [:]
    var a: [Double] = [], b: [Double] = []
    for i in 0..<200 {
      let y = rng.uniform() < 0.25
      ids.append("img\(i)")
      truth["img\(i)"] = ["Pneumothorax": y ? 1 : 0, "Chest Tube": rng.uniform() < 0.5 ? 1 : 0]
      a.append(min(1, (y ? 0.3 : 0) + rng.uniform() * 0.7)); b.append(min(1, (y ? 0.1 : 0) + rng.uniform() * 0.9))
    }
    // A name with characters a file name cannot hold, and one that slugs like another.
    let preds = [Predictions(name: "llm<cot>", source: "a.csv", ids: ids, scores: ["Pneumothorax": a, "Chest Tube": b]),
                 Predictions(name: "llm/cot", source: "b.csv", ids: ids, scores: ["Pneumothorax": b, "Chest Tube": a])]
    var options = EvaluationOptions(thresholds: [0.5])
    options.trainingCurves = [TrainingCurves(model: "llm<cot>", source: "run/llm/metrics.jsonl", epochs: [1, 2, 3],
                                             trainLoss: [0.6, 0.4, 0.3], tuneLossRaw: [0.5, 0.45, nil], tuneLossEMA: [0.55, 0.44, 0.41],
                                             tuneAUROCRaw: [0.7, 0.8, 0.82], tuneAUROCEMA: [0.65, 0.79, 0.83], learningRate: [1e-4, 5e-5, 1e-6])]
    return try Evaluation.run(predictions: preds, references: [try ReferenceLabels(name: "masks", source: "CANDID-PTX masks", values: truth,
                                                                                  findings: ["Pneumothorax", "Chest Tube"])],
                              findings: ["Pneumothorax", "Chest Tube"], rounds: 50, seed: 1, options: options)
  }

  func testEveryFigureIsWrittenAsSVGAndAOnePagePDFOfItsSize() throws {
    try XCTSkipIf(FigureFiles.pdfUnavailableReason != nil, "\(FigureFiles.pdfUnavailableReason ?? "")")
    var result = try evaluation()
    try result.write(to: dir)
    let figures = result.figures
    // Per finding: 2 heatmaps, ROC, PR, reliability; then 3 training curves.
    XCTAssertEqual(figures.count, 2 * 5 + 3)
    XCTAssertEqual(figures.map(\.file), [
      "pneumothorax-auroc-heatmap", "pneumothorax-auprc-heatmap", "pneumothorax-vs-masks-roc", "pneumothorax-vs-masks-pr",
      "pneumothorax-vs-masks-reliability", "chest-tube-auroc-heatmap", "chest-tube-auprc-heatmap", "chest-tube-vs-masks-roc",
      "chest-tube-vs-masks-pr", "chest-tube-vs-masks-reliability", "training-loss", "training-auroc", "training-lr",
    ])
    for f in figures {
      let svgURL = dir.appendingPathComponent("figures/\(f.file).svg"), pdfURL = dir.appendingPathComponent("figures/\(f.file).pdf")
      let svg = try Data(contentsOf: svgURL)
      XCTAssertEqual(String(decoding: svg, as: UTF8.self), f.svg)
      let parser = XMLParser(data: svg)
      XCTAssertTrue(parser.parse(), "\(f.file).svg: \(parser.parserError.map { "\($0)" } ?? "")")
      let size = try XCTUnwrap(svgSize(f.svg))
      let text = try run("pdfinfo", [pdfURL.path])
      var info: [String: String] = [:]
      for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        info[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      }
      XCTAssertEqual(info["Pages"], "1", text)
      XCTAssertEqual(info["Page size"], "\(fmt(size.width)) x \(fmt(size.height)) pts", f.file)
      XCTAssertEqual(info["Title"], f.title)
      XCTAssertEqual(info["Creator"], "cxr \(BuildInfo.version)")
      let fonts = try run("pdffonts", [pdfURL.path])
      let rows = fonts.split(separator: "\n").dropFirst(2)
      XCTAssertFalse(rows.isEmpty, "\(f.file).pdf has no text")
      for row in rows {
        XCTAssertTrue(row.contains("DejaVuSans"), "\(f.file).pdf uses another font: \(row)")
        XCTAssertTrue(row.contains(" yes yes "), "\(f.file).pdf font not embedded as a subset: \(row)")
      }
    }
    // The report shows each figure inline and links its files.
    let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    for f in figures { XCTAssertTrue(html.contains("href=\"figures/\(f.file).pdf\""), f.file) }
    XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, figures.count)
  }

  func testFigureContentsSayWhatTheyShow() throws {
    let result = try evaluation()
    let figures = Dictionary(uniqueKeysWithValues: result.figures.map { ($0.file, $0.svg) })
    let heatmap = try XCTUnwrap(figures["pneumothorax-auroc-heatmap"])
    XCTAssertTrue(heatmap.contains(">reference (labels the test set is scored against)<"))
    XCTAssertTrue(heatmap.contains(">model (its training labels)<"))
    XCTAssertTrue(heatmap.contains("class=\"colorbar\""))
    let a = try XCTUnwrap(result.row(model: "llm<cot>", reference: "masks", finding: "Pneumothorax", metric: "auroc"))
    XCTAssertTrue(heatmap.contains(">\(Format.interval(a.ciLow, a.ciHigh))<"), "the cell's CI")
    let pr = try XCTUnwrap(figures["pneumothorax-vs-masks-pr"])
    XCTAssertTrue(pr.contains("class=\"baseline\""))
    XCTAssertTrue(pr.contains("prevalence \(Format.short(Double(a.nPos) / Double(a.n))) (\(a.nPos) of \(a.n))"))
    XCTAssertEqual(pr.components(separatedBy: "class=\"band\"").count - 1, 2, "one band per model")
    XCTAssertTrue(pr.contains("pointwise 95 % bootstrap CI (50 rounds)"))
    // Okabe-Ito colours, the first two models in the first two.
    XCTAssertTrue(pr.contains("stroke=\"#0072B2\"") && pr.contains("stroke=\"#D55E00\""))
    XCTAssertTrue(pr.contains("font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""))
    let loss = try XCTUnwrap(figures["training-loss"])
    XCTAssertTrue(loss.contains(">llm&lt;cot&gt; train<"))
    XCTAssertEqual(loss.components(separatedBy: "class=\"curve\"").count - 1, 3, "train, tuning raw, tuning EMA")
    // The report says which weights, split and reference made the numbers.
    XCTAssertTrue(result.html.contains("<h2>What made these numbers</h2>"))
    XCTAssertTrue(result.html.contains("<td>CANDID-PTX masks</td>"))
    XCTAssertTrue(result.markdown.contains("| llm\\<cot\\> | a.csv | weights not stated in the file | not stated |"))
  }

  func testTheReportRendersInChromiumWithEveryPlotAndNoConsoleError() throws {
    try XCTSkipIf(FigureFiles.pdfUnavailableReason != nil, "\(FigureFiles.pdfUnavailableReason ?? "")")
    var result = try evaluation()
    try result.write(to: dir)
    let script = TestEnv.root.appendingPathComponent("scripts/check-report.sh")
    let out = try run("bash", [script.path, dir.appendingPathComponent("report.html").path], env: ["OUT_DIR": dir.appendingPathComponent("shots").path],
                      timeout: 120)
    XCTAssertTrue(out.contains("13 <svg> plots rendered, no console errors"), out)
  }

  func result() throws -> EvaluationResult { try evaluation() }

  func svgSize(_ svg: String) -> (width: Double, height: Double)? {
    func attr(_ name: String) -> Double? {
      guard let r = svg.range(of: " \(name)=\"") else { return nil }
      return Double(svg[r.upperBound...].prefix { $0 != "\"" })
    }
    guard let w = attr("width"), let h = attr("height") else { return nil }
    return (w, h)
  }

  /// pdfinfo prints the page size with up to 3 decimals, trailing zeros dropped ("370 x 469.5").
  func fmt(_ v: Double) -> String {
    var t = String(format: "%.3f", v)
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
  }

  func run(_ tool: String, _ args: [String], env: [String: String] = [:], timeout: Double = 30) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    p.environment = ProcessInfo.processInfo.environment.merging(env) { _, b in b }
    let pipe = Pipe()
    p.standardOutput = pipe; p.standardError = pipe
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    final class Output: @unchecked Sendable { var data = Data() }
    let output = Output()
    let done = DispatchSemaphore(value: 0)
    DispatchQueue(label: "read").async { output.data = pipe.fileHandleForReading.readDataToEndOfFile(); done.signal() }
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if p.isRunning { p.terminate(); XCTFail("\(tool) ran past \(timeout) s") }
    p.waitUntilExit()
    _ = done.wait(timeout: .now() + 5)
    return String(decoding: output.data, as: UTF8.self)
  }
}
