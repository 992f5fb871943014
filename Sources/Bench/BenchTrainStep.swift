import ArgumentParser
import Data
import Foundation
import Models
import Torch
import Train

/// `cxr bench train`: training steps per second of a ConvNeXt through the real loop (Lion, EMA,
/// BCE; bf16 autocast, channels_last and cuDNN's autotuner on CUDA, each set by the Trainer with
/// the defaults of `train:`) on one fixed batch already on the device, as
/// scripts/bench/gpu_train.py does for PyTorch; augmentation off on both sides.
struct BenchTrainStep: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Training images/s of a ConvNeXt (the GPU benchmark's cxr side; prints one JSON line).")
  @Option(help: "ConvNeXt architecture.") var arch = "convnext_base"
  @Option(help: "Image side.") var size = 512
  @Option(help: "Batch size.") var batch = 32
  @Option(help: "Timed steps.") var steps = 20
  @Option(help: "Untimed warm-up steps.") var warmup = 5
  @Option(help: "cpu, cuda or cuda:N.") var device = "cuda"

  final class FixedBatches: BatchSource, BatchIterator {
    let batch: Batch
    let total: Int
    var served = 0
    var stamps: [UInt64] = []
    init(_ batch: Batch, total: Int) { self.batch = batch; self.total = total }
    var batchesPerEpoch: Int { total }
    var findings: [String] { BenchModel.findings }
    func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator { self }
    func next() throws -> Batch? {
      stamps.append(DispatchTime.now().uptimeNanoseconds)
      guard served < total else { return nil }
      var b = batch
      b.index = served
      served += 1
      return b
    }
  }

  func run() throws {
    let dev = try Device(parsing: device)
    let model = try BenchModel.make(arch)
    let classes = BenchModel.findings.count
    var images = try Tensor.randn([batch, 1, size, size], device: dev)
    if dev.isCUDA { images = try images.contiguous(.channelsLast) }
    let targets = try Tensor.rand([batch, classes], device: dev).lt(0.3).to(dtype: .float32)
    let b = Batch(index: 0, ids: (0..<batch).map { "synthetic-\($0)" }, images: images, targets: targets,
                  mask: try Tensor.ones([batch, classes], device: dev))
    var o = TrainOptions()
    o.device = dev
    o.epochs = 1
    o.maxSteps = warmup + steps + 1  // the request for the last batch marks the end of the timed steps
    o.keepLast = 1
    o.augment = AugmentOptions()
    o.augment.horizontalFlip = 0; o.augment.verticalFlip = 0; o.augment.noise = 0; o.augment.affine = 0; o.augment.mix = 0
    let source = FixedBatches(b, total: warmup + steps + 1)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cxr-bench-train-\(getpid())")
    defer { try? FileManager.default.removeItem(at: dir) }
    let t = try Trainer(model: model, options: o, runDirectory: dir,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }))
    _ = try t.fit(train: source, tune: nil)
    // Request k+1 comes after step k finished (the loop reads the loss every step).
    let s = source.stamps
    guard s.count > warmup + steps else { throw ValidationError("the loop stopped early after \(s.count) batches") }
    let seconds = Double(s[warmup + steps] - s[warmup]) / 1e9
    try printJSONLine(TrainStepRecord(arch: model.config.arch, size: size, batch: batch, steps: steps,
                                      device: dev.description, stepMs: seconds / Double(steps) * 1000,
                                      imagesPerS: imagesPerSecond(steps * batch, seconds),
                                      peakMemGiB: try peakMemoryGiB(dev)))
  }
}

/// `cxr bench train-step`'s line (scripts/bench/gpu_train.py prints the PyTorch side's alike).
struct TrainStepRecord: Codable {
  var bench = "train", impl = "cxr"
  var arch: String, size: Int, batch: Int, steps: Int, device: String, stepMs: Double, imagesPerS: Double
  var peakMemGiB: Double
  enum CodingKeys: String, CodingKey {
    case bench, impl, arch, size, batch, steps, device, stepMs = "step_ms", imagesPerS = "images_per_s"
    case peakMemGiB = "peak_mem_gib"
  }
}
