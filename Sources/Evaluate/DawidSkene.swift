import Common
import Foundation

/// Dawid and Skene (1979), binary: the labellers' sensitivity and specificity and each item's
/// posterior probability of being positive, estimated by EM from the labellers' labels alone.
///
/// Model: an item is positive with probability `prevalence`; labeller j calls a positive item
/// positive with probability `sensitivity[j]` and a negative one negative with probability
/// `specificity[j]`, independently of the other labellers given the truth. A missing label
/// (no row for the item, or an uncertain label that the schema's policy leaves out) says nothing.
///
/// The procedure, step for step (the numpy reference in the tests does the same):
/// 1. items no labeller labelled are left out of the fit (their posterior is the prevalence);
/// 2. initial posterior T_i = the share of item i's labels that are positive (the soft majority
///    vote, Dawid and Skene's own start: it picks the solution where labellers beat chance);
/// 3. each iteration: M-step (prevalence = mean T; sensitivity_j = sum of T over j's positive
///    labels / sum of T over j's labels; specificity alike with 1 - T and negative labels; all
///    clipped to [floor, 1 - floor] so a perfect labeller does not give log 0), then E-step
///    (T_i from Bayes' rule in log space) and the log-likelihood;
/// 4. stop after `maxIterations`, or when no rate (prevalence, a sensitivity or specificity)
///    moved by more than `tolerance` in an iteration (converged). The rates, not the
///    log-likelihood: near the optimum the log-likelihood stops changing in floating point
///    while the rates still move by 1e-8.
///
/// Items are grouped by their pattern of labels (at most 3^labellers patterns, a few thousand
/// for 7 labellers), so an iteration costs patterns x labellers, not items x labellers: the same
/// sums, in another order.
public enum DawidSkene {
  public struct Options: Sendable, Equatable {
    public var maxIterations = 1000
    /// The largest change of any rate in one iteration at which the fit has converged.
    public var tolerance = 1e-10
    /// Rates are clipped to [floor, 1 - floor].
    public var floor = 1e-9
    public init(maxIterations: Int = 1000, tolerance: Double = 1e-10, floor: Double = 1e-9) {
      self.maxIterations = maxIterations; self.tolerance = tolerance; self.floor = floor
    }
  }

  /// Whether the labels allowed an estimate of the labellers' rates.
  public enum Status: String, Sendable, Codable {
    case estimated
    /// Every item's labels agree: nothing tells a labeller's errors apart, so sensitivity and
    /// specificity are not estimable (nil); the consensus is the common label.
    case noDisagreement = "no_disagreement"
    /// No labeller called any item positive: sensitivity is undefined; every posterior is 0.
    case noPositives = "no_positives"
    /// No labeller called any item negative: specificity is undefined; every posterior is 1.
    case noNegatives = "no_negatives"
  }

  public struct Fit: Sendable {
    public var status: Status
    public var prevalence: Double
    /// Per labeller; nil where not estimable (see `status`).
    public var sensitivity: [Double?]
    public var specificity: [Double?]
    /// Per item: P(positive | labels).
    public var posterior: [Double]
    public var iterations: Int
    public var converged: Bool
    public var logLikelihood: Double
    /// Items that no labeller labelled (posterior = prevalence).
    public var unlabelledItems: Int
    /// Plain-language notes on anything a reader should know (degenerate input, a labeller
    /// worse than chance).
    public var notes: [String]
  }

  /// Fits one finding. `labels[j][i]`: labeller j's label of item i (nil: missing). Every
  /// labeller's column has the same length (the items).
  public static func fit(_ labels: [[Bool?]], labellers: [String], options: Options = Options()) throws -> Fit {
    let patterns = try Patterns(labels, labellers: labellers)
    var fit = patterns.fit(weights: nil, options: options)
    fit.notes = patterns.notes(for: fit, labellers: labellers)
    return fit
  }

  /// The items' labels grouped by pattern, reusable for bootstrap refits with case weights.
  public struct Patterns: Sendable {
    public let labellers: Int
    public let items: Int
    /// Pattern-major labels: 1 positive, 0 negative, -1 missing; `labellers` per pattern.
    let codes: [Int8]
    /// Item -> pattern (-1: the item has no label at all).
    let patternOfItem: [Int32]
    /// Items per pattern.
    let counts: [Double]

    public var patternCount: Int { counts.count }

    public init(_ labels: [[Bool?]], labellers names: [String]) throws {
      guard labels.count == names.count else {
        throw FileError("Dawid-Skene: \(labels.count) label columns for \(names.count) labeller names")
      }
      guard labels.count >= 3 else {
        throw FileError("Dawid-Skene needs at least 3 labellers of the same items to estimate their accuracy without a reference (got \(labels.count): \(names.joined(separator: ", "))); with fewer, a labeller's errors cannot be told from another's")
      }
      guard labels.count <= 40 else {
        throw FileError("Dawid-Skene: at most 40 labellers (got \(labels.count))")
      }
      let n = labels[0].count
      for (j, column) in labels.enumerated() where column.count != n {
        throw FileError("Dawid-Skene: labeller '\(names[j])' has \(column.count) labels, '\(names[0])' \(n); every labeller needs one (or a missing one) per item")
      }
      labellers = labels.count
      items = n
      var index: [UInt64: Int32] = [:]
      var codes: [Int8] = []
      var counts: [Double] = []
      var patternOfItem = [Int32](repeating: -1, count: n)
      var row = [Int8](repeating: -1, count: labels.count)
      for i in 0..<n {
        var code: UInt64 = 0
        var any = false
        for j in 0..<labels.count {
          let v = labels[j][i]
          row[j] = v.map { $0 ? 1 : 0 } ?? -1
          code = code &* 3 &+ UInt64(row[j] + 1)
          if v != nil { any = true }
        }
        guard any else { continue }
        if let p = index[code] {
          patternOfItem[i] = p
          counts[Int(p)] += 1
        } else {
          let p = Int32(counts.count)
          index[code] = p
          patternOfItem[i] = p
          counts.append(1)
          codes.append(contentsOf: row)
        }
      }
      guard !counts.isEmpty else {
        throw FileError("Dawid-Skene: none of the \(n) items has a label from any of \(names.joined(separator: ", "))")
      }
      self.codes = codes
      self.counts = counts
      self.patternOfItem = patternOfItem
    }

    /// The fit with items weighted by `weights` (bootstrap counts; nil: each item once).
    /// Notes are left empty (a bootstrap round needs only the numbers).
    public func fit(weights: UnsafeBufferPointer<Int32>?, options: Options) -> Fit {
      let L = labellers, P = counts.count
      var c = counts
      if let weights {
        c = [Double](repeating: 0, count: P)
        for i in 0..<items where patternOfItem[i] >= 0 { c[Int(patternOfItem[i])] += Double(weights[i]) }
      }
      // What the labels allow, on the items that count.
      var anyPositive = false, anyNegative = false, anyDisagreement = false
      var positiveItems = 0.0, labelledItems = 0.0
      for p in 0..<P where c[p] > 0 {
        var pos = 0, neg = 0
        for j in 0..<L { let v = codes[p * L + j]; if v == 1 { pos += 1 } else if v == 0 { neg += 1 } }
        if pos > 0 { anyPositive = true }
        if neg > 0 { anyNegative = true }
        if pos > 0 && neg > 0 { anyDisagreement = true }
        labelledItems += c[p]
        if pos > 0 { positiveItems += c[p] }
      }
      func expand(_ t: [Double], prior: Double) -> [Double] {
        patternOfItem.map { $0 >= 0 ? t[Int($0)] : prior }
      }
      let unlabelled = patternOfItem.lazy.filter { $0 < 0 }.count
      if !anyDisagreement {
        // Nothing to estimate: the posterior is the (common) label.
        let status: Status = !anyPositive ? .noPositives : !anyNegative ? .noNegatives : .noDisagreement
        let t = (0..<P).map { p in (0..<L).contains { codes[p * L + $0] == 1 } ? 1.0 : 0.0 }
        let prevalence = labelledItems > 0 ? positiveItems / labelledItems : 0
        return Fit(status: status, prevalence: prevalence,
                   sensitivity: [Double?](repeating: status == .noNegatives ? 1 : nil, count: L),
                   specificity: [Double?](repeating: status == .noPositives ? 1 : nil, count: L),
                   posterior: expand(t, prior: prevalence), iterations: 0, converged: true, logLikelihood: 0,
                   unlabelledItems: unlabelled, notes: [])
      }
      // 2. The soft majority vote.
      var t = [Double](repeating: 0, count: P)
      for p in 0..<P {
        var pos = 0, labelled = 0
        for j in 0..<L { let v = codes[p * L + j]; if v >= 0 { labelled += 1; if v == 1 { pos += 1 } } }
        t[p] = Double(pos) / Double(labelled)
      }
      let lo = options.floor, hi = 1 - options.floor
      func clip(_ x: Double) -> Double { min(max(x, lo), hi) }
      var prevalence = 0.0
      var sens = [Double](repeating: 0, count: L), spec = [Double](repeating: 0, count: L)
      var logLikelihood = -Double.infinity
      var lastPrevalence = Double.nan
      var lastSens = [Double](repeating: .nan, count: L), lastSpec = [Double](repeating: .nan, count: L)
      var iterations = 0, converged = false
      var tp = [Double](repeating: 0, count: L), tl = [Double](repeating: 0, count: L)
      var fn = [Double](repeating: 0, count: L), fl = [Double](repeating: 0, count: L)
      var logSens = [Double](repeating: 0, count: L), logMissPos = [Double](repeating: 0, count: L)
      var logSpec = [Double](repeating: 0, count: L), logFalsePos = [Double](repeating: 0, count: L)
      while iterations < options.maxIterations {
        iterations += 1
        // M-step.
        var total = 0.0, positive = 0.0
        for j in 0..<L { tp[j] = 0; tl[j] = 0; fn[j] = 0; fl[j] = 0 }
        for p in 0..<P {
          let w = c[p]
          if w == 0 { continue }
          let wt = w * t[p], wf = w * (1 - t[p])
          total += w; positive += wt
          for j in 0..<L {
            let v = codes[p * L + j]
            if v < 0 { continue }
            tl[j] += wt; fl[j] += wf
            if v == 1 { tp[j] += wt } else { fn[j] += wf }
          }
        }
        prevalence = clip(positive / total)
        for j in 0..<L {
          sens[j] = clip(tl[j] > 0 ? tp[j] / tl[j] : 0.5)
          spec[j] = clip(fl[j] > 0 ? fn[j] / fl[j] : 0.5)
          logSens[j] = log(sens[j]); logMissPos[j] = log(1 - sens[j])
          logSpec[j] = log(spec[j]); logFalsePos[j] = log(1 - spec[j])
        }
        // E-step.
        let logPrev = log(prevalence), logNotPrev = log(1 - prevalence)
        var ll = 0.0
        for p in 0..<P {
          var a = logPrev, b = logNotPrev
          for j in 0..<L {
            let v = codes[p * L + j]
            if v == 1 { a += logSens[j]; b += logFalsePos[j] } else if v == 0 { a += logMissPos[j]; b += logSpec[j] }
          }
          let m = max(a, b)
          let lse = m + log(exp(a - m) + exp(b - m))
          t[p] = 1 / (1 + exp(b - a))
          ll += c[p] * lse
        }
        logLikelihood = ll
        var change = abs(prevalence - lastPrevalence)
        for j in 0..<L { change = max(change, abs(sens[j] - lastSens[j]), abs(spec[j] - lastSpec[j])) }
        if iterations > 1 && change <= options.tolerance {
          converged = true
          break
        }
        lastPrevalence = prevalence; lastSens = sens; lastSpec = spec
      }
      return Fit(status: .estimated, prevalence: prevalence, sensitivity: sens.map { $0 }, specificity: spec.map { $0 },
                 posterior: expand(t, prior: prevalence), iterations: iterations, converged: converged,
                 logLikelihood: logLikelihood, unlabelledItems: unlabelled, notes: [])
    }

    func notes(for fit: Fit, labellers names: [String]) -> [String] {
      var notes: [String] = []
      switch fit.status {
      case .estimated: break
      case .noDisagreement:
        notes.append("every item's labels agree across \(names.joined(separator: ", ")): the labellers' sensitivity and specificity cannot be estimated; the consensus is the common label")
      case .noPositives:
        notes.append("no labeller called any item positive: sensitivity is undefined and every posterior is 0")
      case .noNegatives:
        notes.append("no labeller called any item negative: specificity is undefined and every posterior is 1")
      }
      if fit.status == .estimated && !fit.converged {
        notes.append("EM stopped after \(fit.iterations) iterations without converging (a rate still moved by more than the tolerance)")
      }
      for j in 0..<names.count {
        if let s = fit.sensitivity[j], let p = fit.specificity[j], s + p < 1 {
          notes.append("labeller '\(names[j])' comes out worse than chance (sensitivity \(String(format: "%.3f", s)) + specificity \(String(format: "%.3f", p)) < 1): its labels may be inverted, or the labellers share their errors")
        }
      }
      if fit.unlabelledItems > 0 {
        notes.append("\(fit.unlabelledItems) item(s) have no label from any labeller; their posterior is the prevalence")
      }
      return notes
    }
  }
}
