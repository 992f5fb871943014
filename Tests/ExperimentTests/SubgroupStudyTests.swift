import Common
import Foundation
import TestSupport
import XCTest
@testable import Experiment
@testable import Synth

/// The evaluate stage's subgroups: the chest tube from the CANDID-PTX masks and a user CSV from
/// the config, on a tiny synthetic study with predictions written here (no training needed).
final class SubgroupStudyTests: XCTestCase {
  func config(_ data: URL, out: URL, subgroups: String) -> String {
    """
    name: sub
    out: \(out.path)
    device: cpu
    findings: [Pneumothorax]
    train_data: {kind: mimic, root: \(data.path)/mimic}
    test_data: {kind: candid, root: \(data.path)/candid}
    schemas:
      - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
    evaluate: {bootstrap: 50, subgroups: \(subgroups)}
    """
  }

  func testEvaluateStageStratifiesByChestTubeAndTheConfigsCSV() throws {
    let dir = try TestEnv.scratch("cxr-subgroup-study")
    defer { try? FileManager.default.removeItem(at: dir) }
    // A seed whose 16 test images hold at least two tubes.
    let seed = try XCTUnwrap((UInt64(1)...UInt64(300)).first { s in
      SynthPlan(seed: s, size: .tiny).candid.filter { $0.truth.chestTube != nil }.count >= 2
    })
    let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("runs")
    try SyntheticStudy.generate(to: data, seed: seed, size: .tiny)
    let plan = SynthPlan(seed: seed, size: .tiny)
    // A shortcut model: it scores the tube, not the pneumothorax.
    let tubed = Set(plan.candid.filter { $0.truth.chestTube != nil }.map(\.sopUID))
    let sexes = plan.candid.indices.map { $0 % 2 == 0 ? "F" : "M" }
    let attrs = dir.appendingPathComponent("attrs.csv")
    try ("id,sex,site\n" + plan.candid.enumerated().map { "\($1.sopUID),\(sexes[$0]),A" }.joined(separator: "\n") + "\n")
      .write(to: attrs, atomically: true, encoding: .utf8)
    let text = config(data, out: out, subgroups: "{file: \(attrs.path), columns: [sex], min_cases: 2}")
    let runner = StudyRun(study: try Study(try Config.parse(text, source: "sub.yaml")))
    let predictions = runner.study.schemaFolder("truth").appendingPathComponent("predictions.csv")
    try FileManager.default.createDirectory(at: predictions.deletingLastPathComponent(), withIntermediateDirectories: true)
    try ("id,Pneumothorax\n" + plan.candid.enumerated().map { "\($1.sopUID),\(tubed.contains($1.sopUID) ? 0.9 : 0.1 + 0.01 * Double($0))" }
      .joined(separator: "\n") + "\n").write(to: predictions, atomically: true, encoding: .utf8)
    var r = runner
    r.log = { _ in }
    try r.evaluate()
    let csv = try CSVTable.read(r.evaluationFolder.appendingPathComponent("subgroups.csv"))
    let attributes = Set(csv.rows.map { $0[0] })
    XCTAssertTrue(attributes.isSubset(of: ["chest tube", "sex"]), "\(attributes): site was not chosen")
    XCTAssertTrue(attributes.contains("sex"), "\(csv.rows)")
    let tubeRows = csv.rows.filter { $0[0] == "chest tube" }
    let yes = tubeRows.first { $0[1] == "yes" }
    if let yes {
      XCTAssertEqual(Int(yes[csv.index(of: "n")!]), tubed.count, "the tube attribute comes from chest_tube.csv's masks")
    } else {
      // Too few cases of a class among the tubed images at this size: the note says so.
      let report = try String(contentsOf: r.evaluationFolder.appendingPathComponent("report.md"), encoding: .utf8)
      XCTAssertTrue(report.contains("subgroup 'chest tube' = 'yes'"), report)
    }

    // A columns list without a file, and an unknown column, are config errors naming the key or file.
    let noFile = try Study(try Config.parse(config(data, out: out, subgroups: "{columns: [sex]}"), source: "sub.yaml"))
    XCTAssertThrowsError(try StudyRun(study: noFile).evaluate()) { e in
      XCTAssertEqual("\(e)", "sub.yaml:9: evaluate.subgroups.columns needs evaluate.subgroups.file, the CSV they are columns of")
    }
    let badColumn = try Study(try Config.parse(config(data, out: out, subgroups: "{file: \(attrs.path), columns: [age]}"), source: "sub.yaml"))
    XCTAssertThrowsError(try StudyRun(study: badColumn).evaluate()) { e in
      XCTAssertEqual("\(e)", "\(attrs.path) (evaluate.subgroups.file (sub.yaml:9)) has no attribute column 'age'; its attribute columns are: sex, site")
    }
    XCTAssertThrowsError(try Config.parse(config(data, out: out, subgroups: "{file: \(attrs.path), colums: [sex]}"), source: "sub.yaml"))
  }
}
