import Data
import Evaluate
import Foundation
import Torch

/// Tuning-split results for one set of weights.
public struct SplitMetrics: Equatable, Sendable {
  /// Masked BCE, mean over counted labels.
  public var loss: Double
  /// Per finding; nil when a class is absent among the counted labels.
  public var auroc: [String: Double?]
  public var auprc: [String: Double?]
  public var images: Int

  static func mean(_ d: [String: Double?]) -> Double? {
    let v = d.values.compactMap { $0 }
    return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
  }
  public var meanAUROC: Double? { Self.mean(auroc) }
  public var meanAUPRC: Double? { Self.mean(auprc) }

  func value(_ m: SelectionMetric) -> Double? {
    switch m.kind {
    case .loss: return loss
    case .auroc: return m.finding.map { auroc[$0] ?? nil } ?? meanAUROC
    case .auprc: return m.finding.map { auprc[$0] ?? nil } ?? meanAUPRC
    }
  }
}

/// Runs `model` over every batch of `source` (epoch 0 order, no augmentation) and scores it.
public func evaluateTuning(_ model: Classifier, on source: BatchSource, device: Device, bf16: Bool,
                     channelsLast: Bool, loss: MaskedBCE) throws -> SplitMetrics {
  score(try collectTuning(model, on: source, shard: .whole, device: device, bf16: bf16, channelsLast: channelsLast, loss: loss),
        findings: source.findings)
}

/// The scores, targets, masks and loss sums of `shard`'s batches of `source`.
func collectTuning(_ model: Classifier, on source: BatchSource, shard: Shard, device: Device, bf16: Bool,
                   channelsLast: Bool, loss: MaskedBCE) throws -> TuningShard {
  model.setTraining(false)
  defer { model.setTraining(true) }
  let k = source.findings.count
  var out = TuningShard()
  try withNoGrad {
    let it = try source.makeIterator(epoch: 0, startingAt: 0, shard: shard)
    var next = 0
    while let b = try it.next() {
      let index = b.index >= 0 ? b.index : next
      next = index + 1
      let n = b.ids.count
      guard n > 0 else { continue }
      var x = try b.images.to(device, dtype: .float32)
      if channelsLast { x = try x.contiguous(.channelsLast) }
      let logits = try withAutocast(device, enabled: bf16) { try model(x) }.to(dtype: .float32)
      let y = try b.targets.to(device, dtype: .float32), m = try b.mask.to(device, dtype: .float32)
      let c = try m.sum().item()
      let l = try loss(logits, y, mask: m).item() * max(c, 1)
      let p = try logits.sigmoid().to(.cpu).toArray(Float.self)
      guard p.count == n * k else { throw TrainError("tuning batch: the model gave \(logits.shape) for \(n) images and \(k) findings") }
      out.batches.append((index, l, c, p, try b.targets.to(.cpu, dtype: .float32).toArray(Float.self),
                          try b.mask.to(.cpu, dtype: .float32).toArray(Float.self), n))
    }
  }
  return out
}

/// The metrics of collected batches, summed in batch order.
func score(_ s: TuningShard, findings: [String]) -> SplitMetrics {
  let k = findings.count
  var scores = [[Double]](repeating: [], count: k), labels = [[Bool]](repeating: [], count: k)
  var lossSum = 0.0, counted = 0.0, images = 0
  for b in s.batches {
    lossSum += b.lossSum
    counted += b.counted
    for i in 0..<b.n { for j in 0..<k where b.m[i * k + j] > 0 {
      scores[j].append(Double(b.p[i * k + j])); labels[j].append(b.t[i * k + j] >= 0.5)
    } }
    images += b.n
  }
  var auroc: [String: Double?] = [:], auprc: [String: Double?] = [:]
  for (j, f) in findings.enumerated() {
    auroc[f] = Evaluate.auroc(scores: scores[j], labels: labels[j])
    auprc[f] = Evaluate.auprc(scores: scores[j], labels: labels[j])
  }
  return SplitMetrics(loss: counted > 0 ? lossSum / counted : 0, auroc: auroc, auprc: auprc, images: images)
}
