/// A 2x2 confusion matrix of a schema's labels against the human reading, possibly weighted
/// (bootstrap counts).
public struct Confusion: Sendable, Equatable {
  public var tp = 0, fp = 0, fn = 0, tn = 0
  public init(tp: Int = 0, fp: Int = 0, fn: Int = 0, tn: Int = 0) { self.tp = tp; self.fp = fp; self.fn = fn; self.tn = tn }
  public init(predicted: [Bool], truth: [Bool], weights: UnsafeBufferPointer<Int32>? = nil) {
    for i in truth.indices {
      let w = weights.map { Int($0[i]) } ?? 1
      switch (predicted[i], truth[i]) {
      case (true, true): tp += w
      case (true, false): fp += w
      case (false, true): fn += w
      case (false, false): tn += w
      }
    }
  }
  public var total: Int { tp + fp + fn + tn }

  private static func ratio(_ a: Int, _ b: Int) -> Double? { b > 0 ? Double(a) / Double(b) : nil }
  public var accuracy: Double? { Confusion.ratio(tp + tn, total) }
  public var sensitivity: Double? { Confusion.ratio(tp, tp + fn) }
  public var specificity: Double? { Confusion.ratio(tn, tn + fp) }
  public var ppv: Double? { Confusion.ratio(tp, tp + fp) }
  public var npv: Double? { Confusion.ratio(tn, tn + fn) }
  /// 2TP / (2TP + FP + FN); nil when there is no positive on either side.
  public var f1: Double? { Confusion.ratio(2 * tp, 2 * tp + fp + fn) }

  public static let metricNames = ["accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"]
  public var metrics: [Double?] { [accuracy, sensitivity, specificity, ppv, npv, f1] }
}

/// Gwet's AC1 between two raters on a binary item (Gwet 2008):
/// AC1 = (pa - pe) / (1 - pe), pa the observed agreement, pe = 2 pi (1 - pi) with pi the mean
/// of the two raters' positive rates.
public func gwetAC1(_ a: [Bool], _ b: [Bool], weights: UnsafeBufferPointer<Int32>? = nil) -> Double? {
  var agree = 0, total = 0, positives = 0
  for i in a.indices {
    let w = weights.map { Int($0[i]) } ?? 1
    total += w
    if a[i] == b[i] { agree += w }
    positives += (a[i] ? w : 0) + (b[i] ? w : 0)
  }
  guard total > 0 else { return nil }
  let pa = Double(agree) / Double(total)
  let pi = Double(positives) / Double(2 * total)
  let pe = 2 * pi * (1 - pi)
  return (pa - pe) / (1 - pe)  // pe <= 0.5, so never divides by zero
}
