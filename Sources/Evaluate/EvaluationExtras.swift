import Common
import Foundation

/// The parts of `Evaluation.run` beyond AUROC and AUPRC: operating points (thresholds chosen on
/// the tuning predictions, fixed ones, and ones read off the test ROC), calibration, and the
/// multiple-comparison adjustment of the comparison table.
extension Evaluation {
  static func check(_ options: EvaluationOptions, models: [Predictions]) throws {
    guard options.curveBandPoints == 0 || options.curveBandPoints >= 2 else {
      throw FileError("--curve-band-points must be 0 (no bands) or at least 2 (both ends of the curve), got \(options.curveBandPoints)")
    }
    guard options.calibrationBins >= 2 else {
      throw FileError("--calibration-bins must be at least 2 (the default is 10), got \(options.calibrationBins)")
    }
    for t in options.thresholds where !(t >= 0 && t <= 1) {
      throw FileError("--threshold must be a probability in [0, 1], got \(t); give one --threshold per fixed threshold, e.g. --threshold 0.5")
    }
    for t in options.testSpecificities where !(t >= 0 && t <= 1) {
      throw FileError("a specificity to read off the test ROC must be in [0, 1], got \(t)")
    }
    if !options.tuneReferences.isEmpty {
      for t in options.tunePredictions where options.tuneReferences[t.name] == nil && options.tuneReference == nil {
        throw FileError("tuning predictions '\(t.name)' (\(t.source)) have no tuning reference")
      }
      return
    }
    if options.tuneReference == nil, let first = options.tunePredictions.first {
      throw FileError("--tune-predictions \(first.name)=\(first.source) needs --tune-reference labels.csv: the tuning-set labels the operating points are chosen on")
    }
    guard let ref = options.tuneReference else { return }
    guard !options.tunePredictions.isEmpty else {
      throw FileError("--tune-reference \(ref.source) needs --tune-predictions NAME=preds.csv for every model: the tuning-set predictions of the same weights")
    }
    try checkUniqueNames(options.tunePredictions.map(\.name), option: "--tune-predictions")
    let names = Set(models.map(\.name))
    for t in options.tunePredictions where !names.contains(t.name) {
      throw FileError("--tune-predictions \(t.name)=\(t.source) names no model; the models (--predictions) are: \(models.map(\.name).joined(separator: ", "))")
    }
    let tuneNames = Set(options.tunePredictions.map(\.name))
    for m in models where !tuneNames.contains(m.name) {
      throw FileError("--tune-predictions has no file for model '\(m.name)' (\(m.source)); give --tune-predictions \(m.name)=tune_predictions.csv for every model (the tuning split's predictions of the same weights), or no --tune-predictions at all")
    }
  }

  /// Thresholds of `ThresholdRule.tuned` per model and finding, on the tuning cases (the ids that
  /// the model's tuning predictions and the tuning reference share). `[model: [finding: ...]]`.
  static func tuneThresholds(_ options: EvaluationOptions, models: [Predictions], findings: [String],
                             into result: inout EvaluationResult) throws -> [String: [String: [TunedThreshold]]] {
    guard options.tuneReference != nil || !options.tuneReferences.isEmpty else { return [:] }
    var tuned: [String: [String: [TunedThreshold]]] = [:]
    for model in models {
      guard let ref = options.tuneReferences[model.name] ?? options.tuneReference,
            let p = options.tunePredictions.first(where: { $0.name == model.name }) else {
        result.notes.append("model '\(model.name)' has no tuning predictions: its operating points are the fixed thresholds only")
        continue
      }
      let rowOf = Dictionary(uniqueKeysWithValues: p.ids.enumerated().map { ($1, $0) })
      let onlyPred = p.ids.filter { ref.row[$0] == nil }
      let onlyRef = ref.ids.filter { rowOf[$0] == nil }
      if !onlyPred.isEmpty {
        result.notes.append("\(onlyPred.count) id(s) of tuning predictions '\(p.name)' (\(p.source)) are not in the tuning reference (\(ref.source)) and were left out, e.g. \(sample(onlyPred))")
      }
      if !onlyRef.isEmpty {
        result.notes.append("\(onlyRef.count) id(s) of the tuning reference (\(ref.source)) have no tuning prediction in '\(p.name)' (\(p.source)) and were left out, e.g. \(sample(onlyRef))")
      }
      var perFinding: [String: [TunedThreshold]] = [:]
      for f in findings {
        guard let column = ref.columns[f] else {
          throw FileError("--tune-reference \(ref.source) has no finding '\(f)'; its findings are: \(ref.findings.joined(separator: ", "))")
        }
        guard let s = p.scores[f] else { throw FileError("tuning predictions '\(p.name)' (\(p.source)) have no column '\(f)'") }
        var scores: [Double] = [], labels: [Bool] = []
        for (r, id) in ref.ids.enumerated() {
          if let l = column[r], let i = rowOf[id] { scores.append(s[i]); labels.append(l) }
        }
        guard !scores.isEmpty else {
          throw FileError("tuning predictions '\(p.name)' (\(p.source)) share no id with --tune-reference \(ref.source) for '\(f)'; check that both list the tuning split's ids")
        }
        let roc = ROCPoints(scores: scores, labels: labels)
        guard roc.positives > 0, roc.negatives > 0 else {
          let only = roc.positives == 0 ? "negative" : "positive"
          result.notes.append("the tuning reference has only \(only) cases for '\(f)' among the \(scores.count) case(s) it shares with '\(p.name)': no threshold was chosen there")
          continue
        }
        perFinding[f] = ThresholdRule.tuned.map { rule in
          let k = roc.choose(rule)!
          return TunedThreshold(model: model.name, finding: f, rule: rule.name, threshold: roc.thresholds[k],
                                sensitivity: roc.sensitivity(k), specificity: roc.specificity(k), n: scores.count, nPos: roc.positives)
        }
        result.tunedThresholds += perFinding[f]!
      }
      tuned[model.name] = perFinding
    }
    return tuned
  }

  /// One model's operating points and calibration on one reference and finding, prepared before
  /// the bootstrap so that the AUROC's rounds (the same draws, shared by all models when they share
  /// the cases) serve them too.
  struct ThresholdPlan {
    var model: Int
    var scored: ScoredCases
    /// Nil when the scores are not probabilities.
    var calibration: CalibrationCases?
    /// Fixed-threshold rows (tuned, then fixed): rule, source, threshold, tuning sens/spec.
    var rules: [(name: String, source: ThresholdSource, threshold: Double, sens: Double?, spec: Double?)]
    var cuts: [Int]
    /// The bootstrap's per-round pass; its values are laid out as `RoundStatistics.width` says.
    var pass: RoundStatistics
  }

  /// Plans per model (nil where the model was not evaluated: one class only).
  static func planThresholds(finding f: String, reference: String, models: [String], cases: [(scores: [Double], labels: [Bool])],
                             rankings: [Ranking], valid: [Bool], options: EvaluationOptions,
                             tuned: [String: [String: [TunedThreshold]]], notes: inout [String]) -> [ThresholdPlan?] {
    cases.indices.map { m -> ThresholdPlan? in
      guard valid[m] else { return nil }
      let scored = ScoredCases(ranking: rankings[m], scores: cases[m].scores, labels: cases[m].labels)
      var rules: [(name: String, source: ThresholdSource, threshold: Double, sens: Double?, spec: Double?)] = []
      for t in tuned[models[m]]?[f] ?? [] { rules.append((t.rule, .tune, t.threshold, t.sensitivity, t.specificity)) }
      for t in options.thresholds { rules.append(("fixed", .fixed, t, nil, nil)) }
      let cuts = rules.map { scored.cut(atThreshold: $0.threshold) }
      var calibration: CalibrationCases? = CalibrationCases(scored)
      if !calibration!.scoresAreProbabilities {
        let lo = cases[m].scores.min()!, hi = cases[m].scores.max()!
        notes.append("scores of '\(models[m])' for '\(f)' run from \(lo) to \(hi), not probabilities in [0, 1]: calibration against '\(reference)' was not computed")
        calibration = nil
      }
      let pass = RoundStatistics(scored: scored, cuts: cuts, targets: options.testSpecificities,
                                 bins: calibration == nil ? nil : options.calibrationBins, gridPoints: options.curveBandPoints)
      return ThresholdPlan(model: m, scored: scored, calibration: calibration, rules: rules, cuts: cuts, pass: pass)
    }
  }

  /// The rows of `plan`: point estimates from the one-statistic-at-a-time code, CIs from the
  /// bootstrap rounds' values (`samples[metric]`).
  static func recordThresholds(_ p: ThresholdPlan, samples boot: [[Double]], finding f: String, reference: String, models: [String],
                               labels: [Bool], options: EvaluationOptions, into result: inout Part) {
    let targets = options.testSpecificities
    let bins = options.calibrationBins
    let perRule = OperatingPoints.metricNames.count
    let model = models[p.model]
    let n = labels.count, nPos = labels.filter { $0 }.count
    let sortedCuts = p.cuts.sorted()
    let c = p.scored.confusions(cuts: sortedCuts, specificityTargets: targets, weights: nil)
    func estimates(_ confusion: Confusion, _ offset: Int) -> [Estimate] {
      zip(OperatingPoints.metrics(confusion), 0..<perRule).map { value, j in
        let ci = boot.isEmpty ? nil : percentileInterval(boot[offset + j])
        return Estimate(value: value, ciLow: ci?.low, ciHigh: ci?.high)
      }
    }
    for (k, rule) in p.rules.enumerated() {
      let confusion = c.atCuts[sortedCuts.firstIndex(of: p.cuts[k])!]
      result.operatingPoints.append(OperatingPointRow(model: model, reference: reference, finding: f, rule: rule.name, chosenOn: rule.source,
                                                      threshold: rule.threshold, tuneSensitivity: rule.sens, tuneSpecificity: rule.spec,
                                                      confusion: confusion, metrics: estimates(confusion, k * perRule), n: n, nPos: nPos))
    }
    for (t, target) in targets.enumerated() {
      let at = c.atTargets[t]
      result.operatingPoints.append(OperatingPointRow(model: model, reference: reference, finding: f,
                                                      rule: ThresholdRule.specificity(atLeast: target).name, chosenOn: .test,
                                                      threshold: p.scored.threshold(forCut: at.cut), tuneSensitivity: nil, tuneSpecificity: nil,
                                                      confusion: at.confusion, metrics: estimates(at.confusion, (p.rules.count + t) * perRule),
                                                      n: n, nPos: nPos))
    }
    guard let cal = p.calibration else { return }
    let base = (p.rules.count + targets.count) * perRule
    let kinds: [(metric: String, strategy: BinStrategy?, value: Double)] = [
      ("brier", nil, cal.brier(weights: nil)), ("ece", .uniform, cal.ece(.uniform, bins: bins, weights: nil)),
      ("ece", .quantile, cal.ece(.quantile, bins: bins, weights: nil)),
    ]
    for (j, kind) in kinds.enumerated() {
      let ci = boot.isEmpty ? nil : percentileInterval(boot[base + j])
      result.calibration.append(CalibrationRow(model: model, reference: reference, finding: f, metric: kind.metric, strategy: kind.strategy,
                                               bins: kind.strategy == nil ? nil : bins, value: kind.value, ciLow: ci?.low, ciHigh: ci?.high,
                                               n: n, nPos: nPos))
    }
    for strategy in BinStrategy.allCases {
      for b in cal.reliability(strategy, bins: bins) {
        result.reliability.append(ReliabilityBin(model: model, reference: reference, finding: f, strategy: strategy, bin: b.bin,
                                                 lower: b.lower, upper: b.upper, count: b.count, meanPredicted: b.meanPredicted,
                                                 fractionPositive: b.fractionPositive))
      }
    }
  }

  /// The ROC and PR bands of `plan`: the grid read off the curve itself (every case once, through
  /// the same pass as the rounds) and the percentile interval of the rounds' values per point.
  static func bands(_ plan: ThresholdPlan, ranking: Ranking, samples: [[Double]]) -> (CurveBand?, CurveBand?) {
    let pass = plan.pass, points = pass.gridPoints
    guard points > 0 else { return (nil, nil) }
    let pos = plan.scored.labels.filter { $0 }.count
    var scratch = pass.makeScratch()
    var values = [Double](repeating: .nan, count: pass.width)
    [Int32](repeating: 1, count: ranking.count).withUnsafeBufferPointer { ones in
      values.withUnsafeMutableBufferPointer { out in
        _ = pass.areas(ranking, weights: ones, totalPos: pos, totalNeg: ranking.count - pos, scratch: &scratch, into: out)
      }
    }
    let xs = CurveGrid.xs(points)
    func band(_ offset: Int) -> CurveBand {
      var low: [Double] = [], high: [Double] = []
      for g in 0..<points {
        let ci = samples.isEmpty ? nil : percentileInterval(samples[offset + g])
        low.append(ci?.low ?? .nan); high.append(ci?.high ?? .nan)
      }
      return CurveBand(x: xs, estimate: Array(values[offset..<(offset + points)]), low: low, high: high)
    }
    return (band(pass.gridOffset), band(pass.gridOffset + points))
  }

  /// Holm's adjustment within each family: the pairwise comparisons of one reference and finding
  /// (every pair of models), separately for DeLong's p and the t-test's p.
  static func adjustForMultipleComparisons(_ comparisons: inout [Comparison]) {
    var families: [[Int]] = []
    var familyOf: [String: Int] = [:]
    for (i, c) in comparisons.enumerated() {
      let key = "\(c.reference)\u{0}\(c.finding)"
      if let k = familyOf[key] { families[k].append(i) } else { familyOf[key] = families.count; families.append([i]) }
    }
    for family in families {
      let delong = MultipleComparisons.holm(family.map { comparisons[$0].delongP })
      for (k, i) in family.enumerated() {
        comparisons[i].delongPHolm = delong[k]
        comparisons[i].holmFamilySize = family.count
      }
      let withT = family.filter { comparisons[$0].ttestP != nil }
      let t = MultipleComparisons.holm(withT.map { comparisons[$0].ttestP! })
      for (k, i) in withT.enumerated() { comparisons[i].ttestPHolm = t[k] }
    }
  }
}
