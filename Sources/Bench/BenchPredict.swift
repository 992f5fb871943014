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
    try printJSONLine(PredictRecord(arch: predictor.model.config.arch, size: size, batch: batch, steps: steps,
                                    device: dev.description, bf16: predictor.autocast == .bfloat16,
                                    channelsLast: predictor.channelsLast, images: steps * batch,
                                    batchMs: seconds / Double(steps) * 1000,
                                    imagesPerS: imagesPerSecond(steps * batch, seconds), peakMemGiB: try peakMemoryGiB(dev)))
  }
}

/// `cxr bench predict`'s line (scripts/bench/gpu_predict.py prints the PyTorch side's alike).
struct PredictRecord: Codable {
  var bench = "predict", impl = "cxr"
  var arch: String, size: Int, batch: Int, steps: Int, device: String, bf16: Bool, channelsLast: Bool, images: Int
  var batchMs: Double, imagesPerS: Double, peakMemGiB: Double
  enum CodingKeys: String, CodingKey {
    case bench, impl, arch, size, batch, steps, device, bf16, channelsLast = "channels_last", images
    case batchMs = "batch_ms", imagesPerS = "images_per_s", peakMemGiB = "peak_mem_gib"
  }
}
