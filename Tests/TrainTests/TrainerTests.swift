import Bench
import Common
import Data
import Foundation
import TestSupport
import Torch
import XCTest
@testable import Train
#if canImport(Glibc)
import Glibc
#endif

/// Wraps a source to act at a given batch: raise a signal, poison a batch with NaN.
final class HookedSource: BatchSource {
  let inner: BatchSource
  var onBatch: (_ epoch: Int, _ index: Int, inout Batch) -> Void
  init(_ inner: BatchSource, onBatch: @escaping (Int, Int, inout Batch) -> Void) { self.inner = inner; self.onBatch = onBatch }
  var batchesPerEpoch: Int { inner.batchesPerEpoch }
  var findings: [String] { inner.findings }
  func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator {
    let it = try inner.makeIterator(epoch: epoch, startingAt: batch)
    var i = batch
    return FunctionBatchIterator { [self] in
      guard var b = try it.next() else { return nil }
      onBatch(epoch, i, &b)
      i += 1
      return b
    }
  }
}

final class TrainerTests: XCTestCase {
  var dirs: [URL] = []
  override func tearDown() { for d in dirs { try? FileManager.default.removeItem(at: d) }; StopSignal.reset() }
  func scratch() throws -> URL { let d = try TestEnv.scratch("train"); dirs.append(d); return d }

  func quietProgress() -> ProgressReporter { ProgressReporter(live: false, interval: 1e9, write: { _ in }) }

  func options(epochs: Int = 2, lr: Double = 3e-3) -> TrainOptions {
    var o = TrainOptions()
    o.epochs = epochs; o.lr = lr; o.weightDecay = 1e-2; o.emaDecay = 0.9
    o.seed = 42
    return o
  }

  func splits(train: Int = 192, tune: Int = 128, batch: Int = 16) throws -> (SyntheticSplit, SyntheticSplit) {
    (try SyntheticSplit(count: train, batchSize: batch, ignoreFraction: 0.1, seed: 1),
     try SyntheticSplit(count: tune, batchSize: 32, shuffle: false, seed: 2))
  }

  func testSmallNetLearnsASeparableTaskUnderAugmentation() throws {
    let (train, tune) = try splits(train: 512)
    let model = try SmallConvNet(classes: 2, seed: 3)
    var o = options(epochs: 3)
    o.emaDecay = 0.95
    let dir = try scratch()
    let t = try Trainer(model: model, options: o, runDirectory: dir, progress: quietProgress())
    let out = try t.fit(train: train, tune: tune)
    XCTAssertEqual(out.reason, .finished)
    XCTAssertEqual(out.position.step, 3 * 32)
    let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 3)
    let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
    for w in ["raw", "ema"] {
      let auroc = (last[w] as! [String: Any])["auroc"] as! [String: Double]
      for f in ["finding0", "finding1"] { XCTAssertGreaterThan(auroc[f]!, 0.9, "\(w) \(f)") }
    }
    // The best checkpoint carries the selected (EMA) weights under the model's names.
    let best = try SafeTensors.read(dir.appendingPathComponent("best.safetensors"))
    XCTAssertEqual(best.tensors.keys, model.namedParameters().map { $0.0 })
    XCTAssertEqual(best.metadata["weights"], "ema")
    XCTAssertEqual(best.metadata["selection"], "ema.auroc.mean")
    XCTAssertEqual(try CheckpointStore(runDirectory: dir, keepLast: 2).list().map(\.step), [64, 96])
  }

  /// N steps straight vs N/2, stop, fresh objects, resume, N/2 more: every tensor equal.
  func testResumedRunIsBitIdenticalToAnUninterruptedOne() throws {
    func run(_ dir: URL, maxSteps: Int?, resume: Bool) throws -> Trainer {
      let (train, tune) = try splits(train: 96, tune: 64)
      var o = options(epochs: 2)
      o.maxSteps = maxSteps
      var aug = AugmentOptions(); aug.mix = 0.5; aug.noise = 0.5; aug.affine = 0.5
      o.augment = aug
      // Dropout draws from the default generator, which the checkpoint must carry too.
      let t = try Trainer(model: try SmallConvNet(classes: 2, dropout: 0.3, seed: 3), options: o, runDirectory: dir, progress: quietProgress())
      if !resume { try Generator.defaultGenerator().setState(Generator(seed: 99).state()) }
      _ = try t.fit(train: train, tune: tune, resume: resume)
      return t
    }
    let straight = try run(try scratch(), maxSteps: nil, resume: false)
    let dir = try scratch()
    let first = try run(dir, maxSteps: 9, resume: false)   // stops mid-epoch 2 (6 batches per epoch)
    XCTAssertEqual(first.position.step, 9)
    // A different default-generator state before resuming: the checkpoint must restore it.
    try Generator.defaultGenerator().setState(Generator(seed: 12345).state())
    let resumed = try run(dir, maxSteps: nil, resume: true)
    XCTAssertEqual(resumed.position.step, straight.position.step)
    for ((n, a), (_, b)) in zip(try straight.model.stateDict(), try resumed.model.stateDict()) {
      XCTAssertTrue(try a.equal(b), "weights \(n)")
    }
    for ((n, a), (_, b)) in zip(straight.ema.stateDict(), resumed.ema.stateDict()) { XCTAssertTrue(try a.equal(b), "ema \(n)") }
    for ((n, a), (_, b)) in zip(straight.lion.stateDict(), resumed.lion.stateDict()) { XCTAssertTrue(try a.equal(b), "lion \(n)") }
    XCTAssertTrue(try straight.random.host.state().equal(resumed.random.host.state()))
    // metrics.jsonl of the resumed run has one record per epoch plus the stop, none duplicated.
    let types = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      .map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["type"] as! String }
    XCTAssertEqual(types, ["epoch", "stop", "epoch"])
  }

  /// A crash (here: the loader throws at epoch 2, batch 4) leaves only the periodic
  /// checkpoints; resuming from the newest one still ends bit-identical to a straight run.
  func testResumeAfterACrashFromAPeriodicCheckpointIsBitIdentical() throws {
    struct Crash: Error {}
    final class Crashing: BatchSource {
      let inner: SyntheticSplit
      init(_ inner: SyntheticSplit) { self.inner = inner }
      var batchesPerEpoch: Int { inner.batchesPerEpoch }
      var findings: [String] { inner.findings }
      func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator {
        let it = try inner.makeIterator(epoch: epoch, startingAt: batch)
        var i = batch
        return FunctionBatchIterator {
          if epoch == 1 && i == 4 { throw Crash() }
          i += 1
          return try it.next()
        }
      }
    }
    func trainer(_ dir: URL) throws -> Trainer {
      var o = options(epochs: 2); o.checkpointEverySteps = 4; o.keepLast = 5
      return try Trainer(model: try SmallConvNet(classes: 2, seed: 3), options: o, runDirectory: dir, progress: quietProgress())
    }
    let (train, tune) = try splits(train: 96, tune: 64)
    let straight = try trainer(try scratch())
    _ = try straight.fit(train: train, tune: tune)
    let dir = try scratch()
    XCTAssertThrowsError(try trainer(dir).fit(train: Crashing(train), tune: tune))
    XCTAssertEqual(try CheckpointStore(runDirectory: dir, keepLast: 5).list().map(\.step), [4, 6, 8])
    let resumed = try trainer(dir)
    _ = try resumed.fit(train: train, tune: tune, resume: true)
    for ((n, a), (_, b)) in zip(try straight.model.stateDict(), try resumed.model.stateDict()) {
      XCTAssertTrue(try a.equal(b), "weights \(n)")
    }
    for ((n, a), (_, b)) in zip(straight.ema.stateDict(), resumed.ema.stateDict()) { XCTAssertTrue(try a.equal(b), "ema \(n)") }
  }

  func testStopRequestFinishesTheStepWritesACheckpointAndResumes() throws {
    let (train, tune) = try splits()
    let hooked = HookedSource(train) { epoch, i, _ in if epoch == 0 && i == 4 { StopSignal.request(SIGINT) } }
    let dir = try scratch()
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    let out = try t.fit(train: hooked, tune: tune)
    XCTAssertEqual(out.reason, .interrupted(signal: SIGINT))
    XCTAssertEqual(out.position.step, 5)
    XCTAssertEqual(out.position.batch, 5)
    XCTAssertEqual(out.checkpoint?.lastPathComponent, "step-00000005")
    XCTAssertEqual(out.message, "stopped by SIGINT: checkpoint written to \(dir.path)/checkpoints/step-00000005 at step 5; continue with --resume")
    XCTAssertNil(StopSignal.requested)
    let c = try CheckpointStore.read(out.checkpoint!)
    XCTAssertEqual(c.position.step, 5)
    for (n, p) in t.model.namedParameters() { XCTAssertTrue(try c.model[n]!.equal(p.value), n) }
    XCTAssertEqual(c.optimizer.keys.count, 7)
    // Without --resume the folder is refused; with it the run completes.
    let again = try Trainer(model: try SmallConvNet(classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    XCTAssertThrowsError(try again.fit(train: train, tune: tune)) {
      XCTAssertEqual("\($0)", "\(dir.path) already holds checkpoint step-00000005: pass --resume to continue it, or choose a new run folder")
    }
    let done = try again.fit(train: train, tune: tune, resume: true)
    XCTAssertEqual(done.reason, .finished)
    XCTAssertEqual(done.position.step, 24)
  }

  func testRealSIGTERMWritesACheckpoint() throws {
    let (train, tune) = try splits()
    let hooked = HookedSource(train) { epoch, i, _ in if epoch == 0 && i == 2 { kill(getpid(), SIGTERM) } }
    let dir = try scratch()
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    let out = try t.fit(train: hooked, tune: tune)
    XCTAssertEqual(out.reason, .interrupted(signal: SIGTERM))
    XCTAssertEqual(out.position.step, 3)
    XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoints/step-00000003/state.safetensors").path))
    // After fit the previous (here: default) handler is back.
    var current = sigaction()
    sigaction(SIGTERM, nil, &current)
    XCTAssertNil(unsafeBitCast(current.__sigaction_handler.sa_handler, to: UnsafeRawPointer?.self))
  }

  func testNonFiniteLossStopsNamingStepAndImagesAndKeepsTheLastCheckpoint() throws {
    let (train, tune) = try splits()
    var poisonedIds: [String] = []
    let hooked = HookedSource(train) { epoch, i, b in
      if epoch == 1 && i == 3 { b.images = try! b.images * Double.nan; poisonedIds = b.ids }
    }
    let dir = try scratch()
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    XCTAssertThrowsError(try t.fit(train: hooked, tune: tune)) {
      XCTAssertEqual("\($0)", "loss is NaN at step 16 (epoch 2, batch 4); images: \(poisonedIds.joined(separator: ", ")); the last good checkpoint is \(dir.path)/checkpoints/step-00000012. Check these images, or set train.non_finite: skip")
    }
    XCTAssertEqual(try CheckpointStore(runDirectory: dir, keepLast: 2).list().map(\.step), [12])
  }

  func testNonFiniteLossSkipPolicyDropsTheBatch() throws {
    let (train, tune) = try splits()
    let hooked = HookedSource(train) { epoch, i, b in if epoch == 0 && i == 1 { b.images = try! b.images * Double.infinity } }
    var o = options(epochs: 1); o.nonFinite = .skip
    var said: [String] = []
    let progress = ProgressReporter(live: false, interval: 1e9, write: { said.append($0) })
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: try scratch(), progress: progress)
    let out = try t.fit(train: hooked, tune: tune)
    XCTAssertEqual(out.reason, .finished)
    XCTAssertEqual(out.position.step, 11)
    XCTAssertEqual(out.position.skippedBatches, 1)
    XCTAssertTrue(said.contains { $0.hasPrefix("loss is NaN at step 2 (epoch 1, batch 2): batch skipped (images: ") }, "\(said)")
    for (n, p) in t.model.namedParameters() { XCTAssertTrue(try p.value.allFinite(), n) }
  }

  func testImagesTheLoaderSkippedAreListed() throws {
    let (train, tune) = try splits()
    train.unreadable = ["img00007", "img00100"]
    let dir = try scratch()
    var said: [String] = []
    let progress = ProgressReporter(live: false, interval: 1e9, write: { said.append($0) })
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: options(epochs: 1), runDirectory: dir, progress: progress)
    t.resolvedConfig = "train:\n  epochs: 1\n"
    _ = try t.fit(train: train, tune: tune)
    XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8), "train:\n  epochs: 1\n")
    let listed = try String(contentsOf: dir.appendingPathComponent("skipped.txt"), encoding: .utf8)
    XCTAssertEqual(listed.split(separator: "\n").sorted(), ["img00007: unreadable (synthetic)", "img00100: unreadable (synthetic)"])
    XCTAssertTrue(said.contains("skipped image img00007: unreadable (synthetic)\n"))
  }

  func testEarlyStopAndKeepLast() throws {
    // A tuning split with one class only has no AUROC, so the metric never improves.
    let (train, _) = try splits()
    let flat = try SyntheticSplit(count: 32, batchSize: 16, shuffle: false, seed: 5)
    try withNoGrad { try flat.targets.fill_(1) }
    var o = options(epochs: 5); o.earlyStopPatience = 2; o.checkpointEverySteps = 5; o.keepLast = 3
    let dir = try scratch()
    let out = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir, progress: quietProgress())
      .fit(train: train, tune: flat)
    XCTAssertEqual(out.reason, .earlyStopped)
    XCTAssertEqual(out.position.epoch, 2)
    XCTAssertEqual(out.message, "early stop after epoch 2: ema.auroc.mean did not improve for 2 epoch(s); best n/a at epoch 0")
    XCTAssertEqual(try CheckpointStore(runDirectory: dir, keepLast: 3).list().map(\.step), [15, 20, 24])
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("best.safetensors").path))
  }

  func testGradientAccumulationAndClippingAndNoDecayGroups() throws {
    let (train, tune) = try splits()
    var o = options(epochs: 1); o.accumulation = 5; o.gradClipNorm = 0.5; o.noDecayForNormsAndBiases = true
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: try scratch(), progress: quietProgress())
    XCTAssertEqual(t.lion.groups.map(\.names), [["stem.weight", "conv.weight", "head.weight"], ["stem.bias", "conv.bias", "gamma", "head.bias"]])
    let out = try t.fit(train: train, tune: tune)
    XCTAssertEqual(out.position.step, 3, "12 batches in groups of 5: 2 full steps and the rest at the epoch's end")
  }

  func testClippingScalesToTheGlobalNorm() throws {
    let model = try SmallConvNet(classes: 2)
    var o = options(); o.gradClipNorm = 1
    let t = try Trainer(model: model, options: o, runDirectory: try scratch(), progress: quietProgress())
    for p in model.parameters { try p.value.setGrad(Tensor.full(p.value.shape, 3)) }
    try t.clipGradients(1)
    let total = try model.parameters.map { try $0.value.grad!.square().sum().item() }.reduce(0, +).squareRoot()
    XCTAssertEqual(total, 1, accuracy: 1e-5)
  }

  func testBadOptionsAndMissingCheckpointAreClearErrors() throws {
    var o = TrainOptions(); o.accumulation = 0
    XCTAssertThrowsError(try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: try scratch())) {
      XCTAssertEqual("\($0)", "train.accumulation is 0; it must be at least 1")
    }
    o = TrainOptions(); o.bf16 = true
    XCTAssertThrowsError(try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: try scratch())) {
      XCTAssertEqual("\($0)", "train.bf16 is on but the device is cpu; bf16 autocast is for CUDA (CPU trains in float32)")
    }
    let dir = try scratch()
    let (train, tune) = try splits()
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    XCTAssertThrowsError(try t.fit(train: train, tune: tune, resume: true)) {
      XCTAssertEqual("\($0)", "--resume: \(dir.path)/checkpoints holds no checkpoint; start the run without --resume")
    }
    XCTAssertThrowsError(try t.fit(train: try SyntheticSplit(count: 8, batchSize: 16, seed: 1), tune: tune)) {
      XCTAssertEqual("\($0)", "the training split yields no batch: it has fewer images than one batch; lower the batch size or check the split")
    }
    let other = try SyntheticSplit(count: 32, findings: 3, batchSize: 16, seed: 1)
    XCTAssertThrowsError(try t.fit(train: train, tune: other)) {
      XCTAssertEqual("\($0)", "the tuning split's findings [\"finding0\", \"finding1\", \"finding2\"] differ from the training split's [\"finding0\", \"finding1\"]")
    }
  }

  func testResumeIntoADifferentModelNamesTheProblem() throws {
    let (train, tune) = try splits()
    let dir = try scratch()
    var o = options(); o.maxSteps = 2
    _ = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir, progress: quietProgress()).fit(train: train, tune: tune)
    let wider = try Trainer(model: try SmallConvNet(width: 8, classes: 2), options: options(), runDirectory: dir, progress: quietProgress())
    XCTAssertThrowsError(try wider.fit(train: train, tune: tune, resume: true)) {
      XCTAssertTrue("\($0)".hasPrefix("--resume: \(dir.path)/checkpoints/step-00000002 does not fit this model: state dict does not match the model:"), "\($0)")
    }
  }

  func testProgressPlainLinesAndLiveBar() {
    var out: [String] = []
    let s = ProgressReporter.Status(epoch: 0, epochs: 3, step: 10, batch: 5, batches: 20, imagesPerSecond: 123.4, loss: 0.5, etaSeconds: 75)
    ProgressReporter(live: false, interval: 0, write: { out.append($0) }).update(s)
    XCTAssertEqual(out, ["epoch 1/3  batch 5/20  step 10  123.4 img/s  loss 0.5000  eta 01:15\n"])
    out = []
    let live = ProgressReporter(live: true, write: { out.append($0) })
    live.update(s); live.message("done")
    XCTAssertEqual(out, ["\r\u{1B}[K[######..................] epoch 1/3  batch 5/20  step 10  123.4 img/s  loss 0.5000  eta 01:15", "\n", "done\n"])
  }
}

/// The logs researchers read: `summary.csv` (timm's one row per epoch) and TensorBoard event
/// files, read back by TensorBoard's own EventAccumulator (test venv).
final class TrainingLogsTests: XCTestCase {
  var dirs: [URL] = []
  override func tearDown() { for d in dirs { try? FileManager.default.removeItem(at: d) }; StopSignal.reset() }
  func scratch() throws -> URL { let d = try TestEnv.scratch("train-logs"); dirs.append(d); return d }

  func trainer(_ dir: URL) throws -> Trainer {
    var o = TrainOptions()
    o.epochs = 2; o.lr = 3e-3; o.weightDecay = 1e-2; o.emaDecay = 0.9; o.seed = 42
    return try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir,
                       progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }))
  }

  /// Every scalar of the folder's event files as TensorBoard shows it: tag -> [[step, value]].
  func tensorBoard(_ dir: URL) throws -> [String: [[Double]]] {
    let out = try Python.run("""
      from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
      ea = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0})
      ea.Reload()
      print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}))
      """, args: [dir.appendingPathComponent("tensorboard").path])
    return try JSONDecoder().decode([String: [[Double]]].self, from: Data(out.utf8))
  }

  func testSummaryAndTensorBoardHoldWhatTheWeightsSawAcrossAResume() throws {
    let (train, tune) = (try SyntheticSplit(count: 192, batchSize: 16, ignoreFraction: 0.1, seed: 1),
                         try SyntheticSplit(count: 128, batchSize: 32, shuffle: false, seed: 2))
    let straight = try scratch()
    _ = try trainer(straight).fit(train: train, tune: tune)

    // A run killed at step 17 after its checkpoint of step 12: its events of steps 13-17 were
    // written, then lost with the weights; the resumed run logs them again.
    let resumed = try scratch()
    let hooked = HookedSource(train) { epoch, i, _ in if epoch == 1 && i == 4 { StopSignal.request(SIGINT) } }
    let first = try trainer(resumed).fit(train: hooked, tune: tune)
    XCTAssertEqual(first.position.step, 17)
    try FileManager.default.removeItem(at: first.checkpoint!)
    _ = try trainer(resumed).fit(train: train, tune: tune, resume: true)

    let metrics = try String(contentsOf: straight.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochRecord.self, from: Data($0.utf8)) }
    XCTAssertEqual(metrics.count, 2)
    let summary = try String(contentsOf: straight.appendingPathComponent("summary.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(summary[0], "epoch,step,train_loss,lr,tune_loss_raw,tune_auroc_raw,tune_auprc_raw,tune_loss_ema,tune_auroc_ema,tune_auprc_ema,seconds,images_per_s")
    XCTAssertEqual(summary.count, 3)
    for (row, m) in zip(summary.dropFirst(), metrics) {
      let f = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      XCTAssertEqual(f[0], String(m.epoch)); XCTAssertEqual(f[1], String(m.step))
      XCTAssertEqual(Double(f[2]), m.trainLoss); XCTAssertEqual(Double(f[5]), m.raw?.aurocMean); XCTAssertEqual(Double(f[8]), m.ema?.aurocMean)
    }
    // The resumed run's summary has the same epochs and numbers (less the timings).
    let again = try String(contentsOf: resumed.appendingPathComponent("summary.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(again.map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(10) },
                   summary.map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(10) })

    let tb = try tensorBoard(straight)
    XCTAssertEqual(tb["train/loss"]?.map { Int($0[0]) }, Array(1...24))
    XCTAssertEqual(tb["tune/auroc_ema"]?.map { $0[0] }, [12, 24])
    for (i, m) in metrics.enumerated() {
      XCTAssertEqual(tb["tune/auroc_ema"]![i][1], Double(Float(m.ema!.aurocMean!)))
      XCTAssertEqual(tb["tune/loss_raw"]![i][1], Double(Float(m.raw!.loss!)))
      XCTAssertEqual(tb["epoch/train_loss"]![i][1], Double(Float(m.trainLoss!)))
      XCTAssertEqual(tb["train/lr"]![m.step - 1][1], Double(Float(m.lr!)))
    }
    XCTAssertNotNil(tb["tune/auroc_raw/finding0"] ?? tb.keys.first { $0.hasPrefix("tune/auroc_raw/") }.flatMap { tb[$0] })
    // Two files in the resumed folder; TensorBoard shows each step once, with the values of the
    // uninterrupted run (the resume is bit-identical).
    let files = try FileManager.default.contentsOfDirectory(atPath: resumed.appendingPathComponent("tensorboard").path)
    XCTAssertEqual(files.count, 2, "\(files)")
    XCTAssertEqual(try tensorBoard(resumed)["train/loss"], tb["train/loss"])
    XCTAssertEqual(try tensorBoard(resumed)["tune/auroc_ema"], tb["tune/auroc_ema"])
  }
}
