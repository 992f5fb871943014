import Common
import Foundation

/// One line of metrics.csv.
public struct MetricRow: Codable, Equatable, Sendable {
  public var model: String
  public var reference: String
  public var finding: String
  public var metric: String
  public var value: Double
  public var ciLow: Double?
  public var ciHigh: Double?
  public var n: Int
  public var nPos: Int
}

/// Two models on the same reference, finding and cases: DeLong's test and a paired bootstrap
/// of the AUROC difference.
public struct Comparison: Codable, Equatable, Sendable {
  public var reference: String
  public var finding: String
  public var modelA: String
  public var modelB: String
  public var aurocA: Double
  public var aurocB: Double
  public var difference: Double
  public var ciLow: Double?
  public var ciHigh: Double?
  public var delongZ: Double?
  public var delongP: Double
  public var n: Int
  public var nPos: Int
  /// DeLong's p after Holm's adjustment over the comparisons of this reference and finding
  /// (the `holmFamilySize` pairs of its models).
  public var delongPHolm: Double?
  /// The study's paired t-test over the paired bootstrap rounds' AUROCs (see `PairedTTest` for why
  /// DeLong is the better-founded test); nil without at least two rounds.
  public var ttestT: Double?
  public var ttestP: Double?
  public var ttestPHolm: Double?
  public var holmFamilySize: Int = 0
}

/// Curves of one model on one reference and finding (for the plots).
public struct CurveSet: Sendable {
  public var model: String
  public var reference: String
  public var finding: String
  public var curves: Curves
  /// Pointwise 95 % bootstrap bands (the evaluation's rounds) on a fixed grid; nil when not computed.
  public var rocBand: CurveBand?
  public var prBand: CurveBand?
}

/// What made one model's predictions, from the predictions file's header (nil: not stated there).
public struct PredictionSource: Sendable, Equatable {
  public var file: String
  public var weights: String?
  public var weightsKind: String?
  public var weightsSHA256: String?
  public var madeBy: String?

  /// "best (ema weights by ema.auroc.mean = 0.91 at epoch 4): /run/truth/best.safetensors
  /// (SHA-256 1a2b3c4d5e6f…)", or that the file does not say.
  var weightsText: String {
    guard let weights else { return "weights not stated in the file" }
    var t = weightsKind.map { "\($0): \(weights)" } ?? weights
    if let sha = weightsSHA256 { t += " (SHA-256 \(sha.prefix(12))…)" }
    return t
  }
}

/// A curve read on a fixed grid (`CurveGrid`): the point estimate at each x and its pointwise
/// percentile interval over the bootstrap rounds (NaN where no round defines it).
public struct CurveBand: Sendable {
  public var x: [Double]
  public var estimate: [Double]
  public var low: [Double]
  public var high: [Double]
}

public struct EvaluationResult: Sendable {
  public var models: [String]
  public var references: [String]
  public var findings: [String]
  public var rows: [MetricRow]
  public var comparisons: [Comparison]
  public var curves: [CurveSet]
  /// Things a reader must know (ids on one side only, one-class findings), in order found.
  public var notes: [String]
  public var rounds: Int
  public var seed: UInt64
  /// Operating points on the test cases: thresholds from the tuning predictions, fixed ones, and
  /// ones read off the test ROC (flagged `test`).
  public var operatingPoints: [OperatingPointRow] = []
  /// The thresholds chosen on the tuning predictions, per model and finding.
  public var tunedThresholds: [TunedThreshold] = []
  /// Where the tuning labels came from (nil: no tuning predictions given).
  public var tuneSource: String?
  public var fixedThresholds: [Double] = []
  /// Specificities at which sensitivity is read off the test ROC.
  public var testSpecificities: [Double] = []
  public var calibration: [CalibrationRow] = []
  public var reliability: [ReliabilityBin] = []
  public var calibrationBins: Int = 10
  /// The models' training histories, for the training curves (empty: none given).
  public var training: [TrainingCurves] = []
  /// What made each model's predictions (file, weights, SHA-256), by model name.
  public var predictionSources: [String: PredictionSource] = [:]
  /// Where each reference's labels came from, by reference name.
  public var referenceSources: [String: String] = [:]
  /// Grad-CAM overlays for report.html (set by whoever computed them; Saliency.swift renders them).
  public var saliency: [Saliency.Figure] = []
  /// Subgroup rows (attribute = value against its complement), see `Subgroups`.
  public var subgroups: [SubgroupRow] = []

  public func row(model: String, reference: String, finding: String, metric: String) -> MetricRow? {
    rows.first { $0.model == model && $0.reference == reference && $0.finding == finding && $0.metric == metric }
  }
}

/// What `Evaluation.run` computes besides AUROC and AUPRC.
public struct EvaluationOptions: Sendable {
  /// Tuning-set predictions of the same weights, one per model (matched by name), and the tuning
  /// labels: the thresholds of `ThresholdRule.tuned` are chosen there, never on the test set.
  public var tunePredictions: [Predictions]
  public var tuneReference: ReferenceLabels?
  /// A tuning reference per model (by name), where each model has a tuning split of its own
  /// (`cxr run`: each schema's classifier on its schema's tuning split, with its labels).
  public var tuneReferences: [String: ReferenceLabels] = [:]
  /// Fixed thresholds in [0, 1] (e.g. 0.5).
  public var thresholds: [Double]
  /// Bins of the expected calibration error and the reliability diagrams.
  public var calibrationBins: Int
  /// Specificities at which sensitivity is read off each test ROC (test-chosen, optimistic).
  public var testSpecificities: [Double]
  /// Grid points of the ROC and PR curves' pointwise bootstrap bands (0: no bands).
  public var curveBandPoints: Int = 101
  /// Training histories to draw (cxr run passes each classifier's metrics.jsonl).
  public var trainingCurves: [TrainingCurves] = []
  /// Per-image attributes to stratify by (chest tube, view position, a user CSV's columns).
  public var subgroups: [SubgroupAttribute] = []
  /// The fewest cases a subgroup and its complement each need to be reported.
  public var minimumSubgroupCases = Subgroups.defaultMinimumCases

  public init(tunePredictions: [Predictions] = [], tuneReference: ReferenceLabels? = nil, thresholds: [Double] = [],
              calibrationBins: Int = 10, testSpecificities: [Double] = [0.90, 0.95]) {
    self.tunePredictions = tunePredictions; self.tuneReference = tuneReference; self.thresholds = thresholds
    self.calibrationBins = calibrationBins; self.testSpecificities = testSpecificities
  }
}

public enum Evaluation {
  /// Every model against every reference, per finding.
  public static func run(predictions: [Predictions], references: [ReferenceLabels], findings: [String],
                         rounds: Int = 1000, seed: UInt64 = 0, options: EvaluationOptions = EvaluationOptions()) throws -> EvaluationResult {
    guard !predictions.isEmpty else { throw FileError("give at least one --predictions NAME=file.csv") }
    guard !references.isEmpty else { throw FileError("give at least one --reference NAME=labels.csv") }
    try checkUniqueNames(predictions.map(\.name), option: "--predictions")
    try checkUniqueNames(references.map(\.name), option: "--reference")
    try check(options, models: predictions)
    var subgroupNotes: [String] = []
    if !options.subgroups.isEmpty {
      try Subgroups.check(options.subgroups, testIDs: Set(references.flatMap(\.ids)), notes: &subgroupNotes)
    }
    var result = EvaluationResult(models: predictions.map(\.name), references: references.map(\.name), findings: findings,
                                  rows: [], comparisons: [], curves: [], notes: [], rounds: rounds, seed: seed)
    result.fixedThresholds = options.thresholds
    result.testSpecificities = options.testSpecificities
    result.calibrationBins = options.calibrationBins
    result.training = options.trainingCurves
    for p in predictions {
      result.predictionSources[p.name] = PredictionSource(file: p.source, weights: p.header("weights"), weightsKind: p.header("weights_kind"),
                                                          weightsSHA256: p.header("weights_sha256"), madeBy: p.header("provenance"))
    }
    for r in references { result.referenceSources[r.name] = r.source }
    result.notes += subgroupNotes
    result.tuneSource = options.tuneReference?.source
      ?? (options.tuneReferences.isEmpty ? nil : "each model's own tuning split and labels (" + options.tuneReferences.keys.sorted().map { "\($0): \(options.tuneReferences[$0]!.source)" }.joined(separator: "; ") + ")")
    let tuned = try tuneThresholds(options, models: predictions, findings: findings, into: &result)
    // Per model and reference: the prediction row of each reference row (-1: none). Ids on one
    // side only are counted once per model and reference, the first few shown.
    var predictionRow: [[[Int32]]] = []  // [reference][model][reference row]
    for ref in references {
      var perModel: [[Int32]] = []
      for p in predictions {
        let rowOf = Dictionary(uniqueKeysWithValues: p.ids.enumerated().map { ($1, Int32($0)) })
        let map = ref.ids.map { rowOf[$0] ?? -1 }
        perModel.append(map)
        let onlyPred = p.ids.filter { ref.row[$0] == nil }
        let onlyRef = ref.ids.indices.filter { map[$0] < 0 }.map { ref.ids[$0] }
        if !onlyPred.isEmpty {
          result.notes.append("\(onlyPred.count) id(s) of predictions '\(p.name)' (\(p.source)) are not in reference '\(ref.name)' (\(ref.source)) and were left out, e.g. \(sample(onlyPred))")
        }
        if !onlyRef.isEmpty {
          result.notes.append("\(onlyRef.count) id(s) of reference '\(ref.name)' (\(ref.source)) have no prediction in '\(p.name)' (\(p.source)) and were left out, e.g. \(sample(onlyRef))")
        }
      }
      predictionRow.append(perModel)
    }
    // Every missing column is known before any work, in the order the work would meet it.
    for ref in references {
      for f in findings {
        guard ref.columns[f] != nil else {
          throw FileError("reference '\(ref.name)' (\(ref.source)) has no finding '\(f)'; its findings are: \(ref.findings.joined(separator: ", "))")
        }
        for p in predictions where p.scores[f] == nil {
          throw FileError("predictions '\(p.name)' (\(p.source)) have no column '\(f)'")
        }
      }
    }
    // A finding's references are resampled together, a few at a time (see `bootstrap`); what
    // each (reference, finding) adds to the result is kept apart and joined in the usual order
    // (reference by reference), so the outputs do not depend on the grouping.
    var parts = references.map { _ in findings.map { _ in Part() } }
    for (k, f) in findings.enumerated() {
      for chunk in stride(from: 0, to: references.count, by: ReferenceLanes.capacity) {
        let refs = Array(chunk..<min(chunk + ReferenceLanes.capacity, references.count))
        var prepared: [Prepared] = []
        for r in refs {
          prepared.append(try prepare(finding: f, reference: references[r], column: references[r].columns[f]!, predictions: predictions,
                                      predictionRow: predictionRow[r], rounds: rounds, seed: seed, options: options, tuned: tuned,
                                      into: &parts[r][k]))
        }
        let together = sharingCases(prepared)
        let found = subgroups(prepared, together: together, options: options, predictions: predictions, rounds: rounds, seed: seed)
        for (i, r) in refs.enumerated() {
          parts[r][k].subgroups += found[i].rows
          parts[r][k].notes.insert(contentsOf: found[i].notes, at: prepared[i].subgroupNotesAt)
        }
        let resampled = bootstrap(prepared, together: together, rounds: rounds, seed: seed)
        for (i, r) in refs.enumerated() {
          finish(prepared[i], resampled: resampled[i], predictions: predictions, rounds: rounds, seed: seed, options: options,
                 into: &parts[r][k])
        }
      }
    }
    for part in parts.joined() { part.append(to: &result) }
    adjustForMultipleComparisons(&result.comparisons)
    return result
  }

  /// What one (reference, finding) adds to the result.
  struct Part {
    var rows: [MetricRow] = [], comparisons: [Comparison] = [], curves: [CurveSet] = [], notes: [String] = []
    var operatingPoints: [OperatingPointRow] = [], calibration: [CalibrationRow] = [], reliability: [ReliabilityBin] = []
    var subgroups: [SubgroupRow] = []

    func append(to result: inout EvaluationResult) {
      result.rows += rows; result.comparisons += comparisons; result.curves += curves; result.notes += notes
      result.operatingPoints += operatingPoints; result.calibration += calibration; result.reliability += reliability
      result.subgroups += subgroups
    }
  }

  /// Per model: the reference rows (in reference order, so models covering the same ids line
  /// up exactly) that have a label for this finding and a prediction.
  struct Joined { var rows: [Int32]; var scores: [Double]; var labels: [Bool] }

  /// A (reference, finding) joined, ranked and planned, ready to be resampled.
  struct Prepared {
    var finding: String
    var reference: ReferenceLabels
    var joined: [Joined]
    var sameCases: Bool
    var rankings: [Ranking]
    var valid: [Bool]
    var plans: [ThresholdPlan?]
    /// Where in the part's notes the subgroups' notes go.
    var subgroupNotesAt: Int
    /// One batch for all models, drawn with the other references of the finding that share its
    /// cases: all models share the cases and hold both classes.
    var resampledTogether: Bool { sameCases && valid.allSatisfy { $0 } }
  }

  /// The rounds' areas and statistics per model ([model][round], [model][metric][round]).
  struct Resampled { var areas: [[Areas]]; var statistics: [[[Double]]] }

  private static func prepare(finding f: String, reference ref: ReferenceLabels, column: [Bool?],
                              predictions: [Predictions], predictionRow: [[Int32]], rounds: Int, seed: UInt64,
                              options: EvaluationOptions, tuned: [String: [String: [TunedThreshold]]],
                              into result: inout Part) throws -> Prepared {
    var joined: [Joined] = []
    for (p, map) in zip(predictions, predictionRow) {
      let s = p.scores[f]!  // checked in `run`
      var j = Joined(rows: [], scores: [], labels: [])
      for r in column.indices {
        if let l = column[r], map[r] >= 0 { j.rows.append(Int32(r)); j.scores.append(s[Int(map[r])]); j.labels.append(l) }
      }
      joined.append(j)
    }
    for (p, j) in zip(predictions, joined) where j.rows.isEmpty {
      throw FileError("predictions '\(p.name)' (\(p.source)) share no id with reference '\(ref.name)' (\(ref.source)) for '\(f)'; check that both use the same ids (e.g. SOPInstanceUID)")
    }
    let sameCases = joined.dropFirst().allSatisfy { $0.rows == joined[0].rows }
    let rankings = joined.map { Ranking(scores: $0.scores, labels: $0.labels) }
    var valid: [Bool] = []
    for (m, j) in joined.enumerated() {
      let pos = j.labels.filter { $0 }.count
      let ok = pos > 0 && pos < j.labels.count
      valid.append(ok)
      if !ok {
        let only = pos == 0 ? "negative" : "positive"
        result.notes.append("reference '\(ref.name)' has only \(only) cases for '\(f)' among the \(j.labels.count) case(s) it shares with '\(predictions[m].name)': AUROC and AUPRC are undefined there and were not computed")
      }
    }
    // The subgroups come later (`subgroups`), with other references' rounds; their notes go here.
    let subgroupNotesAt = result.notes.count
    let plans = planThresholds(finding: f, reference: ref.name, models: predictions.map(\.name),
                               cases: joined.map { ($0.scores, $0.labels) }, rankings: rankings, valid: valid, options: options,
                               tuned: tuned, notes: &result.notes)
    return Prepared(finding: f, reference: ref, joined: joined, sameCases: sameCases, rankings: rankings, valid: valid, plans: plans,
                    subgroupNotesAt: subgroupNotesAt)
  }

  /// The prepared references that are resampled together: those whose models all share the same
  /// cases, with both classes (`resampledTogether`), grouped by their case ids (the same ids in
  /// the same order: the same draws, scores and subgroups). Others are left out.
  static func sharingCases(_ prepared: [Prepared]) -> [[Int]] {
    var groups: [(ids: [String], members: [Int])] = []
    for (i, p) in prepared.enumerated() where p.resampledTogether {
      let ids = p.joined[0].rows.map { p.reference.ids[Int($0)] }
      if let g = groups.firstIndex(where: { $0.ids == ids }) { groups[g].members.append(i) } else { groups.append((ids, [i])) }
    }
    return groups.map(\.members)
  }

  /// The bootstrap of each prepared (reference, finding); the operating points and calibration
  /// ride on the same rounds. The references of each group of `together` (`sharingCases`, the
  /// usual case) are drawn together, one draw per round serving all of them, and each model's
  /// passes over them run as one; the numbers are those of each reference resampled alone.
  /// Otherwise one batch per model.
  static func bootstrap(_ prepared: [Prepared], together groups: [[Int]], rounds: Int, seed: UInt64) -> [Resampled] {
    var out = prepared.map { p in Resampled(areas: Array(repeating: [], count: p.joined.count), statistics: Array(repeating: [], count: p.joined.count)) }
    for group in groups {
      let b = Bootstrap.areas(labelSets: group.map { prepared[$0].joined[0].labels }, rankings: group.map { prepared[$0].rankings },
                              also: group.map { prepared[$0].plans.map { $0!.pass } }, scored: group.map { prepared[$0].plans.map { $0!.scored } },
                              rounds: rounds, seed: seed)
      for (i, b) in zip(group, b) { out[i] = Resampled(areas: b.areas, statistics: b.statistics) }
    }
    for (i, p) in prepared.enumerated() where !p.resampledTogether {
      for m in p.joined.indices where p.valid[m] {
        let b = Bootstrap.areas(labels: p.joined[m].labels, rankings: [p.rankings[m]], also: [p.plans[m]!.pass], rounds: rounds, seed: seed)
        out[i].areas[m] = b.areas[0]
        out[i].statistics[m] = b.statistics[0]
      }
    }
    return out
  }

  /// The subgroup rows (and notes) of each prepared (reference, finding). The references of each
  /// group of `together` (`sharingCases`) are resampled together
  /// (`Subgroups.bootstrap(labelSets:...)`), with the same numbers as alone.
  static func subgroups(_ prepared: [Prepared], together groups: [[Int]], options: EvaluationOptions, predictions: [Predictions],
                        rounds: Int, seed: UInt64) -> [(rows: [SubgroupRow], notes: [String])] {
    guard !options.subgroups.isEmpty else { return prepared.map { _ in ([], []) } }
    let caseIDs = prepared.map { p in p.joined.map { $0.rows.map { p.reference.ids[Int($0)] } } }
    var resampled = [[[[[[Double]]]]]?](repeating: nil, count: prepared.count)
    for group in groups where group.count > 1 {
      let groupings = Subgroups.groupings(options.subgroups, ids: caseIDs[group[0]][0])
      let b = Subgroups.bootstrap(labelSets: group.map { prepared[$0].joined[0].labels }, rankings: group.map { prepared[$0].rankings },
                                  groupings: groupings, rounds: rounds, seed: seed)
      for (i, b) in zip(group, b) { resampled[i] = b }
    }
    return prepared.indices.map { i in
      let p = prepared[i]
      var notes: [String] = []
      let rows = Subgroups.evaluate(attributes: options.subgroups, minimumCases: options.minimumSubgroupCases, reference: p.reference.name,
                                    finding: p.finding, models: predictions.map(\.name), caseIDs: caseIDs[i], labels: p.joined.map(\.labels),
                                    rankings: p.rankings, valid: p.valid, sameCases: p.sameCases, rounds: rounds, seed: seed,
                                    resampled: resampled[i], notes: &notes)
      return (rows, notes)
    }
  }

  private static func finish(_ prepared: Prepared, resampled: Resampled, predictions: [Predictions], rounds: Int, seed: UInt64,
                             options: EvaluationOptions, into result: inout Part) {
    let f = prepared.finding, ref = prepared.reference, joined = prepared.joined, sameCases = prepared.sameCases
    let rankings = prepared.rankings, valid = prepared.valid, plans = prepared.plans
    let boots = resampled.areas, samples = resampled.statistics
    // The curves and their bands (a percentile interval per grid point and round set) of every
    // model at once.
    let curveSets = joined.indices.map { $0 }.concurrentMap { m -> CurveSet? in
      guard valid[m] else { return nil }
      var set = CurveSet(model: predictions[m].name, reference: ref.name, finding: f, curves: rankings[m].curves())
      if let plan = plans[m] { (set.rocBand, set.prBand) = bands(plan, ranking: rankings[m], samples: samples[m]) }
      return set
    }
    for m in joined.indices where valid[m] {
      let point = rankings[m].areas()!
      let n = joined[m].labels.count, nPos = joined[m].labels.filter { $0 }.count
      for (metric, value, samples) in [("auroc", point.auroc, boots[m].map(\.auroc)),
                                        ("auprc", point.auprc, boots[m].map(\.auprc))] {
        let ci = percentileInterval(samples)
        result.rows.append(MetricRow(model: predictions[m].name, reference: ref.name, finding: f, metric: metric,
                                     value: value, ciLow: ci?.low, ciHigh: ci?.high, n: n, nPos: nPos))
      }
      result.curves.append(curveSets[m]!)
    }
    for case let plan? in plans {
      recordThresholds(plan, samples: samples[plan.model], finding: f, reference: ref.name, models: predictions.map(\.name),
                       labels: joined[plan.model].labels, options: options, into: &result)
    }
    // Paired comparisons on the cases all models share.
    guard predictions.count > 1 else { return }
    var common = joined[0]
    var pairedBoots = boots
    var commonScores = joined.map(\.scores)
    if !sameCases {
      var keep = Set(joined[0].rows)
      for j in joined.dropFirst() { keep.formIntersection(j.rows) }
      common = Joined(rows: [], scores: [], labels: [])
      for (i, r) in joined[0].rows.enumerated() where keep.contains(r) {
        common.rows.append(r); common.labels.append(joined[0].labels[i])
      }
      commonScores = joined.map { j in
        var byRow: [Int32: Double] = [:]
        for (i, r) in j.rows.enumerated() { byRow[r] = j.scores[i] }
        return common.rows.map { byRow[$0]! }
      }
      let pos = common.labels.filter { $0 }.count
      guard pos > 0, pos < common.labels.count else {
        result.notes.append("models were not compared on '\(ref.name)' / '\(f)': the \(common.rows.count) case(s) all of them share do not hold both classes")
        return
      }
      result.notes.append("models were compared on '\(ref.name)' / '\(f)' over the \(common.rows.count) case(s) all of them share")
      pairedBoots = Bootstrap.areas(labels: common.labels, rankings: commonScores.map { Ranking(scores: $0, labels: common.labels) },
                                    rounds: rounds, seed: seed)
    } else if !valid[0] {
      return
    }
    let nPos = common.labels.filter { $0 }.count
    // Both classes are present here, so every model has components.
    let components = sameCases ? rankings.map { DeLong.Components(ranking: $0)! }  // their sorts reused
                               : commonScores.map { DeLong.Components(scores: $0, labels: common.labels)! }
    for a in 0..<predictions.count {
      for b in (a + 1)..<predictions.count {
        let d = DeLong.test(components[a], components[b])
        let diffs = zip(pairedBoots[a], pairedBoots[b]).map { $0.auroc - $1.auroc }
        let ci = percentileInterval(diffs)
        let t = PairedTTest(pairedBoots[a].map(\.auroc), pairedBoots[b].map(\.auroc))
        result.comparisons.append(Comparison(reference: ref.name, finding: f, modelA: predictions[a].name, modelB: predictions[b].name,
                                             aurocA: d.aucA, aurocB: d.aucB, difference: d.difference,
                                             ciLow: ci?.low, ciHigh: ci?.high, delongZ: d.z, delongP: d.p,
                                             n: common.labels.count, nPos: nPos, ttestT: t?.t, ttestP: t?.p))
      }
    }
  }

  static func sample(_ ids: [String], count: Int = 5) -> String {
    ids.prefix(count).map { "'\($0)'" }.joined(separator: ", ") + (ids.count > count ? ", ..." : "")
  }

  static func checkUniqueNames(_ names: [String], option: String) throws {
    var seen = Set<String>()
    for n in names where !seen.insert(n).inserted {
      throw FileError("\(option) name '\(n)' is given twice; give each file its own NAME")
    }
  }
}
