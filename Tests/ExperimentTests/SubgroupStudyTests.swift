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
    XCTAssertTrue(attributes.isSubset(of: ["chest tube", "view position", "sex"]), "\(attributes): site was not chosen")
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

extension SubgroupStudyTests {
  /// CANDID-PTX's view position, read from the DICOM headers, is an attribute of its own beside
  /// the chest tube: images without one are left out (with a note); when none has one the
  /// attribute is skipped with a note, and the evaluation goes on.
  func testEvaluateStageStratifiesByTheDICOMViewPosition() throws {
    let dir = try TestEnv.scratch("cxr-subgroup-view")
    defer { try? FileManager.default.removeItem(at: dir) }
    // A seed whose 16 test images hold both classes under both known views, and an absent view.
    let seed = try XCTUnwrap((UInt64(1)...UInt64(2000)).first { s in
      let images = SynthPlan(seed: s, size: .tiny).candid
      guard images.contains(where: { $0.view.isEmpty }) else { return false }
      return ["AP", "PA"].allSatisfy { v in
        let set = images.filter { $0.view == v }
        let pos = set.filter { $0.truth.pneumothorax != nil }.count
        return pos >= 1 && set.count - pos >= 1
      }
    })
    let data = dir.appendingPathComponent("data"), out = dir.appendingPathComponent("runs")
    try SyntheticStudy.generate(to: data, seed: seed, size: .tiny)
    let plan = SynthPlan(seed: seed, size: .tiny)
    var runner = StudyRun(study: try Study(try Config.parse(config(data, out: out, subgroups: "{min_cases: 1}"), source: "sub.yaml")))
    runner.log = { _ in }
    let predictions = runner.study.schemaFolder("truth").appendingPathComponent("predictions.csv")
    try FileManager.default.createDirectory(at: predictions.deletingLastPathComponent(), withIntermediateDirectories: true)
    // A model that scores the view: AP films high.
    try ("id,Pneumothorax\n" + plan.candid.enumerated().map { "\($1.sopUID),\(($1.view == "AP" ? 0.6 : 0.2) + 0.01 * Double($0))" }
      .joined(separator: "\n") + "\n").write(to: predictions, atomically: true, encoding: .utf8)
    try runner.evaluate()
    let csv = try CSVTable.read(runner.evaluationFolder.appendingPathComponent("subgroups.csv"))
    let viewRows = csv.rows.filter { $0[0] == "view position" }
    XCTAssertEqual(Set(viewRows.map { $0[1] }), ["AP", "PA"], "\(csv.rows)")
    for row in viewRows {
      XCTAssertEqual(Int(row[csv.index(of: "n")!]), plan.candid.filter { $0.view == row[1] }.count, "n of \(row[1]) from the headers")
      XCTAssertEqual(Int(row[csv.index(of: "complement_n")!]), plan.candid.filter { !$0.view.isEmpty && $0.view != row[1] }.count,
                     "the images of unknown view are in neither side")
    }
    let report = try String(contentsOf: runner.evaluationFolder.appendingPathComponent("report.md"), encoding: .utf8)
    let absent = plan.candid.filter { $0.view.isEmpty }.count
    XCTAssertTrue(report.contains("view position: \(absent) image(s) have no View Position (0018,5101) in their DICOM header; those images are left out of the view-position subgroups"), report)
    XCTAssertTrue(report.contains("by view position"), "the report has a view-position table")

    // Every header's View Position blanked in place ("AP"/"PA" -> two spaces): no known view,
    // so the attribute is skipped with a note; the chest tube remains.
    let element: [UInt8] = [0x18, 0x00, 0x01, 0x51] + Array("CS".utf8) + [2, 0]
    for image in plan.candid where !image.view.isEmpty {
      let url = data.appendingPathComponent("candid/dataset/\(image.sopUID).dcm")
      var bytes = [UInt8](try Data(contentsOf: url))
      let at = try XCTUnwrap(bytes.indices.dropLast(element.count).first { Array(bytes[$0..<($0 + element.count)]) == element })
      bytes[at + element.count] = 0x20; bytes[at + element.count + 1] = 0x20
      try Data(bytes).write(to: url)
    }
    try runner.evaluate()
    let blanked = try CSVTable.read(runner.evaluationFolder.appendingPathComponent("subgroups.csv"))
    XCTAssertFalse(blanked.rows.contains { $0[0] == "view position" })
    let report2 = try String(contentsOf: runner.evaluationFolder.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertEqual(blanked.rows.contains { $0[0] == "chest tube" }, csv.rows.contains { $0[0] == "chest tube" }, "the chest tube as before")
    XCTAssertTrue(report2.contains("view position: no test image has a known View Position (\(plan.candid.count) image(s) have no View Position (0018,5101) in their DICOM header), so the view-position subgroups are skipped"), report2)

    // A user CSV with its own 'view position' column (what the README once advised) wins over the headers.
    let attrs = dir.appendingPathComponent("attrs.csv")
    try ("id,view position\n" + plan.candid.enumerated().map { "\($1.sopUID),\($0 % 2 == 0 ? "X" : "Y")" }.joined(separator: "\n") + "\n")
      .write(to: attrs, atomically: true, encoding: .utf8)
    runner = StudyRun(study: try Study(try Config.parse(config(data, out: out, subgroups: "{file: \(attrs.path), min_cases: 1}"), source: "sub.yaml")))
    runner.log = { _ in }
    try runner.evaluate()
    let report3 = try String(contentsOf: runner.evaluationFolder.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(report3.contains("view position: taken from \(attrs.path), not from the DICOM headers"), report3)
    let own = try CSVTable.read(runner.evaluationFolder.appendingPathComponent("subgroups.csv")).rows.filter { $0[0] == "view position" }
    XCTAssertTrue(own.allSatisfy { ["X", "Y"].contains($0[1]) }, "\(own)")
  }
}
