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
  model.setTraining(false)
  defer { model.setTraining(true) }
  let k = source.findings.count
  var scores = [[Double]](repeating: [], count: k), labels = [[Bool]](repeating: [], count: k)
  var lossSum = 0.0, counted = 0.0, images = 0
  try withNoGrad {
    let it = try source.makeIterator(epoch: 0, startingAt: 0)
    while let b = try it.next() {
      var x = try b.images.to(device, dtype: .float32)
      if channelsLast { x = try x.contiguous(.channelsLast) }
      let logits = try withAutocast(device, enabled: bf16) { try model(x) }.to(dtype: .float32)
      let y = try b.targets.to(device, dtype: .float32), m = try b.mask.to(device, dtype: .float32)
      let c = try m.sum().item()
      lossSum += try loss(logits, y, mask: m).item() * max(c, 1)
      counted += c
      let p = try logits.sigmoid().to(.cpu).toArray(Float.self)
      let t = try b.targets.to(.cpu, dtype: .float32).toArray(Float.self)
      let mm = try b.mask.to(.cpu, dtype: .float32).toArray(Float.self)
      let n = b.ids.count
      guard p.count == n * k else { throw TrainError("tuning batch: the model gave \(logits.shape) for \(n) images and \(k) findings") }
      for i in 0..<n { for j in 0..<k where mm[i * k + j] > 0 {
        scores[j].append(Double(p[i * k + j])); labels[j].append(t[i * k + j] >= 0.5)
      } }
      images += n
    }
  }
  var auroc: [String: Double?] = [:], auprc: [String: Double?] = [:]
  for (j, f) in source.findings.enumerated() {
    auroc[f] = Evaluate.auroc(scores: scores[j], labels: labels[j])
    auprc[f] = Evaluate.auprc(scores: scores[j], labels: labels[j])
  }
  return SplitMetrics(loss: counted > 0 ? lossSum / counted : 0, auroc: auroc, auprc: auprc, images: images)
}
