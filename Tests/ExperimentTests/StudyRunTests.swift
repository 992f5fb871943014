import Foundation
import TestSupport
import XCTest
@testable import Experiment

/// `cxr run` in miniature: a tiny synthetic study, two schemas and a broken one, a ConvNeXt
/// small enough to train in seconds.
final class StudyRunTests: XCTestCase {
  func config(_ data: URL, out: URL) -> String {
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
      - {name: broken, file: \(data.path)/labels/mimic/no-such-file.csv}
    preprocess: {size: 32}
    model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
    loader: {batch_size: 8, workers: 1}
    train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}
    evaluate: {bootstrap: 20}
    """
  }

  func testRunSkipsWhatIsDoneRerunsWhatChangedAndReportsFailures() throws {
    let dir = try TestEnv.scratch("cxr-studyrun")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("runs")
    _ = try SyntheticStudy.generate(to: data, seed: 3, size: .tiny)
    func run() throws -> [String: StageOutcome] {
      let study = try Study(try Config.parse(config(data, out: out), source: "mini.yaml"))
      var r = StudyRun(study: study)
      r.log = { _ in }
      return Dictionary(uniqueKeysWithValues: try r.run().map { ($0.0, $0.1) })
    }
    func ran(_ o: StageOutcome?) -> Bool { if case .ran? = o { return true }; return false }

    let first = try run()
    XCTAssertTrue(ran(first["train:truth"]) && ran(first["predict:truth"]) && ran(first["train:rule"])
                    && ran(first["predict:rule"]) && ran(first["evaluate"]), "\(first)")
    guard case .failed(let why)? = first["train:broken"] else { return XCTFail("\(first)") }
    XCTAssertTrue(why.contains("no-such-file.csv"), why)
    XCTAssertEqual(first["predict:broken"], .blocked("train:broken failed: \(why)"))

    let root = out.appendingPathComponent("mini")
    let report = try String(contentsOf: root.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("| train:broken | failed: "), report)
    XCTAssertTrue(report.contains("## Pneumothorax: AUROC"), report)
    XCTAssertTrue(report.contains("| schema | masks | truth | rule |"), report)
    XCTAssertTrue(report.contains("\n| truth |") && !report.contains("\n| masks |"), "masks is a column, schemas are rows")
    let metrics = try String(contentsOf: root.appendingPathComponent("evaluation/metrics.csv"), encoding: .utf8)
    for model in ["truth", "rule"] {
      for ref in ["masks", "truth", "rule"] {
        XCTAssertTrue(metrics.contains("\n\(model),\(ref),Pneumothorax,auroc,"), "\(model) vs \(ref)")
      }
    }
    let split = try String(contentsOf: root.appendingPathComponent("truth/split.csv"), encoding: .utf8)
    XCTAssertTrue(split.hasPrefix("id,subject_id,study_id,split\n"))

    // A mistyped weights choice names the key instead of silently picking some weights.
    let typo = try Study(try Config.parse(config(data, out: out) + "\npredict: {weights: emma}\n", source: "mini.yaml"))
    XCTAssertThrowsError(try StudyRun(study: typo).predict(schema: "truth", out: dir.appendingPathComponent("p.csv"))) { e in
      XCTAssertEqual("\(e)", "mini.yaml:17: predict.weights is 'emma'; use ema, raw or best")
    }

    // Nothing changed: every finished stage is skipped; the broken one fails again.
    let second = try run()
    for s in ["train:truth", "predict:truth", "train:rule", "predict:rule", "evaluate"] {
      XCTAssertEqual(second[s], .skipped, s)
    }

    // One schema's labels change: its stages and the evaluation re-run, the other's do not.
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
    let third = try run()
    XCTAssertEqual(third["train:truth"], .skipped)
    XCTAssertEqual(third["predict:truth"], .skipped)
    XCTAssertTrue(ran(third["train:rule"]) && ran(third["predict:rule"]) && ran(third["evaluate"]), "\(third)")
  }
}
