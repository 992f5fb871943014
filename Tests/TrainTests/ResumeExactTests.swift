import Bench
import Common
import Data
import Foundation
import Models
import TestSupport
import Torch
import XCTest
@testable import Train

/// Resume is exact however the run was stopped: with drop path and head dropout (the model's
/// own generator), at an epoch's end (the epoch's running loss), after a damaged newest
/// checkpoint, and with two checkpoints at the same step.
final class ResumeExactTests: XCTestCase {
  var dirs: [URL] = []
  override func tearDown() { for d in dirs { try? FileManager.default.removeItem(at: d) }; StopSignal.reset() }
  func scratch() throws -> URL { let d = try TestEnv.scratch("resume"); dirs.append(d); return d }
  func quiet() -> ProgressReporter { ProgressReporter(live: false, interval: 1e9, write: { _ in }) }

  /// A ConvNeXt small enough for a test, with drop path 0.2 and head dropout 0.3 drawing from
  /// its own seeded generator (as `cxr train` builds it).
  func model() throws -> ConvNeXt {
    var c = try ConvNeXtConfig.named("convnext_atto", numClasses: 2, inChannels: 1, dropPathRate: 0.2, dropRate: 0.3)
    c.depths = [1, 1, 2, 1]; c.dims = [8, 16, 24, 32]; c.layerScaleInit = 1; c.arch = "convnext_custom"
    let g = try Generator(seed: 5)
    let m = try ConvNeXt(c, generator: g)
    m.generator = g
    return m
  }

  func options() -> TrainOptions {
    var o = TrainOptions()
    o.epochs = 3; o.lr = 2e-3; o.weightDecay = 1e-2; o.emaDecay = 0.9; o.seed = 7
    var aug = AugmentOptions(); aug.mix = 0.5; aug.noise = 0.5; aug.affine = 0.5
    o.augment = aug
    return o
  }

  func splits() throws -> (SyntheticSplit, SyntheticSplit) {
    (try SyntheticSplit(count: 48, size: 32, batchSize: 8, seed: 1), try SyntheticSplit(count: 32, size: 32, batchSize: 16, shuffle: false, seed: 2))
  }

  func epochRecords(_ dir: URL) throws -> [[String: Any]] {
    try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.filter { $0["type"] as? String == "epoch" }
  }

  func assertSame(_ a: Trainer, _ b: Trainer, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.position, b.position, file: file, line: line)
    for ((n, x), (_, y)) in zip(try a.model.stateDict(), try b.model.stateDict()) { XCTAssertTrue(try x.equal(y), "weights \(n)", file: file, line: line) }
    for ((n, x), (_, y)) in zip(a.ema.stateDict(), b.ema.stateDict()) { XCTAssertTrue(try x.equal(y), "ema \(n)", file: file, line: line) }
    for ((n, x), (_, y)) in zip(a.lion.stateDict(), b.lion.stateDict()) { XCTAssertTrue(try x.equal(y), "lion \(n)", file: file, line: line) }
  }

  func testDropPathDropoutAndEpochEndStopsResumeBitIdentically() throws {
    let (train, tune) = try splits()
    let straightDir = try scratch()
    let straight = try Trainer(model: try model(), options: options(), runDirectory: straightDir, progress: quiet())
    _ = try straight.fit(train: train, tune: tune)
    let reference = try epochRecords(straightDir)
    XCTAssertEqual(reference.count, 3)

    // Stopped mid-epoch 2 (step 8), then exactly at the end of epoch 2 (step 12, the last batch:
    // the epoch's loss is then all from before the stop), then run out.
    let dir = try scratch()
    for (stop, resume) in [(8, false), (12, true), (nil, true)] as [(Int?, Bool)] {
      var o = options()
      o.maxSteps = stop
      // Another state of the default generator before each start: nothing may depend on it.
      try Generator.defaultGenerator().setState(Generator(seed: UInt64(stop ?? 3)).state())
      let t = try Trainer(model: try model(), options: o, runDirectory: dir, progress: quiet())
      let out = try t.fit(train: train, tune: tune, resume: resume)
      if let stop { XCTAssertEqual(out.position.step, stop) } else { try assertSame(straight, t) }
    }
    let resumed = try epochRecords(dir)
    XCTAssertEqual(resumed.count, 3)
    for (a, b) in zip(reference, resumed) {
      XCTAssertEqual(a["train_loss"] as? Double, b["train_loss"] as? Double, "epoch \(a["epoch"]!)")
      XCTAssertEqual(a["train_images"] as? Int, b["train_images"] as? Int)
      XCTAssertEqual((a["ema"] as? [String: Any])?["loss"] as? Double, (b["ema"] as? [String: Any])?["loss"] as? Double)
    }
    XCTAssertNotNil(reference[1]["train_loss"] as? Double, "a number, not null, at an epoch-end resume")
  }

  /// A model whose generator is not in the checkpoint cannot continue exactly: refused.
  func testCheckpointWithoutTheModelGeneratorIsRefused() throws {
    let (train, tune) = try splits()
    let dir = try scratch()
    var o = options(); o.maxSteps = 3
    _ = try Trainer(model: try SmallConvNet(classes: 2, seed: 3), options: o, runDirectory: dir, progress: quiet()).fit(train: train, tune: tune)
    let t = try Trainer(model: try model(), options: options(), runDirectory: dir, progress: quiet())
    XCTAssertThrowsError(try t.fit(train: train, tune: tune, resume: true)) {
      XCTAssertTrue("\($0)".contains("lacks the generator state 'rng/model'"), "\($0)")
    }
  }

  /// A mid-epoch checkpoint on an epoch's last step and the epoch-end one share the step: the
  /// second gets its own folder; the first is never rewritten in place.
  func testTwoCheckpointsAtOneStepGetTwoFoldersAndResumeTakesTheNewest() throws {
    let (train, tune) = try splits()
    let dir = try scratch()
    var o = options(); o.epochs = 1; o.checkpointEverySteps = 6; o.keepLast = 5
    let t = try Trainer(model: try SmallConvNet(classes: 2, seed: 3), options: o, runDirectory: dir, progress: quiet())
    _ = try t.fit(train: train, tune: tune)
    let store = CheckpointStore(runDirectory: dir, keepLast: 5)
    XCTAssertEqual(try store.list().map(\.url.lastPathComponent), ["step-00000006", "step-00000006-2"])
    XCTAssertEqual(try CheckpointStore.read(store.list()[0].url).position.epoch, 0, "mid-epoch: still in epoch 0")
    XCTAssertEqual(try CheckpointStore.read(store.list()[1].url).position.epoch, 1, "epoch end: epoch 1 next")
    XCTAssertEqual(try store.latest()?.lastPathComponent, "step-00000006-2")
  }

  /// The newest checkpoint damaged (as by a disk error): resume says so and uses the one before;
  /// the result still equals an uninterrupted run.
  func testDamagedNewestCheckpointFallsBackToThePreviousOne() throws {
    let (train, tune) = try splits()
    var o = options(); o.checkpointEverySteps = 2; o.keepLast = 3
    let straight = try Trainer(model: try model(), options: o, runDirectory: try scratch(), progress: quiet())
    _ = try straight.fit(train: train, tune: tune)
    let dir = try scratch()
    var stop = o; stop.maxSteps = 10
    _ = try Trainer(model: try model(), options: stop, runDirectory: dir, progress: quiet()).fit(train: train, tune: tune)
    let store = CheckpointStore(runDirectory: dir, keepLast: 3)
    XCTAssertEqual(try store.list().map(\.step), [6, 8, 10])
    let newest = try store.latest()!.appendingPathComponent("ema.safetensors")
    let bytes = try Data(contentsOf: newest)
    try bytes.prefix(bytes.count / 2).write(to: newest)
    var messages: [String] = []
    let t = try Trainer(model: try model(), options: o, runDirectory: dir,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { messages.append($0) }))
    _ = try t.fit(train: train, tune: tune, resume: true)
    XCTAssertTrue(messages.contains { $0.contains("step-00000010/ema.safetensors") && $0.contains("trying the checkpoint before it") }, "\(messages)")
    XCTAssertTrue(messages.contains { $0.contains("resuming from \(dir.path)/checkpoints/step-00000008 ") }, "\(messages)")
    try assertSame(straight, t)
  }

  /// Every batch of the epoch unusable (here: every image unreadable): an error, not a
  /// "finished" run with a checkpoint of untrained weights.
  func testAnEpochWithoutAStepIsAnError() throws {
    let (train, tune) = try splits()
    train.unreadable = Set(train.ids)
    let dir = try scratch()
    let t = try Trainer(model: try SmallConvNet(classes: 2, seed: 3), options: options(), runDirectory: dir, progress: quiet())
    XCTAssertThrowsError(try t.fit(train: train, tune: tune)) {
      XCTAssertEqual("\($0)", "epoch 1 ended without a single optimizer step: no batch of the training split could be used (unreadable images are listed in bad_files.csv, non-finite losses above); nothing was trained")
    }
    XCTAssertEqual(try CheckpointStore(runDirectory: dir, keepLast: 2).list().count, 0, "no checkpoint of untrained weights")
  }

  /// `non_finite: skip` with a rate that makes the weights diverge: the run goes on and the
  /// log holds nulls, never a NaN that JSON cannot write.
  func testDivergedWeightsNeverReachTheJSONLog() throws {
    let (train, tune) = try splits()
    var o = options(); o.lr = 1e30; o.nonFinite = .skip; o.epochs = 2
    let dir = try scratch()
    let t = try Trainer(model: try SmallConvNet(classes: 2, seed: 3), options: o, runDirectory: dir, progress: quiet())
    XCTAssertThrowsError(try t.fit(train: train, tune: tune)) { e in
      // Once every batch's loss is non-finite, an epoch trains nothing: said plainly.
      XCTAssertTrue("\(e)".contains("without a single optimizer step"), "\(e)")
    }
    let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    XCTAssertFalse(text.contains("nan") || text.contains("NaN"), text)
    let first = try JSONSerialization.jsonObject(with: Data(text.split(separator: "\n")[0].utf8)) as! [String: Any]
    XCTAssertTrue((first["ema"] as! [String: Any])["loss"] is NSNull || (first["ema"] as! [String: Any])["loss"] is Double, "\(first)")
  }
}
