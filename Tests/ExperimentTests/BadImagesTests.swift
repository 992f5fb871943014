import Common
import Foundation
import TestSupport
import XCTest
@testable import Experiment
import Synth

/// A training that loses more than `loader.max_bad_fraction` of its images stops with an error
/// that says why; below the limit the images are skipped and listed with their split.
final class BadImagesTests: XCTestCase {
  func testTooManyUnreadableImagesStopTheTrainingWithAReason() throws {
    let dir = try TestEnv.scratch("cxr-bad")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = dir.appendingPathComponent("data")
    _ = try SyntheticStudy.generate(to: data, seed: 3, size: .tiny)
    let jpegs = FileManager.default.enumerator(atPath: data.appendingPathComponent("mimic").path)!
      .compactMap { $0 as? String }.filter { $0.hasSuffix(".jpg") }.sorted()
    // A label row for a study no image has: counted, not silently dropped.
    let labels = data.appendingPathComponent("labels/mimic/synthetic-truth.csv")
    var text = try String(contentsOf: labels, encoding: .utf8)
    if !text.hasSuffix("\n") { text += "\n" }
    try (text + "99999999,88888888" + String(repeating: ",", count: 14) + "\n").write(to: labels, atomically: true, encoding: .utf8)
    for j in jpegs.prefix(jpegs.count / 4) {  // a quarter of the images, truncated
      let u = data.appendingPathComponent("mimic").appendingPathComponent(j)
      let d = try Data(contentsOf: u)
      try d.prefix(40).write(to: u)
    }
    func study(_ fraction: Double, out: String) throws -> Study {
      try Study(try Config.parse("""
        name: bad
        out: \(dir.appendingPathComponent(out).path)
        seed: 1
        device: cpu
        findings: [Pneumothorax, Fracture]
        train_data: {kind: mimic, root: \(data.path)/mimic}
        test_data: {kind: none}
        schemas:
          - {name: truth, file: \(labels.path)}
        preprocess: {size: 32}
        model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64]}
        loader: {batch_size: 8, workers: 1, max_bad_fraction: \(fraction)}
        train: {epochs: 1, augment: {mix: 0, affine: 0}}
        """, source: "bad.yaml"))
    }
    var log: [String] = []
    XCTAssertThrowsError(try SchemaTraining(study: try study(0.01, out: "strict"), schema: "truth").run(log: { log.append($0) })) { e in
      XCTAssertTrue("\(e)".contains("images of the train split cannot be read (more than loader.max_bad_fraction = 0.01); they are listed in bad_files.csv"), "\(e)")
    }
    XCTAssertTrue(log.contains("[labels] truth: 1 rows of the label file match no image of the training set and are not used"), "\(log)")
    let folder = dir.appendingPathComponent("strict/bad/truth")
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("training.json").path))
    let bad = try CSVTable.read(folder.appendingPathComponent("bad_files.csv"))
    XCTAssertEqual(bad.header, ["path", "split", "reason"])
    XCTAssertFalse(bad.rows.isEmpty)
    // A lenient limit: the run finishes, and bad_files.csv names the train and tune images.
    let outcome = try SchemaTraining(study: try study(0.5, out: "lenient"), schema: "truth").run(log: { _ in })
    XCTAssertEqual(outcome.reason, .finished)
    // Every truncated image the split uses is listed, with the split it belongs to (laterals are
    // not loaded at all).
    let lenient = try CSVTable.read(dir.appendingPathComponent("lenient/bad/truth/bad_files.csv"))
    let split = try CSVTable.read(dir.appendingPathComponent("lenient/bad/truth/split.csv"))
    let splitOf = Dictionary(uniqueKeysWithValues: split.rows.map { ($0[0], $0[3]) })
    let expected = jpegs.prefix(jpegs.count / 4).compactMap { j -> String? in
      let id = URL(fileURLWithPath: j).deletingPathExtension().lastPathComponent
      return splitOf[id].map { "\(data.appendingPathComponent("mimic").appendingPathComponent(j).path),\($0)" }
    }
    XCTAssertFalse(expected.isEmpty)
    XCTAssertEqual(lenient.rows.map { "\($0[0]),\($0[1])" }.sorted(), expected.sorted())
  }
}
