import Foundation
import Train
import Models
import Torch

/// One benchmark run of the loop on synthetic data (used by `cxr bench epochs` and
/// scripts/bench/train.sh): epochs of training without tuning evaluation, timed per epoch
/// from `metrics.jsonl`, with resident memory per epoch.
public enum TrainBenchmark {
  public struct Settings {
    public var model = "small-cnn"
    public var size = 64
    public var images = 512
    public var batch = 32
    public var epochs = 3
    public var width = 32
    public var seed: UInt64 = 0
    public init() {}
  }

  /// Models to benchmark: the small conv net of the tests, or any ConvNeXt size (1 channel).
  public static func makeModel(_ name: String, classes: Int, width: Int, seed: UInt64) throws -> Classifier {
    if name == "small-cnn" { return try SmallConvNet(inChannels: 1, width: width, classes: classes, seed: seed) }
    guard name.hasPrefix("convnext") else {
      throw TrainError("unknown benchmark model '\(name)': use small-cnn or a ConvNeXt size such as convnext_atto")
    }
    return try ConvNeXt(ConvNeXtConfig.named(name, numClasses: classes, inChannels: 1), generator: Generator(seed: seed))
  }

  /// `cxr bench epochs`'s record (scripts/bench/train.sh reads it): per-epoch seconds, CPU
  /// seconds and resident memory, from the loop's `metrics.jsonl`.
  public struct Record: Codable {
    public var side = "cxr"
    public var world: Int, model: String, size: Int, images: Int, batch: Int, threads: Int
    public var epochSeconds: [Double], epochCPUSeconds: [Double], rssMiB: [Double], peakRSSMiB: [Double]
    enum CodingKeys: String, CodingKey {
      case side, world, model, size, images, batch, threads, epochSeconds = "epoch_seconds"
      case epochCPUSeconds = "epoch_cpu_seconds", rssMiB = "rss_mib", peakRSSMiB = "peak_rss_mib"
    }
  }

  /// The fields of a `metrics.jsonl` epoch line this benchmark reads (the others are ignored).
  struct EpochLine: Decodable {
    var seconds: Double, cpuSeconds: Double, rssMiB: Double, peakRSSMiB: Double
    enum CodingKeys: String, CodingKey {
      case seconds, cpuSeconds = "cpu_seconds", rssMiB = "rss_mib", peakRSSMiB = "peak_rss_mib"
    }
  }

  /// Runs the benchmark; the record on rank 0 (or without data parallelism), nil on other ranks.
  public static func run(_ s: Settings, runDirectory: URL, parallel: DataParallel? = nil) throws -> Record? {
    let split = try SyntheticSplit(count: s.images, size: s.size, findings: 2, batchSize: s.batch, seed: s.seed)
    let model = try makeModel(s.model, classes: 2, width: s.width, seed: s.seed)
    var o = TrainOptions()
    o.epochs = s.epochs; o.seed = s.seed; o.keepLast = 1
    o.augment = AugmentOptions()   // the documented defaults, the same in the reference script
    let t = try Trainer(model: model, options: o, runDirectory: runDirectory,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }), parallel: parallel)
    _ = try t.fit(train: split, tune: nil)
    guard parallel?.isLeader ?? true else { return nil }  // rank 0 alone logs the epochs
    let lines = try String(contentsOf: runDirectory.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    let decoder = JSONDecoder()
    let recs = try lines.map { try decoder.decode(EpochLine.self, from: Data($0.utf8)) }
    return Record(world: parallel?.worldSize ?? 1, model: s.model, size: s.size, images: s.images, batch: s.batch,
                  threads: Runtime.threads, epochSeconds: recs.map(\.seconds), epochCPUSeconds: recs.map(\.cpuSeconds),
                  rssMiB: recs.map(\.rssMiB), peakRSSMiB: recs.map(\.peakRSSMiB))
  }
}
