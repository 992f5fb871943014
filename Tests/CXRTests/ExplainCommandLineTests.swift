import Foundation
import TestSupport
import XCTest

/// Grad-CAM through the binary: `cxr run` with `evaluate.saliency.top` writes each schema's
/// overlays and embeds them in evaluation/report.html; `cxr explain` on one test image writes
/// the overlay, the map and the JSON record with the same weights and preprocessing as
/// `cxr predict`, and refuses bad input and existing outputs with one clear message.
final class ExplainCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-explain") }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }
  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self, timeout: 300) }

  func testRunEmbedsOverlaysAndExplainWritesFilesLikePredict() throws {
    let data = dir.appendingPathComponent("data")
    let s = try cxr(["synth", data.path, "--size", "tiny", "--seed", "3"])
    XCTAssertEqual(s.status, 0, s.err)
    let config = dir.appendingPathComponent("mini.yaml")
    try """
      name: mini
      out: \(dir.appendingPathComponent("runs").path)
      seed: 1
      device: cpu
      threads: 1
      findings: [Pneumothorax, Fracture]
      train_data: {kind: mimic, root: \(data.path)/mimic}
      test_data: {kind: candid, root: \(data.path)/candid}
      schemas:
        - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
      split: {stratify: true}
      preprocess: {size: 64}
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
      loader: {batch_size: 8, workers: 1}
      train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}
      evaluate: {bootstrap: 20, saliency: {top: 1}}
      """.write(to: config, atomically: true, encoding: .utf8)
    let run = try cxr(["run", config.path])
    XCTAssertEqual(run.status, 0, run.err)
    XCTAssertTrue(run.out.contains("explain:truth"), run.out)

    // The stage's manifest: one image of each kind per finding the masks label, PNG files beside it.
    let folder = dir.appendingPathComponent("runs/mini/truth")
    let saliency = folder.appendingPathComponent("saliency")
    let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: saliency.appendingPathComponent("manifest.json"))) as? [String: Any])
    XCTAssertEqual(manifest["layer"] as? String, "stages.3")
    XCTAssertEqual(manifest["reference"] as? String, "masks")
    let figures = try XCTUnwrap(manifest["figures"] as? [[String: Any]])
    XCTAssertFalse(figures.isEmpty)
    let kinds = Set(figures.compactMap { ($0["pick"] as? [String: Any])?["kind"] as? String })
    XCTAssertTrue(kinds.isSubset(of: ["tp", "fp", "fn"]) && kinds.contains("tp") && kinds.contains("fp"), "\(kinds)")
    for f in figures {
      let png = try Data(contentsOf: saliency.appendingPathComponent(try XCTUnwrap(f["overlay"] as? String)))
      XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }
    // The report embeds every overlay as a data: URI, captioned with model, finding, id, p, reference.
    let html = try String(contentsOf: dir.appendingPathComponent("runs/mini/evaluation/report.html"), encoding: .utf8)
    XCTAssertTrue(html.contains("<h2>Saliency (Grad-CAM)</h2>"))
    XCTAssertEqual(html.components(separatedBy: "src=\"data:image/png;base64,").count - 1, figures.count)
    let first = try XCTUnwrap(figures.first?["pick"] as? [String: Any])
    XCTAssertTrue(html.contains("truth · \(figures[0]["finding"] as! String) · \(first["id"] as! String) · p = "), "caption")
    XCTAssertFalse(html.contains("src=\"file:") || html.contains("src=\"saliency/"), "report.html must be self-contained")

    // cxr explain on one test image: the same probability as cxr run's predictions (same weights, preprocessing).
    let predictions = try String(contentsOf: folder.appendingPathComponent("predictions.csv"), encoding: .utf8)
    let header = predictions.split(separator: "\n").filter { $0.hasPrefix("# ") }
    let sha = try XCTUnwrap(header.first { $0.hasPrefix("# weights_sha256: ") }).dropFirst("# weights_sha256: ".count)
    let weightsPath = try XCTUnwrap(header.first { $0.hasPrefix("# weights: ") }).dropFirst("# weights: ".count)
    let row = try XCTUnwrap(predictions.split(separator: "\n").first { !$0.hasPrefix("#") && !$0.hasPrefix("id,") }).split(separator: ",")
    let image = String(row[1]), stem = URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent
    let out = dir.appendingPathComponent("explained")
    let e = try cxr(["explain", "--checkpoint", String(weightsPath), "--image", image, "--out", out.path])
    XCTAssertEqual(e.status, 0, e.err)
    for (k, finding) in ["Pneumothorax", "Fracture"].enumerated() {
      for suffix in [".overlay.png", ".cam.png", ".json"] {
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("\(stem).\(finding)\(suffix)").path), suffix)
      }
      let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("\(stem).\(finding).json"))) as? [String: Any])
      XCTAssertEqual(record["finding"] as? String, finding)
      XCTAssertEqual(record["layer"] as? String, "stages.3")
      XCTAssertEqual(record["weights"] as? String, String(weightsPath))
      XCTAssertEqual(record["weights_sha256"] as? String, String(sha))
      XCTAssertEqual(record["image"] as? String, image)
      XCTAssertEqual(record["input_size"] as? Int, 64)
      XCTAssertEqual([record["cam_height"] as? Int, record["cam_width"] as? Int], [2, 2])
      XCTAssertEqual((record["cam"] as? [Double])?.count, 4)
      if let peak = record["peak"] as? [Int] {
        XCTAssertEqual(peak.count, 2)
        XCTAssertTrue(peak.allSatisfy { (0..<64).contains($0) }, "\(peak)")
      }
      let p = try XCTUnwrap(record["probability"] as? Double)
      XCTAssertEqual(p, try XCTUnwrap(Double(row[2 + k])), accuracy: 2e-6, "explain and predict disagree for \(finding)")
    }
    XCTAssertTrue(e.out.contains("Pneumothorax: p = "), e.out)

    // Existing outputs are never overwritten; bad input is one clear message.
    let again = try cxr(["explain", "--checkpoint", String(weightsPath), "--image", image, "--out", out.path, "--finding", "Fracture"])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.err.contains("\(out.path)/\(stem).Fracture.overlay.png already exists; cxr explain never overwrites its outputs: choose another --out or move the old files away (nothing was written)"), again.err)
    let missing = try cxr(["explain", "--checkpoint", String(weightsPath), "--image", dir.appendingPathComponent("nope.png").path, "--out", out.path])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.err.contains("\(dir.appendingPathComponent("nope.png").path) does not exist; give a JPEG, PNG or DICOM file with --image"), missing.err)
    let unknown = try cxr(["explain", "--checkpoint", String(weightsPath), "--image", image, "--out", dir.appendingPathComponent("other").path, "--finding", "Effusion"])
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.err.contains("unknown finding 'Effusion': \(URL(fileURLWithPath: String(weightsPath)).lastPathComponent) predicts Pneumothorax, Fracture; give one of them with --finding"), unknown.err)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("other").path), "nothing written on an error")
    let file = dir.appendingPathComponent("a-file")
    try Data("mine".utf8).write(to: file)
    let onFile = try cxr(["explain", "--checkpoint", String(weightsPath), "--image", image, "--out", file.path])
    XCTAssertNotEqual(onFile.status, 0)
    XCTAssertTrue(onFile.err.contains("\(file.path) is a file; give a folder for the Grad-CAM files (nothing was written)"), onFile.err)
    XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "mine")
  }
}
