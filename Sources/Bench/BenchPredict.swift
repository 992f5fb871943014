import ArgumentParser
import Foundation
import Models
import Torch

/// `cxr bench predict`: inference images/s of a ConvNeXt through the Predictor that `cxr predict`
/// uses (eval mode, no gradients; bf16 autocast, channels_last and cuDNN's autotuner on CUDA) on
/// one random batch already on the device, as scripts/bench/gpu_predict.py does for timm. The
/// sigmoid stays on the device on both sides; no host copy per batch.
struct BenchPredict: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Inference images/s of a ConvNeXt (the GPU benchmark's cxr side; prints one JSON line).")
  @Option(help: "ConvNeXt architecture.") var arch = "convnext_base"
  @Option(help: "Image side.") var size = 512
  @Option(help: "Batch size.") var batch = 64
  @Option(help: "Timed batches.") var steps = 30
  @Option(help: "Untimed warm-up batches.") var warmup = 5
  @Option(help: "cpu, cuda or cuda:N.") var device = "cuda"

  func validate() throws {
    if batch < 1 || steps < 1 { throw ValidationError("--batch and --steps must be at least 1") }
    if warmup < 0 { throw ValidationError("--warmup must not be negative") }
  }

  func run() throws {
    let dev = try Device(parsing: device)
    let predictor = try Predictor(model: try BenchModel.make(arch), findings: BenchModel.findings, on: dev)
    var images = try Tensor.randn([batch, predictor.model.config.inChannels, size, size], device: dev)
    if predictor.channelsLast { images = try images.contiguous(.channelsLast) }
    let seconds = try timedSteps(on: dev, steps: steps, warmup: warmup) {
      _ = try predictor.logits(images).to(dtype: .float32).sigmoid()
    }
    try printJSONLine([
      "bench": "predict", "impl": "cxr", "arch": predictor.model.config.arch, "size": size, "batch": batch,
      "steps": steps, "device": dev.description, "bf16": predictor.autocast == .bfloat16,
      "channels_last": predictor.channelsLast, "images": steps * batch, "batch_ms": seconds / Double(steps) * 1000,
      "images_per_s": imagesPerSecond(steps * batch, seconds), "peak_mem_gib": try peakMemoryGiB(dev),
    ])
  }
}
