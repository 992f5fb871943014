import Common
import Data
import Foundation
import TestSupport
import XCTest
@testable import Synth

/// The synthetic labellers' known error rates (`labels/mimic/labeller-rates.csv`) are their
/// labels measured against the truth file under U-ones, blank = negative.
final class LabellerRatesTests: XCTestCase {
  func testRatesFileMatchesTheLabelFiles() throws {
    let root = try TestEnv.scratch("synth-rates")
    defer { try? FileManager.default.removeItem(at: root) }
    let paths = try SyntheticStudy.generate(to: root, seed: 5, size: .small, writeImages: false)
    let rates = try CSVTable.read(root.appendingPathComponent("labels/mimic/labeller-rates.csv"))
    XCTAssertEqual(rates.header, ["labeller", "finding", "sensitivity", "specificity", "positives", "negatives"])
    XCTAssertEqual(rates.rows.map { $0[0] }, ["truth", "truth", "llm", "llm", "rule", "rule", "llm_cot", "llm_cot"])
    let findings = ["Pneumothorax", "Fracture"]
    let truth = try LabelSchema(name: "truth", file: paths.trainLabels["truth"]!, format: .chexpert).read(findings: findings)
    for name in ["truth", "llm", "rule"] {
      let t = try LabelSchema(name: name, file: paths.trainLabels[name]!, format: .chexpert, uncertainty: .ones).read(findings: findings)
      for (f, finding) in findings.enumerated() {
        var tp = 0, fn = 0, tn = 0, fp = 0
        for (key, r) in truth.rowOfKey {
          let isPositive = truth.values[r * 2 + f] == .positive
          let said = LabelDerivation.binary(t.labels(for: key)![t.labels(for: key)!.startIndex + f], .ones)!
          switch (isPositive, said) {
          case (true, true): tp += 1
          case (true, false): fn += 1
          case (false, true): fp += 1
          case (false, false): tn += 1
          }
        }
        let row = rates.rows.first { $0[0] == name && $0[1] == finding }!
        XCTAssertEqual(Double(row[2])!, Double(tp) / Double(tp + fn), accuracy: 1e-15, "\(name) \(finding)")
        XCTAssertEqual(Double(row[3])!, Double(tn) / Double(tn + fp), accuracy: 1e-15, "\(name) \(finding)")
        XCTAssertEqual(Int(row[4])!, tp + fn)
        if name == "truth" { XCTAssertEqual(Double(row[2])!, 1); XCTAssertEqual(Double(row[3])!, 1) }
      }
    }
  }
}
