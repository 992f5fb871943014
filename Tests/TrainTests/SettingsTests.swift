import Foundation
import TestSupport
import Torch
import XCTest
@testable import Train

final class SettingsTests: XCTestCase {
  func testSettingsOverrideDefaultsAndRoundTrip() throws {
    let o = try TrainOptions(settings: [
      "epochs": 3, "lr": "1e-4", "weight_decay": 0, "betas": [0.95, 0.98], "schedule": "warmup_cosine",
      "warmup_steps": 100, "ema_warmup": true, "grad_clip": 1.0, "augment": ["mix": 0, "noise_std": 0.05],
      "pos_weight": [2, 3.5], "seed": 7, "selection": "raw.auprc.Pneumothorax", "non_finite": "skip",
      "max_steps": NSNull(),
    ], origin: "study.yaml")
    XCTAssertEqual(o.epochs, 3); XCTAssertEqual(o.lr, 1e-4); XCTAssertEqual(o.weightDecay, 0)
    XCTAssertEqual(o.beta1, 0.95); XCTAssertEqual(o.beta2, 0.98)
    XCTAssertEqual(o.schedule, .warmupCosine(warmupSteps: 100, totalSteps: 0, minLR: 0))
    XCTAssertEqual(o.emaWarmup, EMA.Warmup())
    XCTAssertEqual(o.augment.mix, 0); XCTAssertEqual(o.augment.noiseStd, 0.05); XCTAssertEqual(o.augment.affine, 0.5)
    XCTAssertEqual(o.posWeight, [2, 3.5]); XCTAssertEqual(o.seed, 7); XCTAssertEqual(o.nonFinite, .skip)
    XCTAssertEqual(o.selection.description, "raw.auprc.Pneumothorax")
    XCTAssertNil(o.maxSteps)
    let again = try TrainOptions(settings: o.settings, origin: "config.yaml")
    XCTAssertEqual(NSDictionary(dictionary: again.settings), NSDictionary(dictionary: o.settings))
    // The study's defaults.
    let d = TrainOptions()
    XCTAssertEqual(d.lr, 1e-5); XCTAssertEqual(d.weightDecay, 3e-4); XCTAssertEqual(d.emaDecay, 0.9999)
    XCTAssertEqual(d.schedule, .constant)
  }

  func testBadSettingsNameTheFileAndTheKey() {
    let cases: [([String: Any], String)] = [
      (["lr_max": 1], "study.yaml: unknown key train.lr_max (known keys: accumulation, augment, betas, bf16, channels_last, checkpoint_every, cudnn_benchmark, device, early_stop_patience, ema_decay, ema_warmup, ema_warmup_gamma, ema_warmup_power, epochs, grad_clip, keep_last, lr, max_steps, min_lr, no_decay_norms_biases, non_finite, pos_weight, progress_interval, schedule, seed, selection, warmup_steps, weight_decay)"),
      (["lr": "fast"], "study.yaml: train.lr must be a number, found 'fast'"),
      (["epochs": 2.5], "study.yaml: train.epochs must be a whole number, found 2.5"),
      (["bf16": "yes"], "study.yaml: train.bf16 must be true or false, found 'yes'"),
      (["cudnn_benchmark": "on"], "study.yaml: train.cudnn_benchmark must be true or false, found 'on'"),
      (["betas": [0.9]], "study.yaml: train.betas must list two numbers, e.g. [0.9, 0.99]"),
      (["augment": ["flip": 0.5]], "study.yaml: unknown key train.augment.flip (known keys: affine, cutmix_alpha, cutmix_share, horizontal_flip, mix, mixup_alpha, noise, noise_std, rotation_degrees, scale_range, translate_fraction, vertical_flip)"),
      (["augment": ["noise": 2]], "study.yaml: train.augment.noise is 2.0; a probability must lie in [0, 1]"),
      (["device": "tpu"], "study.yaml: train.device unknown device 'tpu': use cpu, cuda or cuda:N"),
      (["non_finite": "ignore"], "study.yaml: train.non_finite is 'ignore'; use stop or skip"),
      (["schedule": "step"], "study.yaml: train.schedule is 'step'; use constant or warmup_cosine"),
      (["epochs": 0], "study.yaml: train.epochs is 0; it must be at least 1"),
    ]
    for (s, message) in cases {
      XCTAssertThrowsError(try TrainOptions(settings: s, origin: "study.yaml")) { XCTAssertEqual("\($0)", message) }
    }
  }

  func testCuDNNBenchmarkIsOnWithCUDAUnlessTurnedOffAndIgnoredOnTheCPU() throws {
    XCTAssertTrue(TrainOptions().cudnnBenchmark, "asked for by default")
    func use(_ s: [String: Any]) throws -> Bool { try TrainOptions(settings: s, origin: "t").useCuDNNBenchmark }
    XCTAssertTrue(try use(["device": "cuda"]))
    XCTAssertTrue(try use(["device": "cuda:1", "cudnn_benchmark": true]))
    XCTAssertFalse(try use(["device": "cuda", "cudnn_benchmark": false]))
    XCTAssertFalse(try use(["device": "cpu"]))
    XCTAssertFalse(try use(["device": "cpu", "cudnn_benchmark": true]), "ignored on the CPU, not an error")
    // Written back as given (the resolved config), and read again.
    let off = try TrainOptions(settings: ["cudnn_benchmark": false], origin: "t")
    XCTAssertEqual(off.settings["cudnn_benchmark"] as? Bool, false)
    XCTAssertEqual(TrainOptions().settings["cudnn_benchmark"] as? Bool, true)
    XCTAssertFalse(try TrainOptions(settings: off.settings, origin: "config.yaml").cudnnBenchmark)
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
    var o = try TrainOptions(settings: ["epochs": 2, "lr": 0.01, "schedule": "warmup_cosine", "warmup_steps": 3], origin: "t")
    o.emaDecay = 0.9
    let train = try SyntheticSplit(count: 64, batchSize: 16, seed: 1)
    let dir = try TestEnv.scratch("sched")
    defer { try? FileManager.default.removeItem(at: dir) }
    let t = try Trainer(model: try SmallConvNet(classes: 2), options: o, runDirectory: dir,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }))
    _ = try t.fit(train: train, tune: nil)
    XCTAssertEqual(t.schedule, .warmupCosine(warmupSteps: 3, totalSteps: 8, minLR: 0))
    XCTAssertEqual(t.lion.lr, 0.01 * 0.5 * (1 + cos(Double.pi * 4 / 5)), accuracy: 1e-15, "rate of the 8th (last) step")
  }
}
