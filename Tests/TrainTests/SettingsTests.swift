import Bench
import Common
import Data
import Foundation
import TestSupport
import Yams
import Torch
import XCTest
@testable import Train

final class SettingsTests: XCTestCase {
  /// `train:` as a study config gives it, through the one strict decoder.
  func options(_ yaml: String, source: String = "study.yaml") throws -> TrainOptions {
    let (o, _) = try StrictYAML.decode(TrainOptions.self, defaults: TrainOptions(), text: yaml, source: source)
    try o.validate()
    return o
  }

  func testSettingsOverrideDefaultsAndRoundTrip() throws {
    let o = try options("""
      epochs: 3
      lr: 1e-4
      weight_decay: 0
      betas: [0.95, 0.98]
      schedule: warmup_cosine
      warmup_steps: 100
      ema_warmup: true
      grad_clip: 1.0
      augment: {mix: 0, noise_std: 0.05}
      pos_weight: [2, 3.5]
      selection: raw.auprc.Pneumothorax
      non_finite: skip
      max_steps: null
      """)
    XCTAssertEqual(o.epochs, 3); XCTAssertEqual(o.lr, 1e-4); XCTAssertEqual(o.weightDecay, 0)
    XCTAssertEqual(o.beta1, 0.95); XCTAssertEqual(o.beta2, 0.98)
    XCTAssertEqual(o.schedule, LRSchedule.warmupCosine(warmupSteps: 100, totalSteps: 0, minLR: 0))
    XCTAssertEqual(o.emaWarmup, EMA.Warmup())
    XCTAssertEqual(o.augment.mix, 0); XCTAssertEqual(o.augment.noiseStd, 0.05); XCTAssertEqual(o.augment.affine, 0.5)
    XCTAssertEqual(o.posWeight, [2, 3.5]); XCTAssertEqual(o.nonFinite, NonFinitePolicy.skip)
    XCTAssertEqual(o.selection.description, "raw.auprc.Pneumothorax")
    XCTAssertNil(o.maxSteps)
    // Written out (every key, unset ones as null) and read back: the same options.
    let text = try Yams.serialize(node: try NodeEncoder.encode(o))
    XCTAssertTrue(text.contains("grad_clip: 1.0\n") && text.contains("max_steps: null\n"), text)
    XCTAssertEqual(try options(text, source: "config.yaml"), o)
    // The study's defaults.
    let d = TrainOptions()
    XCTAssertEqual(d.lr, 1e-5); XCTAssertEqual(d.weightDecay, 3e-4); XCTAssertEqual(d.emaDecay, 0.9999)
    XCTAssertEqual(d.schedule, LRSchedule.constant)
  }

  func testBadSettingsNameTheFileLineAndTheKey() {
    let cases: [(String, String)] = [
      ("epochs: 1\nlr_max: 1\n", "study.yaml:2: unknown key 'lr_max'; did you mean 'lr'? known keys at the top level: epochs, lr, weight_decay, betas, no_decay_norms_biases, schedule, warmup_steps, min_lr, ema_decay, ema_warmup, ema_warmup_gamma, ema_warmup_power, grad_clip, accumulation, augment, pos_weight, bf16, channels_last, cudnn_benchmark, selection, early_stop_patience, non_finite, checkpoint_every, keep_last, progress_interval, max_steps"),
      ("lr: fast\n", "study.yaml:1: 'lr' must be a number, not text ('fast')"),
      ("epochs: 2.5\n", "study.yaml:1: 'epochs' must be a whole number, not a number (2.5)"),
      ("bf16: maybe\n", "study.yaml:1: 'bf16' must be true or false, not text ('maybe')"),
      ("betas: [0.9]\n", "train.betas must list two numbers, e.g. [0.9, 0.99]"),
      ("augment:\n  flip: 0.5\n", "study.yaml:2: unknown key 'augment.flip'; known keys under 'augment': horizontal_flip, vertical_flip, noise, noise_std, affine, rotation_degrees, scale_range, translate_fraction, mix, cutmix_share, mixup_alpha, cutmix_alpha"),
      ("augment: {noise: 2}\n", "train.augment.noise is 2.0; a probability must lie in [0, 1]"),
      ("non_finite: ignore\n", "study.yaml:1: non_finite is 'ignore'; use stop or skip"),
      ("schedule: step\n", "study.yaml:1: schedule is 'step'; use constant or warmup_cosine"),
      ("selection: best\n", "study.yaml:1: selection is 'best': selection metric 'best' is not of the form <raw|ema>.<loss|auroc|auprc>[.<finding|mean>], e.g. ema.auroc.mean"),
      ("epochs: 0\n", "train.epochs is 0; it must be at least 1"),
    ]
    for (yaml, message) in cases {
      XCTAssertThrowsError(try options(yaml)) { XCTAssertEqual("\($0)", message, yaml) }
    }
  }

  func testCuDNNBenchmarkIsOnWithCUDAUnlessTurnedOffAndIgnoredOnTheCPU() throws {
    XCTAssertTrue(TrainOptions().cudnnBenchmark, "asked for by default")
    func use(_ device: Device, _ yaml: String) throws -> Bool {
      Runtime.cuDNNBenchmark(for: device, requested: try options(yaml).cudnnBenchmark)
    }
    XCTAssertTrue(try use(.cuda(0), "{}"))
    XCTAssertTrue(try use(.cuda(1), "cudnn_benchmark: true"))
    XCTAssertFalse(try use(.cuda(0), "cudnn_benchmark: false"))
    XCTAssertFalse(try use(.cpu, "{}"))
    XCTAssertFalse(try use(.cpu, "cudnn_benchmark: true"), "ignored on the CPU, not an error")
    let off = try options("cudnn_benchmark: false")
    XCTAssertFalse(try options(try Yams.serialize(node: try NodeEncoder.encode(off))).cudnnBenchmark, "written back as given")
  }

  func testTrainerOnTheCPULeavesCuDNNAlone() throws {
    let dir = try TestEnv.scratch("cudnn")
    defer { try? FileManager.default.removeItem(at: dir) }
    defer { try? Runtime.setCuDNNBenchmark(false) }
    for state in [true, false] {
      try Runtime.setCuDNNBenchmark(state)
      var o = TrainOptions()
      o.cudnnBenchmark = true
      _ = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir,
                      progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }))
      XCTAssertEqual(Runtime.cuDNNBenchmarkEnabled, state, "set up on the CPU: the flag is untouched")
    }
  }

  func testWarmupCosineEndsAtTheLastStepOfTheRun() throws {
    var o = try options("{epochs: 2, lr: 0.01, schedule: warmup_cosine, warmup_steps: 3}")
    o.emaDecay = 0.9
    let train = try SyntheticSplit(count: 64, batchSize: 16, seed: 1)
    let dir = try TestEnv.scratch("sched")
    defer { try? FileManager.default.removeItem(at: dir) }
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }))
    _ = try t.fit(train: train, tune: nil)
    XCTAssertEqual(t.schedule, LRSchedule.warmupCosine(warmupSteps: 3, totalSteps: 8, minLR: 0))
    XCTAssertEqual(t.lion.lr, 0.01 * 0.5 * (1 + cos(Double.pi * 4 / 5)), accuracy: 1e-15, "rate of the 8th (last) step")
  }
}
