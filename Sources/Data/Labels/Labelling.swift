import Foundation

/// Per-finding counts of labels as written (before the uncertainty policy).
public struct FindingCounts: Equatable, Sendable {
  public var positive = 0
  public var negative = 0
  public var uncertain = 0
  /// Blank: not mentioned (a negative target, but reported apart).
  public var missing = 0
  public init(positive: Int = 0, negative: Int = 0, uncertain: Int = 0, missing: Int = 0) {
    self.positive = positive
    self.negative = negative
    self.uncertain = uncertain
    self.missing = missing
  }
  mutating func add(_ v: LabelValue) {
    switch v {
    case .positive: positive += 1
    case .negative: negative += 1
    case .uncertain: uncertain += 1
    case .blank: missing += 1
    }
  }
}

/// A dataset's images joined with one schema's labels.
public struct Labelling: Sendable {
  /// Images that have labels, with targets after the schema's uncertainty policy.
  public var set: LabelledSet
  /// The labels as written, row-major like `set.targets` (for counts and reports).
  public var raw: [LabelValue]
  /// Images left out because the label file has no row for their study (or image).
  public var unlabelledImages: Int
  /// Distinct studies (or images, for image-keyed schemas) without a row.
  public var unlabelledStudies: Int
  /// Label rows that match no image of the dataset.
  public var unusedRows: Int
  /// For each image of `set`, its position in the dataset index's records.
  public var sourceIndices: [Int]

  /// Joins `index` with `table`. Images whose key has no row are excluded and counted
  /// (an unlabelled study is not a negative one).
  public init(index: DatasetIndex, table: LabelTable) {
    let join = table.join ?? index.labelJoin
    let nf = table.findings.count
    var records: [ImageRecord] = []
    var raw: [LabelValue] = []
    records.reserveCapacity(index.records.count)
    raw.reserveCapacity(index.records.count * nf)
    var missingKeys = Set<LabelKey>()
    var usedRows = [Bool](repeating: false, count: table.rowCount)
    var unlabelled = 0
    var sources: [Int] = []
    sources.reserveCapacity(index.records.count)
    var soft: [Float] = []
    for (i, r) in index.records.enumerated() {
      let key = DatasetIndex.labelKey(r, join: join, withSubject: table.keyedBySubject)
      guard let row = table.rowOfKey[key] else {
        unlabelled += 1
        missingKeys.insert(key)
        continue
      }
      usedRows[row] = true
      records.append(r)
      sources.append(i)
      raw.append(contentsOf: table.values[(row * nf)..<(row * nf + nf)])
      if let p = table.probabilities { soft.append(contentsOf: p[(row * nf)..<(row * nf + nf)]) }
    }
    let (hard, mask) = Labelling.apply(table.uncertainty, to: raw)
    // Soft labels: the probabilities are the targets (BCE takes any target in [0, 1]).
    let targets = table.probabilities != nil ? soft : hard
    set = LabelledSet(records: records, findings: table.findings, targets: targets, mask: mask)
    self.raw = raw
    unlabelledImages = unlabelled
    unlabelledStudies = missingKeys.count
    unusedRows = usedRows.lazy.filter { !$0 }.count
    sourceIndices = sources
  }

  /// Targets and loss mask for labels under a policy: positive -> 1, negative and blank -> 0,
  /// uncertain -> 1 (ones), 0 (zeros), or 0 with mask 0 (ignore).
  public static func apply(_ policy: UncertaintyPolicy, to raw: [LabelValue]) -> (targets: [Float], mask: [Float]) {
    var targets = [Float](repeating: 0, count: raw.count)
    var mask = [Float](repeating: 1, count: raw.count)
    for (i, v) in raw.enumerated() {
      switch v {
      case .positive: targets[i] = 1
      case .negative, .blank: break
      case .uncertain:
        switch policy {
        case .ones: targets[i] = 1
        case .zeros: break
        case .ignore: mask[i] = 0
        }
      }
    }
    return (targets, mask)
  }

  /// Counts per finding over the images at `indices` (all when nil).
  public func counts(_ indices: [Int]? = nil) -> [FindingCounts] {
    let nf = set.findings.count
    var out = [FindingCounts](repeating: FindingCounts(), count: nf)
    let rows = indices ?? Array(0..<set.count)
    for i in rows {
      for f in 0..<nf { out[f].add(raw[i * nf + f]) }
    }
    return out
  }
}
