import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `cxr run` over several devices, through the binary on the CPU (`run.devices: 2` makes two
/// CPU "devices": processes that share the cores, as GPUs would be shared on a GPU machine):
/// up to one schema per device at once (`run.parallel: schemas`) gives exactly the models and
/// predictions of the one-device run; `ddp` trains each schema over both, as `cxr train
/// --nproc 2` does, and its folders record that two processes made them. Every process is
/// watched with a deadline.
final class MultiDeviceRunCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-lanes") }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }
  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }
  func start(_ args: [String]) throws -> WatchedProcess { try WatchedProcess(CXRBinary.url(for: Self.self), args) }

  var data: URL { dir.appendingPathComponent("data") }

  func config(_ out: String, run: String, accumulation: Int = 1, epochs: Int = 2, batchSize: Int = 3) throws -> String {
    if !FileManager.default.fileExists(atPath: data.path) {
      let s = try cxr(["synth", data.path, "--size", "tiny", "--seed", "3"])
      XCTAssertEqual(s.status, 0, s.err)
    }
    let labels = data.appendingPathComponent("labels").path
    let text = """
      name: mini
      out: \(dir.appendingPathComponent(out).path)
      seed: 1
      device: cpu
      threads: 1
      findings: [Pneumothorax, Fracture]
      train_data: {kind: mimic, root: \(data.path)/mimic}
      test_data: {kind: candid, root: \(data.path)/candid}
      schemas:
        - {name: truth, file: \(labels)/mimic/synthetic-truth.csv, test_file: \(labels)/candid/synthetic-truth.csv}
        - {name: rule, file: \(labels)/mimic/synthetic-rule.csv, test_file: \(labels)/candid/synthetic-rule.csv}
      split: {stratify: true, tune_fraction: 0.25}
      preprocess: {size: 32}
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
      loader: {batch_size: \(batchSize), workers: 1}
      train: {epochs: \(epochs), lr: 1.0e-3, accumulation: \(accumulation), progress_interval: 0, checkpoint_every: 1, keep_last: 2, augment: {mix: 0.5, affine: 0.5}}
      evaluate: {bootstrap: 20}
      run: \(run)
      """
    let url = dir.appendingPathComponent("\(out).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  func folder(_ out: String, _ schema: String) -> URL { dir.appendingPathComponent("\(out)/mini/\(schema)") }

  func lastWeights(_ out: String, _ schema: String) throws -> [Data] {
    let c = folder(out, schema).appendingPathComponent("checkpoints")
    let last = try FileManager.default.contentsOfDirectory(atPath: c.path).filter { $0.hasPrefix("step-") }.sorted().last!
    return try ["model.safetensors", "ema.safetensors"].map { try Data(contentsOf: c.appendingPathComponent("\(last)/\($0)")) }
  }

  /// The probabilities (the `# key: value` header names the folder the weights came from).
  func predictions(_ out: String, _ schema: String) throws -> [String] {
    try String(contentsOf: folder(out, schema).appendingPathComponent("predictions.csv"), encoding: .utf8)
      .split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
  }

  func testSchemasOnTwoDevicesGiveTheOneDeviceRunAndAStopResumes() throws {
    let one = try cxr(["run", try config("one", run: "{devices: 1}", epochs: 8)])
    XCTAssertEqual(one.status, 0, one.err)
    XCTAssertFalse(one.out.contains("(lane "), one.out)

    // Stopped while both trainings run (each on its own lane), then run again to the end.
    let cfg = try config("two", run: "{devices: 2, parallel: schemas}", epochs: 8)
    let p = try start(["run", cfg])
    XCTAssertTrue(p.waitForStdout(timeout: 120) { $0.contains("[train:truth] running (lane") && $0.contains("[train:rule] running (lane") }, p.stdout + p.stderr)
    XCTAssertTrue(p.stdout.contains("[run] 2 CPU process(es) sharing the cores: up to 2 schemas at once, one per device"), p.stdout)
    // Both have a checkpoint (every epoch) and are still training.
    XCTAssertTrue(p.waitForStdout(timeout: 120) { $0.contains("[train:truth] epoch 1:") && $0.contains("[train:rule] epoch 1:") }, p.stdout)
    p.signal(SIGTERM)
    XCTAssertEqual(p.wait(timeout: 120), 143, p.stdout + p.stderr)
    XCTAssertTrue(p.stderr.contains("run the same command again to continue"), p.stderr)
    let stopped = try String(contentsOf: dir.appendingPathComponent("two/mini/report.md"), encoding: .utf8)
    XCTAssertTrue(stopped.contains("interrupted"), stopped)

    let again = try cxr(["run", cfg])
    XCTAssertEqual(again.status, 0, again.out + again.err)
    for schema in ["truth", "rule"] {
      XCTAssertEqual(try lastWeights("two", schema), try lastWeights("one", schema), "\(schema): the weights of the one-device run")
      XCTAssertEqual(try predictions("two", schema), try predictions("one", schema), "\(schema): the predictions of the one-device run")
    }
    XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("two/mini/evaluation/metrics.csv"), encoding: .utf8),
                   try String(contentsOf: dir.appendingPathComponent("one/mini/evaluation/metrics.csv"), encoding: .utf8))
    // Finished work is used as it is.
    let third = try cxr(["run", cfg])
    XCTAssertEqual(third.status, 0, third.err)
    // train, predict and explain of both schemas, and the evaluation.
    XCTAssertEqual(third.out.components(separatedBy: "up to date, skipped").count - 1, 7, third.out)
  }

  /// Two processes with accumulation 1 train what one process trains with accumulation 2 when
  /// an epoch's batches come in whole rounds of two: data-parallel training drops a last batch
  /// that has no partner on the other rank (as timm's loaders drop the last short batch), while
  /// one process steps on a last, partial accumulation group (as timm's train_one_epoch does).
  /// Batches of 5 give whole rounds for both splits of the tiny study (10 and 8 training images;
  /// the rule split's second batch has 3, so ranks with unequal batches are covered too).
  func testDDPOverTwoDevicesTrainsTheGlobalBatchAndRecordsIt() throws {
    let batch = 5
    let ddp = try cxr(["run", try config("ddp", run: "{devices: 2, parallel: ddp}", batchSize: batch)])
    XCTAssertEqual(ddp.status, 0, ddp.out + ddp.err)
    XCTAssertTrue(ddp.out.contains("[run] 2 CPU process(es) sharing the cores: each schema data-parallel over all of them"), ddp.out)
    let single = try cxr(["run", try config("single", run: "{devices: 1}", accumulation: 2, batchSize: batch)])
    XCTAssertEqual(single.status, 0, single.err)
    for schema in ["truth", "rule"] {
      // The fixture's premise, so that a change of the synthetic study says what broke.
      let line = single.out.components(separatedBy: "\n").first { $0.contains("[split] \(schema): ") } ?? ""
      let images = Int(line.components(separatedBy: "[split] \(schema): ").last?.components(separatedBy: " ").first ?? "") ?? -1
      XCTAssertGreaterThan(images, 0, "the split's line in: \(single.out)")
      XCTAssertEqual((images + batch - 1) / batch % 2, 0, "fixture: \(schema)'s \(images) training images in batches of \(batch) are not whole rounds of two; pick another batch size")
      XCTAssertEqual(try lastWeights("ddp", schema), try lastWeights("single", schema), schema)
      let inputs = try String(contentsOf: folder("ddp", schema).appendingPathComponent("inputs.json"), encoding: .utf8)
      XCTAssertTrue(inputs.contains(#""processes" : "2""#), inputs)
    }
    // The same config on one device is not the training that made those folders.
    let oneDevice = try cxr(["run", try config("ddp", run: "{devices: 1}", batchSize: batch)])
    XCTAssertEqual(oneDevice.status, 1, oneDevice.out)
    XCTAssertTrue(oneDevice.err.contains("was trained with other settings: processes: 2 -> 1"), oneDevice.err)
  }

  func testANegativeDeviceCountIsAnErrorNamingTheKey() throws {
    let cfg = try config("neg", run: "{devices: -1}")
    let r = try cxr(["run", cfg])
    XCTAssertEqual(r.status, 1, r.out)
    XCTAssertTrue(r.err.contains("\(cfg):18: run.devices must be 0 (every device) or a count, not -1"), r.err)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("neg").path), "nothing written")
  }
}
