import Foundation

/// Learning rate per optimizer step. The study used a constant rate; warmup and cosine are options.
public enum LRSchedule: Equatable, Sendable {
  case constant
  /// Linear warmup from 0 over `warmupSteps`, then cosine decay to `minLR` at `totalSteps`
  /// (0: the loop sets it to epochs x optimizer steps per epoch).
  case warmupCosine(warmupSteps: Int, totalSteps: Int, minLR: Double)

  /// The rate for 0-based step `step`.
  public func lr(base: Double, step: Int) -> Double {
    switch self {
    case .constant:
      return base
    case let .warmupCosine(warmup, total, minLR):
      if step < warmup { return base * Double(step + 1) / Double(warmup) }
      let span = max(total - warmup, 1)
      let t = min(Double(step - warmup) / Double(span), 1)
      return minLR + (base - minLR) * 0.5 * (1 + cos(.pi * t))
    }
  }
}
