import Common
import Foundation
import TestSupport
import XCTest
@testable import Experiment
import Synth

/// A noise sweep and a Dawid-Skene consensus through `cxr run` on the tiny synthetic study:
/// every point trains, predicts and is reported; a new point trains only itself.
final class SweepRunTests: XCTestCase {
  func config(_ data: URL, out: URL, rates: String) -> String {
    """
    name: sweep
    out: \(out.path)
    seed: 1
    device: cpu
    findings: [Pneumothorax, Fracture]
    train_data: {kind: mimic, root: \(data.path)/mimic}
    test_data: {kind: candid, root: \(data.path)/candid}
    schemas:
      - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
      - {name: llm, file: \(data.path)/labels/mimic/synthetic-llm.csv}
      - {name: rule, file: \(data.path)/labels/mimic/synthetic-rule.csv}
      - name: noisy
        derive: {from: truth, seed: 3}
        sweep: {flip_positive: [\(rates)]}
      - name: consensus
        derive: {dawid_skene: [truth, llm, rule], output: soft}
    split: {stratify: true}
    preprocess: {size: 32}
    model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
    loader: {batch_size: 8, workers: 1}
    train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}
    evaluate: {bootstrap: 20}
    """
  }

  func testSweepTrainsAndReportsEveryPoint() throws {
    let dir = try TestEnv.scratch("cxr-sweep")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("runs")
    _ = try SyntheticStudy.generate(to: data, seed: 3, size: .tiny)
    func run(_ rates: String) throws -> [String: StageOutcome] {
      let study = try Study(try Config.parse(config(data, out: out, rates: rates), source: "sweep.yaml"))
      var r = StudyRun(study: study)
      r.log = { _ in }
      return Dictionary(uniqueKeysWithValues: try r.run().map { ($0.0, $0.1) })
    }
    func ran(_ o: StageOutcome?) -> Bool { if case .ran? = o { return true }; return false }
    let first = try run("0, 0.5")
    for s in ["truth", "llm", "rule", "noisy-fp0", "noisy-fp0.5", "consensus"] {
      XCTAssertTrue(ran(first["train:\(s)"]) && ran(first["predict:\(s)"]), "\(s): \(first)")
    }
    XCTAssertTrue(ran(first["evaluate"]))
    let root = out.appendingPathComponent("sweep")
    let report = try String(contentsOf: root.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("## Noise curve: AUROC against the training labels' sensitivity"), report)
    XCTAssertTrue(report.contains("| schema | from | sensitivity | specificity | masks | truth |"), report)
    for line in ["| noisy-fp0 | truth | 1.000 | 1.000 |", "| noisy-fp0.5 | truth | 0.500 | 1.000 |"] {
      let row = report.components(separatedBy: "\n").first { $0.hasPrefix(line) }
      XCTAssertNotNil(row, report)
      // An AUROC with its CI in each reference column, printed as the evaluation prints CIs:
      // "0.719 (0.541–0.948)", or "[a, b]" across zero.
      XCTAssertEqual(row.map { $0.components(separatedBy: "|").filter { ($0.contains("(") && $0.contains("–")) || $0.contains("[") }.count }, 2, row ?? "")
    }
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("noise-Pneumothorax.svg").path))
    XCTAssertTrue(report.contains("## Labeller quality without a reference (Dawid-Skene)"), report)
    XCTAssertTrue(report.contains("### consensus: truth, llm, rule"), report)
    XCTAssertTrue(report.contains("| labeller | sensitivity (estimated) | specificity (estimated) |"), report)
    // The consensus trained on soft targets: its labels row is there with its images.
    XCTAssertTrue(report.contains("\n| consensus | "), report)

    // One more point: only it trains and predicts; evaluation reruns with its predictions.
    let second = try run("0, 0.25, 0.5")
    XCTAssertTrue(ran(second["train:noisy-fp0.25"]) && ran(second["predict:noisy-fp0.25"]) && ran(second["evaluate"]), "\(second)")
    for s in ["truth", "llm", "rule", "noisy-fp0", "noisy-fp0.5", "consensus"] {
      XCTAssertEqual(second["train:\(s)"], .skipped, s)
    }
  }
}
