import Common
import Foundation

/// `metrics.jsonl`: one JSON record per line, Codable (`EpochRecord`, `StopRecord`), keys
/// sorted. JSON has no NaN: every number that is not finite is written as null.
struct MetricsLog {
  let url: URL

  func append<R: Encodable>(_ record: R) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var line = try enc.encode(record)
    line.append(0x0A)
    let fm = FileManager.default
    if !fm.fileExists(atPath: url.path) { _ = fm.createFile(atPath: url.path, contents: nil) }
    let h = try FileHandle(forWritingTo: url)
    defer { try? h.close() }
    try h.seekToEnd()
    try h.write(contentsOf: line)
  }

  /// On resume, drops records written after the checkpoint so the log matches the weights: stop
  /// records after its step, and epoch records of epochs it has not completed (a kill between an
  /// epoch's record and its checkpoint must not leave that epoch logged twice).
  func truncate(after position: TrainPosition) throws {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
    struct Head: Decodable { var type: String?; var epoch: Int?; var step: Int? }
    let kept = text.split(separator: "\n").filter { line in
      guard let h = try? JSONDecoder().decode(Head.self, from: Data(line.utf8)) else { return false }
      if h.type == "epoch", let e = h.epoch { return e <= position.epoch }
      guard let s = h.step else { return true }
      return s <= position.step
    }
    try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: url)
  }
}

/// A number for JSON: nil when not finite.
func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }

/// The tuning split's metrics of one set of weights, as logged.
struct SplitRecord: Codable, Equatable {
  var loss: Double?
  var auroc: [String: Double?]
  var auprc: [String: Double?]
  var aurocMean: Double?
  var auprcMean: Double?
  var images: Int
  enum CodingKeys: String, CodingKey {
    case loss, auroc, auprc, images
    case aurocMean = "auroc_mean"
    case auprcMean = "auprc_mean"
  }
  /// Every key, null for a missing number (synthesized Encodable would leave it out).
  func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(loss, forKey: .loss); try c.encode(auroc, forKey: .auroc); try c.encode(auprc, forKey: .auprc)
    try c.encode(aurocMean, forKey: .aurocMean); try c.encode(auprcMean, forKey: .auprcMean); try c.encode(images, forKey: .images)
  }
  init(_ m: SplitMetrics) {
    loss = finite(m.loss)
    auroc = m.auroc.mapValues { finite($0) }
    auprc = m.auprc.mapValues { finite($0) }
    aurocMean = finite(m.meanAUROC)
    auprcMean = finite(m.meanAUPRC)
    images = m.images
  }
}

struct SelectionRecord: Codable, Equatable {
  var metric: String
  var value: Double?
  var improved: Bool
  var best: Double?
  func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(metric, forKey: .metric); try c.encode(value, forKey: .value)
    try c.encode(improved, forKey: .improved); try c.encode(best, forKey: .best)
  }
  enum CodingKeys: String, CodingKey { case metric, value, improved, best }
  init(metric: String, value: Double?, improved: Bool, best: Double?) {
    self.metric = metric; self.value = finite(value); self.improved = improved; self.best = finite(best)
  }
}

/// One epoch's line of `metrics.jsonl`.
struct EpochRecord: Codable, Equatable {
  var type = "epoch"
  var epoch: Int
  var step: Int
  var trainLoss: Double?
  var trainImages: Int
  var lr: Double?
  var seconds: Double?
  var cpuSeconds: Double?
  var imagesPerSecond: Double?
  var raw: SplitRecord?
  var ema: SplitRecord?
  var selection: SelectionRecord?
  var rssMiB: Double?
  var peakRSSMiB: Double?
  var skippedBatches = 0
  enum CodingKeys: String, CodingKey {
    case type, epoch, step, lr, seconds, raw, ema, selection
    case trainLoss = "train_loss"
    case trainImages = "train_images"
    case cpuSeconds = "cpu_seconds"
    case imagesPerSecond = "images_per_s"
    case rssMiB = "rss_mib"
    case peakRSSMiB = "peak_rss_mib"
    case skippedBatches = "skipped_batches"
  }
  /// Every key, null for a missing number or split (synthesized Encodable would leave it out).
  func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(type, forKey: .type); try c.encode(epoch, forKey: .epoch); try c.encode(step, forKey: .step)
    try c.encode(trainLoss, forKey: .trainLoss); try c.encode(trainImages, forKey: .trainImages); try c.encode(lr, forKey: .lr)
    try c.encode(seconds, forKey: .seconds); try c.encode(cpuSeconds, forKey: .cpuSeconds)
    try c.encode(imagesPerSecond, forKey: .imagesPerSecond)
    if let raw { try c.encode(raw, forKey: .raw) }
    if let ema { try c.encode(ema, forKey: .ema) }
    if let selection { try c.encode(selection, forKey: .selection) }
    try c.encode(rssMiB, forKey: .rssMiB); try c.encode(peakRSSMiB, forKey: .peakRSSMiB)
    try c.encode(skippedBatches, forKey: .skippedBatches)
  }
  init(epoch: Int, step: Int, trainLoss: Double?, trainImages: Int, lr: Double, seconds: Double, cpuSeconds: Double,
       imagesPerSecond: Double) {
    self.epoch = epoch; self.step = step; self.trainLoss = finite(trainLoss); self.trainImages = trainImages
    self.lr = finite(lr); self.seconds = finite(seconds); self.cpuSeconds = finite(cpuSeconds)
    self.imagesPerSecond = finite(imagesPerSecond)
  }
}

/// The line a stop (signal, max_steps) adds.
struct StopRecord: Codable, Equatable {
  var type = "stop"
  var step: Int
  var epoch: Int
  var reason: String
}
