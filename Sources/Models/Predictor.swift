import Foundation
import Torch

/// Runs a classifier on preprocessed image batches [B, C, H, W] and returns one sigmoid
/// probability per finding. The model is in eval mode (no dropout, no drop path) and runs
/// without recording gradients.
public final class Predictor {
  public let model: ConvNeXt
  public let findings: [String]
  public let device: Device
  public let channelsLast: Bool
  /// Reduced-precision autocast dtype (e.g. bfloat16 on CUDA); nil runs in the weights' dtype.
  public let autocast: DType?

  /// Puts `model` in eval mode and moves it to `device` (and to channels_last if asked).
  public init(model: ConvNeXt, findings: [String], device: Device = .cpu, channelsLast: Bool = false,
              autocast: DType? = nil) throws {
    guard findings.count == model.config.numClasses else {
      throw ModelError("\(model.config.arch) has \(model.config.numClasses) outputs but \(findings.count) finding names were given")
    }
    self.model = model
    self.findings = findings
    self.device = device
    self.channelsLast = channelsLast
    self.autocast = autocast
    model.setTraining(false)
    try model.to(device)
    if channelsLast { try model.toChannelsLast() }
  }

  public convenience init(_ loaded: LoadedModel, device: Device = .cpu, channelsLast: Bool = false,
                          autocast: DType? = nil) throws {
    try self.init(model: loaded.model, findings: loaded.findings, device: device, channelsLast: channelsLast,
                  autocast: autocast)
  }

  /// How cxr predicts on `device` (cxr predict, the study runner, the benchmarks): on CUDA
  /// with channels_last weights and input under bf16 autocast and cuDNN's autotuner on, as
  /// training runs there by default; elsewhere in float32 and the default memory format.
  public convenience init(model: ConvNeXt, findings: [String], on device: Device) throws {
    try Runtime.applyCuDNNBenchmark(for: device)
    try self.init(model: model, findings: findings, device: device, channelsLast: device.isCUDA,
                  autocast: device.isCUDA ? .bfloat16 : nil)
  }

  public convenience init(_ loaded: LoadedModel, on device: Device) throws {
    try self.init(model: loaded.model, findings: loaded.findings, on: device)
  }

  /// Probabilities [B, findings] as float32 on the CPU. A 1-channel batch given to a
  /// 3-channel model is replicated over the channels (grayscale as RGB).
  public func probabilities(_ batch: Tensor) throws -> Tensor {
    try logits(batch).to(.cpu, dtype: .float32).sigmoid()
  }

  /// Logits [B, findings] on the model's device, in the autocast dtype when autocast is on
  /// (else the weights'), computed without recording gradients. Nothing waits for the device.
  public func logits(_ batch: Tensor) throws -> Tensor {
    let shape = batch.shape
    let want = model.config.inChannels
    guard shape.count == 4 else {
      throw ModelError("the model takes a batch of images [batch, \(want), height, width]; got a tensor of shape \(shape)")
    }
    guard batch.dtype.isFloatingPoint else {
      throw ModelError("the model takes floating-point images (preprocessed), got \(batch.dtype)")
    }
    guard shape[1] == want || (shape[1] == 1 && want == 3) else {
      throw ModelError("the model takes \(want)-channel images, got \(shape[1]) channels (batch shape \(shape))")
    }
    guard shape[2] >= 32, shape[3] >= 32 else {
      throw ModelError("images must be at least 32x32 pixels (ConvNeXt downsamples by 32), got \(shape[2])x\(shape[3])")
    }
    // Input in the weights' dtype (a float64 or float16 batch into float32 weights).
    let weights = model.stemConv.weight.value.dtype
    var x = try batch.to(device, dtype: batch.dtype == weights ? nil : weights)
    if shape[1] != want { x = try x.expand([shape[0], want, shape[2], shape[3]]) }
    if channelsLast { x = try x.contiguous(.channelsLast) }
    return try withNoGrad { () -> Tensor in
      if let autocast { return try withAutocast(device, dtype: autocast) { try model(x) } }
      return try model(x)
    }
  }

  /// Probabilities as rows, one per image, in the order of `findings`.
  public func predict(_ batch: Tensor) throws -> [[Float]] {
    let p = try probabilities(batch)
    let flat = try p.toArray(Float.self)
    let k = findings.count
    return stride(from: 0, to: flat.count, by: k).map { Array(flat[$0..<$0 + k]) }
  }
}
