import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

final class LabelComparisonTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("labels-compare") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  /// Four labellers of 2,000 reports (two findings; the last labeller skips 100 reports and
  /// writes some uncertain labels) and a human reading of the first 300.
  func writeFiles() throws -> (labellers: [String], human: String, sims: [SimulatedLabellers]) {
    let ptx = SimulatedLabellers(items: 2000, prevalence: 0.15, sensitivity: [0.9, 0.75, 0.95, 0.8], specificity: [0.95, 0.9, 0.85, 0.97], seed: 21)
    let fx = SimulatedLabellers(items: 2000, prevalence: 0.3, sensitivity: [0.7, 0.85, 0.9, 0.8], specificity: [0.98, 0.9, 0.8, 0.9], seed: 22)
    var specs: [String] = []
    for (j, name) in ["chexpert", "llm", "cot", "rule"].enumerated() {
      var text = "study_id,Pneumothorax,Fracture\n"
      for i in 0..<2000 where !(j == 3 && i >= 1900) {
        func cell(_ v: Bool?) -> String { v == true ? "1.0" : "0.0" }
        let p = j == 3 && i % 50 == 0 ? "-1.0" : cell(ptx.labels[j][i])
        text += "\(i),\(p),\(cell(fx.labels[j][i]))\n"
      }
      let url = dir.appendingPathComponent("\(name).csv")
      try text.write(to: url, atomically: true, encoding: .utf8)
      specs.append("\(name)=\(url.path)")
    }
    var human = "id,Pneumothorax,Fracture\n"
    for i in 0..<300 { human += "\(i),\(ptx.truth[i] ? 1 : 0),\(i == 5 ? "equivocal" : fx.truth[i] ? "1" : "0")\n" }
    let h = dir.appendingPathComponent("human.csv")
    try human.write(to: h, atomically: true, encoding: .utf8)
    return (specs, h.path, [ptx, fx])
  }

  func testEstimatesPairsAndMeasuredValues() throws {
    let (specs, human, sims) = try writeFiles()
    let out = dir.appendingPathComponent("out")
    let r = try Jobs.compareLabels(schemas: specs, human: human, findings: nil, uncertain: .ignore, rounds: 200, seed: 4, out: out)
    XCTAssertEqual(r.findings, ["Pneumothorax", "Fracture"])
    XCTAssertEqual(r.ids.count, 2000)
    XCTAssertEqual(r.notes.first, "'rule' (\(dir.appendingPathComponent("rule.csv").path)) has no row for 100 of the 2000 reports; its labels count as missing there")
    for (f, finding) in r.findings.enumerated() {
      // The estimates are Dawid-Skene's on the same columns (uncertain under ignore: missing).
      var columns: [[Bool?]] = sims[f].labels
      for i in 0..<2000 where i >= 1900 || (f == 0 && i % 50 == 0) { columns[3][i] = nil }
      let fit = try DawidSkene.fit(columns, labellers: r.labellers)
      XCTAssertEqual(r.posteriors[finding]!, fit.posterior)
      let prevalence = r.estimates.first { $0.finding == finding && $0.metric == "prevalence" }!
      XCTAssertEqual(prevalence.value, fit.prevalence)
      XCTAssertLessThanOrEqual(prevalence.ciLow!, fit.prevalence)
      XCTAssertGreaterThanOrEqual(prevalence.ciHigh!, fit.prevalence)
      let h = sims[f].truth[0..<300].enumerated().filter { !(f == 1 && $0.offset == 5) }.map(\.element)
      XCTAssertEqual(prevalence.measured!, Double(h.filter { $0 }.count) / Double(h.count), accuracy: 1e-15)
      for (j, name) in r.labellers.enumerated() {
        let s = r.estimates.first { $0.finding == finding && $0.labeller == name && $0.metric == "sensitivity" }!
        let p = r.estimates.first { $0.finding == finding && $0.labeller == name && $0.metric == "specificity" }!
        XCTAssertEqual(s.value, fit.sensitivity[j])
        XCTAssertEqual(p.value, fit.specificity[j])
        XCTAssertLessThan(s.ciLow!, s.ciHigh!)
        XCTAssertLessThanOrEqual(s.ciLow!, s.value!); XCTAssertGreaterThanOrEqual(s.ciHigh!, s.value!)
        // Measured: the labeller against the human reading on the reports both labelled.
        var truth: [Bool] = [], said: [Bool] = []
        for i in 0..<300 where !(f == 1 && i == 5) { if let v = columns[j][i] { truth.append(sims[f].truth[i]); said.append(v) } }
        let c = Confusion(predicted: said, truth: truth)
        XCTAssertEqual(s.measured!, c.sensitivity!, accuracy: 1e-15)
        XCTAssertEqual(p.measured!, c.specificity!, accuracy: 1e-15)
        XCTAssertEqual(s.measuredN, truth.count)
      }
      // Pairwise: Cohen's kappa and AC1 of the Evaluate layer on the reports both labelled.
      let pair = r.pairs.first { $0.finding == finding && $0.labellerA == "llm" && $0.labellerB == "rule" }!
      let both = (0..<2000).filter { columns[1][$0] != nil && columns[3][$0] != nil }
      let x = both.map { columns[1][$0]! ? 1 : 0 }, y = both.map { columns[3][$0]! ? 1 : 0 }
      XCTAssertEqual(pair.n, both.count)
      XCTAssertEqual(pair.cohenKappa, cohenKappa(x, y, categories: 2))
      XCTAssertEqual(pair.gwetAC1, gwetAC1(x, y, categories: 2))
      XCTAssertEqual(pair.agreement!, Double(zip(x, y).filter { $0 == $1 }.count) / Double(both.count), accuracy: 1e-15)
    }
    XCTAssertEqual(r.pairs.count, 12)
    let csv = try CSVTable.read(out.appendingPathComponent("dawid_skene.csv"))
    XCTAssertEqual(csv.header, ["finding", "labeller", "metric", "estimate", "ci_low", "ci_high", "measured", "measured_ci_low", "measured_ci_high", "measured_n"])
    XCTAssertEqual(csv.count, 2 * 9)
    let consensus = try CSVTable.read(out.appendingPathComponent("consensus.csv"))
    XCTAssertEqual(consensus.header, ["id", "Pneumothorax", "Fracture"])
    XCTAssertEqual(Double(consensus.rows[7][1])!, r.posteriors["Pneumothorax"]![7])
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("Uncertain labels: `ignore` (left out, as missing) before everything below"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("pairwise.csv").path))
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("comparison.json").path))
  }

  func testBadInputSaysWhatToDo() throws {
    let (specs, _, _) = try writeFiles()
    XCTAssertThrowsError(try Jobs.compareLabels(schemas: Array(specs.prefix(2)), human: nil, findings: nil, uncertain: .ones,
                                                rounds: 0, seed: 0, out: dir)) { e in
      XCTAssertEqual((e as? UserError)?.message, "cxr labels compare needs at least 3 --schema NAME=FILE labellers of the same reports (got 2): Dawid-Skene cannot tell one labeller's errors from another's with fewer; for two, use cxr agree against a human reading")
    }
    XCTAssertThrowsError(try Jobs.compareLabels(schemas: specs, human: nil, findings: ["Edema"], uncertain: .ones,
                                                rounds: 0, seed: 0, out: dir)) { e in
      XCTAssertTrue((e as? UserError)?.message.contains("Edema") == true, "\(e)")
    }
    XCTAssertThrowsError(try Jobs.compareLabels(schemas: specs + [specs[0]], human: nil, findings: nil, uncertain: .ones,
                                                rounds: 0, seed: 0, out: dir)) { e in
      XCTAssertTrue((e as? UserError)?.message.contains("chexpert") == true, "\(e)")
    }
    // All labellers agree on one finding: said, and no rate is made up.
    var text = "id,Fracture\n"
    for i in 0..<50 { text += "\(i),\(i % 5 == 0 ? 1 : 0)\n" }
    var same: [String] = []
    for n in ["x", "y", "z"] {
      let u = dir.appendingPathComponent("\(n).csv")
      try text.write(to: u, atomically: true, encoding: .utf8)
      same.append("\(n)=\(u.path)")
    }
    let r = try Jobs.compareLabels(schemas: same, human: nil, findings: nil, uncertain: .ones, rounds: 20, seed: 0,
                                   out: dir.appendingPathComponent("same"))
    XCTAssertEqual(r.notes, ["Fracture: every item's labels agree across x, y, z: the labellers' sensitivity and specificity cannot be estimated; the consensus is the common label"])
    XCTAssertTrue(r.estimates.filter { $0.metric != "prevalence" }.allSatisfy { $0.value == nil && $0.ciLow == nil })
    XCTAssertEqual(r.fits[0].status, .noDisagreement)
  }

  func testFromTheCommandLine() throws {
    let (specs, human, _) = try writeFiles()
    let out = dir.appendingPathComponent("cli")
    let r = try CXRBinary.run(["labels", "compare"] + specs.flatMap { ["--schema", $0] }
                              + ["--human", human, "--findings", "Fracture", "--bootstrap", "20", "--out", out.path], for: Self.self)
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertEqual(r.out, "compared 4 labellers on 2000 reports (Fracture): \(out.path)/ (pairwise.csv, dawid_skene.csv, consensus.csv, comparison.json, report.md)\n")
    let bad = try CXRBinary.run(["labels", "compare", "--schema", specs[0], "--out", out.path], for: Self.self)
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.err.contains("needs at least 3 --schema NAME=FILE labellers"), bad.err)
  }
}
