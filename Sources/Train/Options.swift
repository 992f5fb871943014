import Common
import Foundation
import Torch

/// What to do when a batch's loss is NaN or infinite.
public enum NonFinitePolicy: String, Sendable, ConfigChoice {
  /// Stop with an error naming the step and the batch's images; the last checkpoint stays.
  case stop
  /// Drop the batch (no update) and go on; the count is logged.
  case skip
}

/// The learning-rate schedule's kind (`train.schedule`); `LRSchedule` is the schedule itself.
public enum ScheduleKind: String, Sendable, ConfigChoice {
  case constant
  case warmupCosine = "warmup_cosine"
}

/// The metric that picks the best checkpoint: `<raw|ema>.<loss|auroc|auprc>[.<finding|mean>]`,
/// e.g. `ema.auroc.mean` (the default) or `raw.loss`. Loss is minimised, the others maximised.
public struct SelectionMetric: Equatable, Sendable, CustomStringConvertible, Codable {
  public enum Weights: String, Sendable { case raw, ema }
  public enum Kind: String, Sendable { case loss, auroc, auprc }
  public let weights: Weights
  public let kind: Kind
  /// A finding name, or nil for the mean over findings.
  public let finding: String?

  public init(parsing s: String) throws {
    let parts = s.split(separator: ".", maxSplits: 2).map(String.init)
    guard parts.count >= 2, let w = Weights(rawValue: parts[0]), let k = Kind(rawValue: parts[1]) else {
      throw TrainError("selection metric '\(s)' is not of the form <raw|ema>.<loss|auroc|auprc>[.<finding|mean>], e.g. ema.auroc.mean")
    }
    if k == .loss && parts.count > 2 { throw TrainError("selection metric '\(s)': loss is not per finding; use \(w.rawValue).loss") }
    weights = w; kind = k
    finding = parts.count > 2 && parts[2] != "mean" ? parts[2] : nil
  }
  public var higherIsBetter: Bool { kind != .loss }
  public var description: String {
    kind == .loss ? "\(weights.rawValue).loss" : "\(weights.rawValue).\(kind.rawValue).\(finding ?? "mean")"
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    let s = try c.decode(String.self)
    do { try self.init(parsing: s) } catch let e as TrainError {
      throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "is '\(s)': \(e.message)"))
    }
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }
}

/// Every setting of a training run, as the `train:` section of a study config reads it: each
/// stored property is one config key (the CodingKeys), its initial value the one default. The
/// study's settings are the defaults where the study fixed them (Lion lr 1e-5, weight decay
/// 3e-4, betas 0.9/0.99, EMA 0.9999, constant rate). `seed` and `device` are the study's own
/// (its top-level keys), set by the Experiment layer, not keys of `train:`.
public struct TrainOptions: Codable, Equatable, Sendable {
  public var epochs = 1
  public var lr = 1e-5
  public var weightDecay = 3e-4
  public var betas = [0.9, 0.99]
  /// Weight decay 0 for norms, biases and layer scales.
  public var noDecayForNormsAndBiases = false
  public var scheduleKind: ScheduleKind = .constant
  /// warmup_cosine: linear warmup steps, and the rate the cosine ends at.
  public var warmupSteps = 0
  public var minLR = 0.0
  public var emaDecay = 0.9999
  /// timm's EMA warmup: decay min(decay, (1 + step / gamma)^-power).
  public var emaWarmupOn = false
  public var emaWarmupGamma = 1.0
  public var emaWarmupPower = 2.0 / 3.0
  /// Clip the global gradient norm to this value.
  public var gradClipNorm: Double?
  /// Batches per optimizer step.
  public var accumulation = 1
  public var augment = AugmentOptions()
  /// Per-finding `pos_weight` of the loss.
  public var posWeight: [Double]?
  /// bf16 autocast; nil = on for CUDA, off on CPU.
  public var bf16: Bool?
  /// channels_last activations and conv weights; nil = on for CUDA.
  public var channelsLast: Bool?
  /// cuDNN's autotuner (`cudnn.benchmark`): the shapes of a run stay the same, so it pays off.
  /// Used with CUDA only; ignored on the CPU.
  public var cudnnBenchmark = true
  public var selection: SelectionMetric = try! SelectionMetric(parsing: "ema.auroc.mean")
  /// Stop after this many epochs without improvement of the selection metric.
  public var earlyStopPatience: Int?
  public var nonFinite: NonFinitePolicy = .stop
  /// Also checkpoint every N optimizer steps (always at the end of each epoch and on a stop).
  public var checkpointEverySteps: Int?
  public var keepLast = 2
  /// Seconds between plain progress lines when not on a terminal.
  public var progressInterval = 30.0
  /// Stop (with a checkpoint) once this many optimizer steps are done in total.
  public var maxSteps: Int?

  /// The study's seed and device (not keys of `train:`).
  public var seed: UInt64 = 0
  public var device: Device = .cpu

  enum CodingKeys: String, CodingKey, CaseIterable {
    case epochs, lr
    case weightDecay = "weight_decay"
    case betas
    case noDecayForNormsAndBiases = "no_decay_norms_biases"
    case scheduleKind = "schedule"
    case warmupSteps = "warmup_steps"
    case minLR = "min_lr"
    case emaDecay = "ema_decay"
    case emaWarmupOn = "ema_warmup"
    case emaWarmupGamma = "ema_warmup_gamma"
    case emaWarmupPower = "ema_warmup_power"
    case gradClipNorm = "grad_clip"
    case accumulation, augment
    case posWeight = "pos_weight"
    case bf16
    case channelsLast = "channels_last"
    case cudnnBenchmark = "cudnn_benchmark"
    case selection
    case earlyStopPatience = "early_stop_patience"
    case nonFinite = "non_finite"
    case checkpointEverySteps = "checkpoint_every"
    case keepLast = "keep_last"
    case progressInterval = "progress_interval"
    case maxSteps = "max_steps"
  }

  /// What each key means (for `cxr config defaults`).
  public static let documentation: [String: String] = [
    "epochs": "passes over the training split",
    "lr": "Lion's learning rate (the study: 1e-5)",
    "weight_decay": "decoupled weight decay (the study: 3e-4)",
    "betas": "Lion's beta1, beta2 (the study: 0.9, 0.99)",
    "no_decay_norms_biases": "no weight decay for norms, biases and layer scales",
    "schedule": "constant | warmup_cosine",
    "warmup_steps": "warmup_cosine: linear warmup over this many optimizer steps",
    "min_lr": "warmup_cosine: the rate at the last step",
    "ema_decay": "EMA of the weights (the study: 0.9999)",
    "ema_warmup": "timm's EMA warmup: decay min(ema_decay, (1 + step / gamma)^-power)",
    "ema_warmup_gamma": "EMA warmup's gamma",
    "ema_warmup_power": "EMA warmup's power",
    "grad_clip": "clip the global gradient norm to this (null: no clipping)",
    "accumulation": "batches per optimizer step",
    "augment": "flips, noise, affine, mixup/CutMix (probabilities and ranges)",
    "augment.horizontal_flip": "probability of a horizontal flip",
    "augment.vertical_flip": "probability of a vertical flip",
    "augment.noise": "probability of Gaussian noise",
    "augment.noise_std": "its standard deviation (in the [-1, 1] intensity range)",
    "augment.affine": "probability of a random affine transform",
    "augment.rotation_degrees": "rotation drawn from U(-d, d)",
    "augment.scale_range": "scale drawn from 1 + U(-s, s)",
    "augment.translate_fraction": "translation drawn from U(-t, t) times the side",
    "augment.mix": "probability that a batch is mixed (mixup or CutMix)",
    "augment.cutmix_share": "share of mixed batches that use CutMix",
    "augment.mixup_alpha": "mixup's Beta(alpha, alpha)",
    "augment.cutmix_alpha": "CutMix's Beta(alpha, alpha)",
    "pos_weight": "per-finding pos_weight of the BCE loss (null: none)",
    "bf16": "bf16 autocast (null: on with CUDA, off on the CPU)",
    "channels_last": "channels_last memory format (null: on with CUDA)",
    "cudnn_benchmark": "cuDNN's autotuner, used with CUDA only, ignored on CPU",
    "selection": "the metric that picks best.safetensors: <raw|ema>.<loss|auroc|auprc>[.<finding|mean>]",
    "early_stop_patience": "stop after this many epochs without improvement (null: never)",
    "non_finite": "a NaN/inf loss: stop (the default) or skip the batch",
    "checkpoint_every": "also checkpoint every N optimizer steps (null: at epoch ends and stops only)",
    "keep_last": "checkpoint folders kept",
    "progress_interval": "seconds between progress lines when not on a terminal",
    "max_steps": "stop (with a checkpoint) after this many optimizer steps in all (null: no limit)",
  ]

  public init() {}

  public var beta1: Double {
    get { betas.first ?? 0.9 }
    set { betas = [newValue, beta2] }
  }
  public var beta2: Double {
    get { betas.count > 1 ? betas[1] : 0.99 }
    set { betas = [beta1, newValue] }
  }

  /// The schedule (warmup_cosine's last step is fixed by the loop when it knows the steps per epoch).
  public var schedule: LRSchedule {
    get { scheduleKind == .constant ? .constant : .warmupCosine(warmupSteps: warmupSteps, totalSteps: 0, minLR: minLR) }
    set {
      switch newValue {
      case .constant: scheduleKind = .constant
      case let .warmupCosine(w, _, m): scheduleKind = .warmupCosine; warmupSteps = w; minLR = m
      }
    }
  }

  public var emaWarmup: EMA.Warmup? {
    get { emaWarmupOn ? EMA.Warmup(gamma: emaWarmupGamma, power: emaWarmupPower) : nil }
    set {
      emaWarmupOn = newValue != nil
      if let w = newValue { emaWarmupGamma = w.gamma; emaWarmupPower = w.power }
    }
  }

  public var useBF16: Bool { bf16 ?? device.isCUDA }
  public var useChannelsLast: Bool { channelsLast ?? device.isCUDA }

  /// Checks ranges; each error names its key (`train.<key>`).
  public func validate() throws {
    func bad(_ key: String, _ what: String) -> TrainError { TrainError("train.\(key) \(what)", key: "train.\(key)") }
    if epochs < 1 { throw bad("epochs", "is \(epochs); it must be at least 1") }
    if !(lr > 0) { throw bad("lr", "is \(lr); it must be > 0") }
    if weightDecay < 0 { throw bad("weight_decay", "is \(weightDecay); it must be >= 0") }
    if betas.count != 2 { throw bad("betas", "must list two numbers, e.g. [0.9, 0.99]") }
    if accumulation < 1 { throw bad("accumulation", "is \(accumulation); it must be at least 1") }
    if keepLast < 1 { throw bad("keep_last", "is \(keepLast); keep at least 1 checkpoint") }
    if warmupSteps < 0 { throw bad("warmup_steps", "is \(warmupSteps); it must be >= 0") }
    if let c = gradClipNorm, !(c > 0) { throw bad("grad_clip", "is \(c); it must be > 0") }
    if let p = earlyStopPatience, p < 1 { throw bad("early_stop_patience", "is \(p); it must be at least 1") }
    if let n = checkpointEverySteps, n < 1 { throw bad("checkpoint_every", "is \(n); it must be at least 1") }
    if let n = maxSteps, n < 1 { throw bad("max_steps", "is \(n); it must be at least 1") }
    if useBF16 && !device.isCUDA { throw bad("bf16", "is on but the device is \(device); bf16 autocast is for CUDA (CPU trains in float32)") }
    try augment.validate(key: "train.augment")
  }
}
