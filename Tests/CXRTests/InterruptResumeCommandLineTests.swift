import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Real signals to the real binary: `cxr train` and `cxr run` stopped by SIGTERM, SIGINT and
/// kill -9 at many points, then continued, end with the weights of an uninterrupted run, bit
/// for bit (CPU, one thread), and never report an interrupted stage as done.
final class InterruptResumeCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-interrupt") }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }

  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }
  func start(_ args: [String]) throws -> WatchedProcess { try WatchedProcess(CXRBinary.url(for: Self.self), args) }

  /// A tiny study; `epochs` long enough that a signal sent after the first steps lands mid-run.
  /// Drop path and head dropout on, so the model's own generator must be restored too.
  func config(out: String, epochs: Int = 8, schemas: [String] = ["truth"]) throws -> URL {
    let data = dir.appendingPathComponent("data")
    if !FileManager.default.fileExists(atPath: data.path) {
      let s = try cxr(["synth", data.path, "--size", "tiny", "--seed", "3"])
      XCTAssertEqual(s.status, 0, s.err)
    }
    let items = schemas.map { "  - {name: \($0), file: \(data.path)/labels/mimic/synthetic-\($0).csv, test_file: \(data.path)/labels/candid/synthetic-\($0).csv}" }
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
      \(items.joined(separator: "\n"))
      preprocess: {size: 32}
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0, drop_path_rate: 0.2, head_dropout: 0.2}
      loader: {batch_size: 4, workers: 1}
      train: {epochs: \(epochs), lr: 1.0e-3, checkpoint_every: 1, keep_last: 2, progress_interval: 0, augment: {mix: 0.5, affine: 0.5}}
      evaluate: {bootstrap: 20}
      """
    let url = dir.appendingPathComponent("\(out).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  func steps(_ stderr: String) -> Int {
    stderr.split(separator: "\n").compactMap { line -> Int? in
      guard let r = line.range(of: "  step ") else { return nil }
      return Int(line[r.upperBound...].prefix { $0.isNumber })
    }.max() ?? 0
  }

  func finalWeights(_ run: String) throws -> Data {
    let ckpts = dir.appendingPathComponent("\(run)/mini/truth/checkpoints")
    let last = try FileManager.default.contentsOfDirectory(atPath: ckpts.path).filter { $0.hasPrefix("step-") }.sorted().last!
    return try Data(contentsOf: ckpts.appendingPathComponent(last).appendingPathComponent("model.safetensors"))
  }

  func trainLosses(_ run: String) throws -> [String] {
    try String(contentsOf: dir.appendingPathComponent("\(run)/mini/truth/metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").filter { $0.contains("\"type\":\"epoch\"") }
      .map { line in String(line[line.range(of: "\"train_loss\":")!.upperBound...].prefix { $0 != "," }) }
  }

  func testSIGTERMAndSIGINTDuringTrainExitNonZeroAndResumeBitIdentically() throws {
    let straight = try cxr(["train", try config(out: "straight").path, "--schema", "truth"])
    XCTAssertEqual(straight.status, 0, straight.err)
    let cfg = try config(out: "stopped").path
    let folder = dir.appendingPathComponent("stopped/mini/truth")

    for (sig, code, resume) in [(SIGTERM, Int32(143), false), (SIGINT, Int32(130), true)] {
      let p = try start(["train", cfg, "--schema", "truth"] + (resume ? ["--resume"] : []))
      let before = steps(p.stderr)
      XCTAssertTrue(p.waitForStderr(timeout: 120) { self.steps($0) >= before + 3 }, p.stderr)
      p.signal(sig)
      XCTAssertEqual(p.wait(timeout: 120), code, p.stderr)
      // Mid-epoch ("stopped by SIGTERM: checkpoint written to ...") or, when the signal lands in
      // the tuning evaluation, after the epoch ("stopped by SIGTERM after epoch 1: ...").
      XCTAssertTrue(p.stderr.contains("interrupted: stopped by \(sig == SIGTERM ? "SIGTERM" : "SIGINT")"), p.stderr)
      XCTAssertTrue(p.stderr.contains("checkpoint written to \(folder.path)/checkpoints/step-"), p.stderr)
      XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("training.json").path), "not marked finished")
    }
    // Without --resume the folder is refused, and its config.yaml is not rewritten.
    let config = try Data(contentsOf: folder.appendingPathComponent("config.yaml"))
    let refused = try cxr(["train", cfg, "--schema", "truth", "--set", "train.lr=0.002"])
    XCTAssertEqual(refused.status, 1)
    XCTAssertTrue(refused.err.contains("was trained with other settings: train.lr: 0.001 -> 0.002"), refused.err)
    XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("config.yaml")), config)
    // --resume with changed settings is refused too, unless --allow-changes (not used here).
    let changed = try cxr(["train", cfg, "--schema", "truth", "--resume", "--set", "train.lr=0.002"])
    XCTAssertEqual(changed.status, 1)
    XCTAssertTrue(changed.err.contains("train.lr: 0.001 -> 0.002"), changed.err)

    let done = try cxr(["train", cfg, "--schema", "truth", "--resume"])
    XCTAssertEqual(done.status, 0, done.err)
    XCTAssertEqual(try finalWeights("stopped"), try finalWeights("straight"), "bit-identical to the uninterrupted run")
    XCTAssertEqual(try trainLosses("stopped"), try trainLosses("straight"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("training.json").path))
    // Finished: a further --resume has nothing to do; without it the folder is refused.
    let again = try cxr(["train", cfg, "--schema", "truth", "--resume"])
    XCTAssertEqual(again.status, 0, again.err)
    XCTAssertTrue(again.out.contains("already trained"), again.out)
    // cxr run uses the folder cxr train made as it is: no retraining, the weights untouched.
    let weights = try finalWeights("stopped")
    let run = try cxr(["run", cfg])
    XCTAssertEqual(run.status, 0, run.err)
    XCTAssertTrue(run.out.contains("[train] truth: already trained"), run.out)
    XCTAssertEqual(try finalWeights("stopped"), weights)
  }

  /// stdout is flushed per line: with stdout and stderr on one pipe (a log file, `2>&1 | tee`),
  /// the lines keep the order they were written in.
  func testStdoutAndStderrInterleaveInOrder() throws {
    let cfg = try config(out: "order", epochs: 1).path
    let p = Process()
    p.executableURL = try CXRBinary.url(for: Self.self)
    p.arguments = ["train", cfg, "--schema", "truth"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0, text)
    let lines = text.split(separator: "\n").map(String.init)
    let split = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("[split] truth:") }, text)       // stdout
    let firstStep = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("epoch 1/1  batch 1/") }, text) // stderr
    let done = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("[train] truth: finished") }, text)  // stdout
    XCTAssertLessThan(split, firstStep, text)
    XCTAssertLessThan(firstStep, done, text)
  }

  /// --resume --allow-changes continues with the new settings and records each change.
  func testAllowChangesRecordsTheChange() throws {
    let cfg = try config(out: "changes", epochs: 2).path
    var o = try cxr(["train", cfg, "--schema", "truth", "--set", "train.max_steps=3"])
    XCTAssertEqual(o.status, 0, o.err)
    o = try cxr(["train", cfg, "--schema", "truth", "--resume", "--allow-changes", "--set", "train.lr=0.002"])
    XCTAssertEqual(o.status, 0, o.err)
    let lines = try String(contentsOf: dir.appendingPathComponent("changes/mini/truth/changes.jsonl"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 1)
    XCTAssertTrue(lines[0].hasPrefix("{\"key\":\"train.lr\",\"new\":\"0.002\",\"old\":\"0.001\",\"step\":3,"), String(lines[0]))
  }

  func testSIGTERMDuringRunStopsTheRunMarksNothingDoneAndARerunFinishes() throws {
    let straight = try cxr(["run", try config(out: "straight", epochs: 6).path])
    XCTAssertEqual(straight.status, 0, straight.err)
    let cfg = try config(out: "stopped", epochs: 6).path
    let p = try start(["run", cfg])
    XCTAssertTrue(p.waitForStderr(timeout: 120) { self.steps($0) >= 3 }, p.stderr)
    p.signal(SIGTERM)
    XCTAssertEqual(p.wait(timeout: 120), 143, p.stderr)
    let root = dir.appendingPathComponent("stopped/mini")
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("truth/predictions.csv").path), "no predict after the stop")
    let ledger = (try? String(contentsOf: root.appendingPathComponent("stages.json"), encoding: .utf8)) ?? ""
    XCTAssertFalse(ledger.contains("train:truth"), ledger)
    let report = try String(contentsOf: root.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("| train:truth | interrupted (resumable: run the same command again): stopped by SIGTERM"), report)
    XCTAssertTrue(report.contains("| predict:truth | interrupted (resumable: run the same command again): not started"), report)

    let again = try cxr(["run", cfg])
    XCTAssertEqual(again.status, 0, again.err)
    XCTAssertTrue(again.out.contains("[train:truth] running"), again.out)
    XCTAssertEqual(try finalWeights("stopped"), try finalWeights("straight"))
    // The same weights predict the same probabilities (the header names another run's folder).
    func rows(_ run: String) throws -> String {
      try String(contentsOf: dir.appendingPathComponent("\(run)/mini/truth/predictions.csv"), encoding: .utf8)
        .split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
    }
    XCTAssertEqual(try rows("stopped"), try rows("straight"))
    let third = try cxr(["run", cfg])
    XCTAssertEqual(third.status, 0, third.err)
    XCTAssertTrue(third.out.contains("[train:truth] up to date, skipped"), third.out)
  }

  /// kill -9 at seeded random moments (during steps, checkpoint writes and pruning alike), in a
  /// bounded loop: every time a resume is possible, from a complete folder, losing at most one
  /// step (checkpoint_every 1), and the end is bit-identical to an uninterrupted run.
  func testKill9AtRandomPointsAlwaysResumesBitIdentically() throws {
    let straight = try cxr(["train", try config(out: "straight").path, "--schema", "truth"])
    XCTAssertEqual(straight.status, 0, straight.err)
    let cfg = try config(out: "killed").path
    let ckpts = dir.appendingPathComponent("killed/mini/truth/checkpoints")
    var state: UInt64 = 0x1234_5678
    func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
    var kills = 0
    var resume = false
    for round in 0..<6 {
      let p = try start(["train", cfg, "--schema", "truth"] + (resume ? ["--resume"] : []))
      let before = steps(p.stderr)
      // Wait for a first step of this process, then a random 0-120 ms more.
      guard p.waitForStderr(timeout: 120, { self.steps($0) > before || $0.contains("finished") || $0.contains("already trained") }) else {
        return XCTFail("round \(round): no progress: \(p.stderr)")
      }
      usleep(UInt32(next() % 120_000))
      if !p.process.isRunning { break }
      p.signal(SIGKILL)
      _ = p.wait(timeout: 60)
      kills += 1
      let printed = steps(p.stderr)
      // What is listed is complete, and resume is possible (a kill before the first checkpoint
      // was durable leaves none: the next round starts again, without --resume).
      let listed = ((try? FileManager.default.contentsOfDirectory(atPath: ckpts.path)) ?? []).filter { $0.hasPrefix("step-") }
      for n in listed {
        for f in ["model.safetensors", "ema.safetensors", "state.safetensors"] {
          XCTAssertTrue(FileManager.default.fileExists(atPath: ckpts.appendingPathComponent(n).appendingPathComponent(f).path), "\(n)/\(f)")
        }
      }
      let newest = listed.compactMap { Int($0.dropFirst(5).prefix(8)) }.max() ?? 0
      XCTAssertGreaterThanOrEqual(newest, printed - 1, "at most checkpoint_every (1) step lost")
      resume = !listed.isEmpty
    }
    XCTAssertGreaterThan(kills, 2, "the loop killed the run mid-way several times")
    let done = try cxr(["train", cfg, "--schema", "truth", "--resume"])
    XCTAssertEqual(done.status, 0, done.err)
    XCTAssertEqual(try finalWeights("killed"), try finalWeights("straight"))
    XCTAssertEqual(try trainLosses("killed"), try trainLosses("straight"))
  }
}
