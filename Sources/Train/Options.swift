import Foundation
import Torch

/// What to do when a batch's loss is NaN or infinite.
public enum NonFinitePolicy: String, Sendable {
  /// Stop with an error naming the step and the batch's images; the last checkpoint stays.
  case stop
  /// Drop the batch (no update) and go on; the count is logged.
  case skip
}

/// The metric that picks the best checkpoint: `<raw|ema>.<loss|auroc|auprc>[.<finding|mean>]`,
/// e.g. `ema.auroc.mean` (the default) or `raw.loss`. Loss is minimised, the others maximised.
public struct SelectionMetric: Equatable, Sendable, CustomStringConvertible {
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
}

/// Every setting of a training run. Defaults are the study's (Lion lr 1e-5, weight decay 3e-4,
/// betas 0.9/0.99, EMA 0.9999, constant rate) where the study fixed them.
public struct TrainOptions {
  public var epochs = 1
  public var lr = 1e-5
  public var weightDecay = 3e-4
  public var beta1 = 0.9, beta2 = 0.99
  /// Weight decay 0 for norms, biases and layer scales.
  public var noDecayForNormsAndBiases = false
  public var schedule: LRSchedule = .constant
  public var emaDecay = 0.9999
  public var emaWarmup: EMA.Warmup?
  /// Clip the global gradient norm to this value.
  public var gradClipNorm: Double?
  /// Batches per optimizer step.
  public var accumulation = 1
  public var augment = AugmentOptions()
  /// Per-finding `pos_weight` of the loss.
  public var posWeight: [Double]?
  public var seed: UInt64 = 0
  public var device: Device = .cpu
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

  public init() {}

  public var useBF16: Bool { bf16 ?? device.isCUDA }
  public var useChannelsLast: Bool { channelsLast ?? device.isCUDA }
  /// Whether the loop runs with cuDNN's autotuner on (`Runtime.cuDNNBenchmark`): on CUDA unless
  /// `cudnnBenchmark` is false, off on the CPU.
  public var useCuDNNBenchmark: Bool { Runtime.cuDNNBenchmark(for: device, requested: cudnnBenchmark) }

  public func validate() throws {
    if epochs < 1 { throw TrainError("train.epochs is \(epochs); it must be at least 1") }
    if !(lr > 0) { throw TrainError("train.lr is \(lr); it must be > 0") }
    if weightDecay < 0 { throw TrainError("train.weight_decay is \(weightDecay); it must be >= 0") }
    if accumulation < 1 { throw TrainError("train.accumulation is \(accumulation); it must be at least 1") }
    if keepLast < 1 { throw TrainError("train.keep_last is \(keepLast); keep at least 1 checkpoint") }
    if let c = gradClipNorm, !(c > 0) { throw TrainError("train.grad_clip is \(c); it must be > 0") }
    if let p = earlyStopPatience, p < 1 { throw TrainError("train.early_stop_patience is \(p); it must be at least 1") }
    if let n = checkpointEverySteps, n < 1 { throw TrainError("train.checkpoint_every is \(n); it must be at least 1") }
    if useBF16 && !device.isCUDA { throw TrainError("train.bf16 is on but the device is \(device); bf16 autocast is for CUDA (CPU trains in float32)") }
    try augment.validate(key: "train.augment")
  }
}
