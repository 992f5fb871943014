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

  /// Returns one JSON-ready record: per-epoch seconds, images/s and resident memory.
  public static func run(_ s: Settings, runDirectory: URL, parallel: DataParallel? = nil) throws -> [String: Any] {
    let split = try SyntheticSplit(count: s.images, size: s.size, findings: 2, batchSize: s.batch, seed: s.seed)
    let model = try makeModel(s.model, classes: 2, width: s.width, seed: s.seed)
    var o = TrainOptions()
    o.epochs = s.epochs; o.seed = s.seed; o.keepLast = 1
    o.augment = AugmentOptions()   // the documented defaults, the same in the reference script
    let t = try Trainer(model: model, options: o, runDirectory: runDirectory,
                        progress: ProgressReporter(live: false, interval: 1e9, write: { _ in }), parallel: parallel)
    _ = try t.fit(train: split, tune: nil)
    guard parallel?.isLeader ?? true else { return [:] }  // rank 0 alone logs the epochs
    let lines = try String(contentsOf: runDirectory.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    let recs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    return ["side": "cxr", "world": parallel?.worldSize ?? 1, "model": s.model, "size": s.size, "images": s.images, "batch": s.batch,
            "threads": Runtime.threads,
            "epoch_seconds": recs.map { $0["seconds"] as! Double },
            "epoch_cpu_seconds": recs.map { $0["cpu_seconds"] as! Double },
            "rss_mib": recs.map { $0["rss_mib"] as! Double },
            "peak_rss_mib": recs.map { $0["peak_rss_mib"] as! Double }]
  }
}
