import Foundation
import TestSupport
import XCTest

/// The cxr side of the GPU benchmarks (`cxr bench predict|forward|loader`, run by
/// scripts/gpu-check.sh) through the built binary, on the CPU: the JSON line each prints, timm
/// parity of `bench forward` through gpu_forward.py's own prepare/compare, and errors that name
/// the path. Speed is never asserted.
final class BenchCommandLineTests: XCTestCase {
  var dirs: [URL] = []
  override func tearDown() {
    for d in dirs { try? FileManager.default.removeItem(at: d) }
    dirs = []
  }
  func scratch(_ name: String) throws -> URL { let d = try TestEnv.scratch(name); dirs.append(d); return d }

  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try CXRBinary.run(args, for: BenchCommandLineTests.self)
  }

  /// The JSON object of the one line a bench command prints.
  func record(_ r: (status: Int32, out: String, err: String), file: StaticString = #filePath,
              line: UInt = #line) throws -> [String: Any] {
    XCTAssertEqual(r.status, 0, r.err, file: file, line: line)
    let lines = r.out.split(separator: "\n")
    XCTAssertEqual(lines.count, 1, "expected one JSON line, got:\n\(r.out)", file: file, line: line)
    let obj = try JSONSerialization.jsonObject(with: Data((lines.last ?? "").utf8))
    return try XCTUnwrap(obj as? [String: Any], file: file, line: line)
  }

  /// Runs scripts/bench/gpu_forward.py with the reference Python; returns its JSON line and exit code.
  func gpuForward(_ args: [String]) throws -> (record: [String: Any], exit: Int) {
    try benchScript("gpu_forward.py", args)
  }

  /// Runs a scripts/bench/ script with the reference Python; returns its JSON line and exit code.
  func benchScript(_ name: String, _ args: [String]) throws -> (record: [String: Any], exit: Int) {
    let script = TestEnv.root.appendingPathComponent("scripts/bench/\(name)").path
    let out = try Python.run("""
      import runpy
      sys.argv = sys.argv[1:]
      code = 0
      try:
          runpy.run_path(sys.argv[0], run_name="__main__")
      except SystemExit as e:
          code = e.code if isinstance(e.code, int) else 1
      print(json.dumps({"exit": code}))
      """, args: [script] + args)
    let lines = out.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    XCTAssertEqual(lines.count, 2, "\(name) printed:\n\(out)")
    return (lines.first ?? [:], lines.last?["exit"] as? Int ?? -1)
  }

  /// timm makes the weights, the input and its logits; cxr runs the same weights on the same
  /// input; gpu_forward.py compare judges, as gpu-check.sh does on the GPU. On the CPU both
  /// sides run float32, so the logits must also agree far more closely than compare's bf16
  /// tolerance.
  func testForwardAgreesWithTimm() throws {
    let dir = try scratch("bench-forward")
    let prep = try gpuForward(["prepare", dir.path, "--arch", "convnext_atto", "--size", "64", "--batch", "3", "--device", "cpu"])
    XCTAssertEqual(prep.exit, 0, "\(prep.record)")
    let ours = dir.appendingPathComponent("cxr.safetensors")
    let weights = dir.appendingPathComponent("weights.safetensors").path
    let r = try record(try cxr(["bench", "forward", "--arch", "convnext_atto", "--weights", weights,
                                "--input", dir.appendingPathComponent("input.safetensors").path, "--output", ours.path,
                                "--device", "cpu"]))
    XCTAssertEqual(r["check"] as? String, "forward")
    XCTAssertEqual(r["input_shape"] as? [Int], [3, 1, 64, 64])
    XCTAssertEqual(r["bf16"] as? Bool, false)
    XCTAssertGreaterThan(r["images_per_s"] as? Double ?? 0, 0)

    let cmp = try gpuForward(["compare", dir.path, ours.path])
    XCTAssertEqual(cmp.exit, 0, "\(cmp.record)")
    XCTAssertEqual(cmp.record["ok"] as? Bool, true, "\(cmp.record)")
    let err = try XCTUnwrap(cmp.record["max_abs_err"] as? Double), scale = try XCTUnwrap(cmp.record["logit_scale"] as? Double)
    XCTAssertGreaterThan(scale, 0.05, "timm's logits are too small for the comparison to mean much")
    XCTAssertLessThanOrEqual(err, 1e-5 * max(1, scale), "float32 logits differ from timm's by \(err)")

    // A file without the "input" tensor: the error names the file and the tensor.
    let bad = try cxr(["bench", "forward", "--arch", "convnext_atto", "--weights", weights, "--input", weights,
                       "--output", ours.path, "--device", "cpu"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.err.contains("\(weights) has no tensor named 'input'"), bad.err)
  }

  func testPredictPrintsImagesPerSecond() throws {
    let r = try record(try cxr(["bench", "predict", "--arch", "convnext_atto", "--size", "64", "--batch", "3",
                                "--steps", "2", "--warmup", "1", "--device", "cpu"]))
    XCTAssertEqual(r["bench"] as? String, "predict")
    XCTAssertEqual(r["arch"] as? String, "convnext_atto")
    XCTAssertEqual(r["batch"] as? Int, 3)
    XCTAssertEqual(r["images"] as? Int, 6)
    XCTAssertEqual(r["bf16"] as? Bool, false)  // bf16 autocast and channels_last are for CUDA
    XCTAssertEqual(r["channels_last"] as? Bool, false)
    XCTAssertGreaterThan(r["images_per_s"] as? Double ?? 0, 0)
  }

  /// The JPEGs of a tiny synthetic study (folder, count).
  func tinyJPEGs(_ name: String) throws -> (URL, Int) {
    let study = try scratch(name)
    let synth = try cxr(["synth", study.path, "--size", "tiny"])
    XCTAssertEqual(synth.status, 0, synth.err)
    let mimic = study.appendingPathComponent("mimic")
    let jpegs = FileManager.default.enumerator(atPath: mimic.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".jpg") } ?? []
    return (mimic, jpegs.count)
  }

  /// Images of the batches a loader benchmark times: epochs of `files` images in batches of
  /// `batch` (full batches, then the rest), the first `untimed` batches left out, the next
  /// `batches` counted; and the epochs it takes.
  func timedImages(files: Int, batch: Int, untimed: Int, batches: Int) -> (images: Int, epochs: Int) {
    let perEpoch = Array(repeating: batch, count: files / batch) + (files % batch > 0 ? [files % batch] : [])
    let epochs = (untimed + batches + perEpoch.count - 1) / perEpoch.count
    let stream = Array(repeating: perEpoch, count: epochs).joined()
    return (stream.dropFirst(untimed).prefix(batches).reduce(0, +), epochs)
  }

  /// 5 images per batch: the epochs' short last batches are counted, epochs repeat until the
  /// batches asked for were timed, and the first batch of each worker is not (all cores here).
  func testLoaderCountsTheImagesOfTheTimedBatches() throws {
    let (mimic, files) = try tinyJPEGs("bench-loader")
    XCTAssertGreaterThan(files, 5)
    let batch = 5, batches = 2 * ((files + batch - 1) / batch)  // two epochs' worth
    let workers = ProcessInfo.processInfo.activeProcessorCount
    let r = try record(try cxr(["bench", "loader", mimic.path, "--size", "64", "--batch", "\(batch)",
                                "--batches", "\(batches)", "--workers", "0"]))
    let want = timedImages(files: files, batch: batch, untimed: workers, batches: batches)
    XCTAssertEqual(r["bench"] as? String, "loader")
    XCTAssertEqual(r["files"] as? Int, files)
    XCTAssertEqual(r["workers"] as? Int, workers)  // 0 = all cores
    XCTAssertEqual(r["untimed_batches"] as? Int, workers, "one untimed batch per worker")
    XCTAssertEqual(r["prefetch"] as? Int, 2, "batches ahead per worker, PyTorch's default prefetch_factor")
    XCTAssertEqual(r["images"] as? Int, want.images)
    XCTAssertEqual(r["epochs"] as? Int, want.epochs)
    XCTAssertEqual(r["unreadable"] as? Int, 0)
    XCTAssertGreaterThan(r["images_per_s"] as? Double ?? 0, 0)
  }

  /// gpu_loader.py, the PyTorch side that gpu-check.sh sets against `cxr bench loader`, leaves
  /// the same batches untimed and times the same ones, with the same workers and prefetch.
  func testTheTorchLoaderTimesTheSameBatchesAsCxr() throws {
    let (mimic, files) = try tinyJPEGs("bench-loader-torch")
    let batch = 5, batches = 3, workers = 2
    let args = [mimic.path, "--size", "64", "--batch", "\(batch)", "--batches", "\(batches)", "--workers", "\(workers)",
                "--prefetch", "1"]
    let ours = try record(try cxr(["bench", "loader"] + args))
    let torch = try benchScript("gpu_loader.py", args)
    XCTAssertEqual(torch.exit, 0, "\(torch.record)")
    let want = timedImages(files: files, batch: batch, untimed: workers, batches: batches)
    for r in [ours, torch.record] {
      XCTAssertEqual(r["untimed_batches"] as? Int, workers, "\(r)")
      XCTAssertEqual(r["workers"] as? Int, workers, "\(r)")
      XCTAssertEqual(r["prefetch"] as? Int, 1, "\(r)")
      XCTAssertEqual(r["files"] as? Int, files, "\(r)")
      XCTAssertEqual(r["images"] as? Int, want.images, "\(r)")
      XCTAssertEqual(r["epochs"] as? Int, want.epochs, "\(r)")
      XCTAssertGreaterThan(r["images_per_s"] as? Double ?? 0, 0, "\(r)")
    }
  }

  func testBadInputsNameThePath() throws {
    let dir = try scratch("bench-bad")
    let missing = dir.appendingPathComponent("no-such-folder").path
    let a = try cxr(["bench", "loader", missing, "--size", "64"])
    XCTAssertNotEqual(a.status, 0)
    XCTAssertTrue(a.err.contains("\(missing) does not exist"), a.err)

    try "not an image".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
    let b = try cxr(["bench", "loader", dir.path, "--size", "64"])
    XCTAssertNotEqual(b.status, 0)
    XCTAssertTrue(b.err.contains("\(dir.path) holds no .jpg or .jpeg files"), b.err)

    let weights = dir.appendingPathComponent("missing.safetensors").path
    let c = try cxr(["bench", "forward", "--arch", "convnext_atto", "--weights", weights,
                     "--input", dir.appendingPathComponent("input.safetensors").path,
                     "--output", dir.appendingPathComponent("out.safetensors").path, "--device", "cpu"])
    XCTAssertNotEqual(c.status, 0)
    XCTAssertTrue(c.err.contains("cannot open \(weights)"), c.err)
  }
}
