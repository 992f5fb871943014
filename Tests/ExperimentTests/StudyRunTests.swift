import Common
import Evaluate
import Foundation
import TestSupport
import XCTest
@testable import Experiment
import Synth

/// `cxr run` in miniature: a tiny synthetic study, two schemas and a broken one, a ConvNeXt
/// small enough to train in seconds.
final class StudyRunTests: XCTestCase {
  func config(_ data: URL, out: URL, broken: String = "broken.csv") -> String {
    """
    name: mini
    out: \(out.path)
    seed: 1
    device: cpu
    findings: [Pneumothorax, Fracture]
    train_data: {kind: mimic, root: \(data.path)/mimic}
    test_data: {kind: candid, root: \(data.path)/candid}
    schemas:
      - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
      - {name: rule, file: \(data.path)/labels/mimic/synthetic-rule.csv, test_file: \(data.path)/labels/candid/synthetic-rule.csv}
      - {name: broken, file: \(data.path)/labels/mimic/\(broken)}
    split: {stratify: true}          # both classes in the tiny tuning split, so best.safetensors exists
    preprocess: {size: 32}
    model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
    loader: {batch_size: 8, workers: 1}
    train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}
    evaluate: {bootstrap: 20}
    """
  }

  func testRunSkipsWhatIsDoneRefusesWhatChangedAndReportsFailures() throws {
    let dir = try TestEnv.scratch("cxr-studyrun")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("runs")
    _ = try SyntheticStudy.generate(to: data, seed: 3, size: .tiny)
    // A schema whose labels name no study of the training set: it fails when it trains, and
    // does not stop the others.
    try "subject_id,study_id,Pneumothorax,Fracture\n1,2,1.0,0.0\n".write(to: data.appendingPathComponent("labels/mimic/broken.csv"),
                                                                      atomically: true, encoding: .utf8)
    let trainLine = "train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}"
    func run(train: String? = nil, retrain: Set<String> = [], force: Set<String> = []) throws -> [String: StageOutcome] {
      let text = config(data, out: out).replacingOccurrences(of: trainLine, with: train ?? trainLine)
      let study = try Study(try Config.parse(text, source: "mini.yaml"))
      var r = StudyRun(study: study)
      r.log = { _ in }
      return Dictionary(uniqueKeysWithValues: try r.run(force: force, retrain: retrain).map { ($0.0, $0.1) })
    }
    func ran(_ o: StageOutcome?) -> Bool { if case .ran? = o { return true }; return false }
    let root = out.appendingPathComponent("mini")

    // A missing label file is found before anything is trained or written.
    let missing = try Study(try Config.parse(config(data, out: out, broken: "no-such-file.csv"), source: "mini.yaml"))
    XCTAssertThrowsError(try StudyRun(study: missing).run()) { e in
      XCTAssertEqual("\(e)", "mini.yaml: 1 problem found before anything was run or written:\n  - mini.yaml:11: schemas[2].file: \(data.path)/labels/mimic/no-such-file.csv does not exist")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.path), "nothing written")

    let first = try run()
    XCTAssertTrue(ran(first["train:truth"]) && ran(first["predict:truth"]) && ran(first["train:rule"])
                    && ran(first["predict:rule"]) && ran(first["evaluate"]), "\(first)")
    guard case .failed(let why)? = first["train:broken"] else { return XCTFail("\(first)") }
    XCTAssertTrue(why.contains("labels none of the"), why)
    XCTAssertEqual(first["predict:broken"], .blocked("train:broken failed: \(why)"))

    let report = try String(contentsOf: root.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("| train:broken | failed: "), report)
    XCTAssertTrue(report.contains("## Pneumothorax: AUROC"), report)
    XCTAssertTrue(report.contains("| schema | masks | truth | rule |"), report)
    XCTAssertTrue(report.contains("\n| truth |") && !report.contains("\n| masks |"), "masks is a column, schemas are rows")
    // The report and the predictions say which weights made them.
    XCTAssertTrue(report.contains("## Which weights made the predictions"), report)
    XCTAssertTrue(report.contains("| truth | best (ema weights by ema.auroc.mean = "), report)
    let preds = try CSVTable.read(root.appendingPathComponent("truth/predictions.csv"))
    let header = PredictionsFile.header(preds.comments)
    XCTAssertEqual(header["weights"], root.appendingPathComponent("truth/best.safetensors").path)
    XCTAssertEqual(header["weights_sha256"], try SHA256.file(root.appendingPathComponent("truth/best.safetensors")))
    XCTAssertEqual(header["input"], "size 32, equalize yes")
    XCTAssertTrue(header["provenance"]?.hasPrefix("cxr ") ?? false, "\(header)")
    let metrics = try String(contentsOf: root.appendingPathComponent("evaluation/metrics.csv"), encoding: .utf8)
    for model in ["truth", "rule"] {
      for ref in ["masks", "truth", "rule"] {
        XCTAssertTrue(metrics.contains("\n\(model),\(ref),Pneumothorax,auroc,"), "\(model) vs \(ref)")
      }
    }
    // The evaluation's own report says which weights, split and reference made its numbers, and
    // draws each classifier's training curves from its metrics.jsonl, every figure also a file.
    let evaluationHTML = try String(contentsOf: root.appendingPathComponent("evaluation/report.html"), encoding: .utf8)
    XCTAssertTrue(evaluationHTML.contains("<td>\(HTMLText.escape(header["weights_kind"]!)): \(root.appendingPathComponent("truth/best.safetensors").path) (SHA-256 \(header["weights_sha256"]!.prefix(12))…)</td>"),
                  String(evaluationHTML.prefix(3000)))
    XCTAssertTrue(evaluationHTML.contains("Training curves: truth from \(root.appendingPathComponent("truth/metrics.jsonl").path); rule from "))
    let figures = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("evaluation/figures").path)
    for stem in ["training-loss", "training-auroc", "training-lr", "pneumothorax-vs-masks-roc", "pneumothorax-auroc-heatmap"] {
      XCTAssertTrue(figures.contains("\(stem).svg"), "\(stem) in \(figures.sorted())")
      if FigureFiles.pdfUnavailableReason == nil { XCTAssertTrue(figures.contains("\(stem).pdf"), stem) }
    }
    let split = try String(contentsOf: root.appendingPathComponent("truth/split.csv"), encoding: .utf8)
    XCTAssertTrue(split.hasPrefix("id,subject_id,study_id,split\n"))
    let truthWeights = try Data(contentsOf: root.appendingPathComponent("truth/best.safetensors"))

    // A mistyped weights choice names the key instead of silently picking some weights.
    XCTAssertThrowsError(try Config.parse(config(data, out: out) + "\npredict: {weights: emma}\n", source: "mini.yaml")) { e in
      XCTAssertEqual("\(e)", "mini.yaml:18: predict.weights is 'emma'; use best, ema or raw")
    }

    // Nothing changed: every finished stage is skipped; the broken one fails again.
    let second = try run()
    for s in ["train:truth", "predict:truth", "train:rule", "predict:rule", "evaluate"] {
      XCTAssertEqual(second[s], .skipped, s)
    }
    // A display key changed: still nothing retrained.
    let display = try run(train: "train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}, progress_interval: 5, keep_last: 3}")
    for s in ["train:truth", "predict:truth", "train:rule", "predict:rule", "evaluate"] {
      XCTAssertEqual(display[s], .skipped, s)
    }
    // A setting that changes the weights: refused before anything runs, with the diff.
    XCTAssertThrowsError(try run(train: "train: {epochs: 1, lr: 2.0e-3, augment: {mix: 0, affine: 0}}")) { e in
      let m = "\(e)"
      XCTAssertTrue(m.hasPrefix("mini.yaml: 2 problems found before anything was run or written:\n"), m)
      XCTAssertTrue(m.contains("  - train:truth: \(root.path)/truth was trained with other settings: train.lr: 0.001 -> 0.002; restore them, or retrain (cxr run --retrain truth moves the old folder aside"), m)
      XCTAssertTrue(m.contains("  - train:rule: "), m)
    }
    // A misspelt --force is an error, not ignored.
    XCTAssertThrowsError(try run(force: ["trian"])) { e in
      XCTAssertTrue("\(e)".contains("  - --force trian: no stage has that name (stages: train:truth, predict:truth,"), "\(e)")
    }
    XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent("truth/best.safetensors")), truthWeights, "untouched")

    // One schema's labels change: that training is refused until --retrain names it; then its
    // old folder is moved aside (not deleted), it and the evaluation re-run, the other does not.
    let ruleFile = data.appendingPathComponent("labels/mimic/synthetic-rule.csv")
    // Flip the first positive Pneumothorax label (a change in another column would train the
    // same model, so the predictions and the evaluation would rightly stay as they were).
    var lines = try String(contentsOf: ruleFile, encoding: .utf8).components(separatedBy: "\n")
    let column = lines[0].components(separatedBy: ",").firstIndex(of: "Pneumothorax")!
    let row = lines.indices.dropFirst().first { lines[$0].components(separatedBy: ",").dropFirst(column).first == "1.0" }!
    var cells = lines[row].components(separatedBy: ",")
    cells[column] = "0.0"
    lines[row] = cells.joined(separator: ",")
    try lines.joined(separator: "\n").write(to: ruleFile, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try run()) { e in
      XCTAssertTrue("\(e)".contains("  - train:rule: \(root.path)/rule was trained with other settings: schema.file (\(ruleFile.path)): content changed;"), "\(e)")
    }
    let oldRule = try Data(contentsOf: root.appendingPathComponent("rule/best.safetensors"))
    let third = try run(retrain: ["rule"])
    XCTAssertEqual(third["train:truth"], .skipped)
    XCTAssertEqual(third["predict:truth"], .skipped)
    XCTAssertTrue(ran(third["train:rule"]) && ran(third["predict:rule"]) && ran(third["evaluate"]), "\(third)")
    let aside = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("rule.replaced-") }
    XCTAssertEqual(aside.count, 1, "\(aside)")
    XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent(aside[0]).appendingPathComponent("best.safetensors")), oldRule)
  }
}
