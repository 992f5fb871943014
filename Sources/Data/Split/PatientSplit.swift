import Common
import Foundation

/// The side of the split an image is on.
public enum SplitPart: String, Sendable, CaseIterable {
  case train
  case tune
}

/// A split of patients into train and tune: every image of a patient is on the same side,
/// so nothing the model tunes on was seen in training.
public struct PatientSplit: Equatable, Sendable {
  /// Subject id -> side.
  public var parts: [String: SplitPart]

  public init(parts: [String: SplitPart]) { self.parts = parts }

  /// Splits the patients of `records`: round(n * tuneFraction) patients go to tune. Within each
  /// stratum (all patients when `strata` is nil) the patients are sorted, shuffled with
  /// SplitMix64(seed), and the first ones take the stratum's tune places (its share of the
  /// total, by largest remainder). Strata are visited in sorted order with one generator.
  public static func make(records: [ImageRecord], tuneFraction: Double = 0.2, seed: UInt64,
                          strata: [String: String]? = nil) throws -> PatientSplit {
    guard tuneFraction >= 0, tuneFraction <= 1 else {
      throw FileError("split: the tune fraction must be between 0 and 1, got \(tuneFraction)")
    }
    var groups: [String: [String]] = [:]
    for subject in Set(records.map(\.subjectID)) {
      groups[strata?[subject] ?? "", default: []].append(subject)
    }
    // Tune places per stratum by largest remainder, so the strata add up to round(n * fraction)
    // even when each stratum is small.
    let keys = groups.keys.sorted()
    let total = Int((Double(groups.values.reduce(0) { $0 + $1.count }) * tuneFraction).rounded())
    let quotas = keys.map { Double(groups[$0]!.count) * tuneFraction }
    var places = quotas.map { Int($0.rounded(.down)) }
    let byRemainder = keys.indices.sorted { a, b in
      let ra = quotas[a] - Double(places[a]), rb = quotas[b] - Double(places[b])
      return ra != rb ? ra > rb : a < b
    }
    for k in byRemainder.prefix(max(0, total - places.reduce(0, +))) { places[k] += 1 }

    var rng = SplitMix64(seed: seed)
    var parts: [String: SplitPart] = [:]
    for (k, key) in keys.enumerated() {
      var subjects = groups[key]!.sorted()
      rng.shuffle(&subjects)
      for (i, s) in subjects.enumerated() { parts[s] = i < places[k] ? .tune : .train }
    }
    return PatientSplit(parts: parts)
  }

  /// Strata for `make`: per patient, which findings it has a positive target for (as a
  /// string of 0/1 per finding), so rare positives are shared out in proportion.
  public static func positiveStrata(_ set: LabelledSet) -> [String: String] {
    let nf = set.findings.count
    var bits: [String: [Bool]] = [:]
    for (i, r) in set.records.enumerated() {
      var b = bits[r.subjectID] ?? Array(repeating: false, count: nf)
      for f in 0..<nf where set.target(i, f) >= 0.5 && !set.isMasked(i, f) { b[f] = true }
      bits[r.subjectID] = b
    }
    return bits.mapValues { String($0.map { $0 ? "1" : "0" }) }
  }

  public func part(of record: ImageRecord) -> SplitPart? { parts[record.subjectID] }

  /// Indices of `records` on `side`, in order.
  public func indices(_ side: SplitPart, in records: [ImageRecord]) -> [Int] {
    records.indices.filter { parts[records[$0].subjectID] == side }
  }

  /// Writes `id,subject_id,study_id,split`, one row per record, atomically.
  public func write(_ records: [ImageRecord], to url: URL) throws {
    var w = CSVWriter(header: ["id", "subject_id", "study_id", "split"])
    for r in records {
      guard let p = parts[r.subjectID] else {
        throw FileError("split: patient \(r.subjectID) of image \(r.id) has no side; make the split from the same records")
      }
      w.append([r.id, r.subjectID, r.studyID, p.rawValue])
    }
    try w.write(to: url)
  }

  /// Reads a split file. A patient on both sides, or a side other than train/tune, is an
  /// error naming the file and line.
  public static func read(_ url: URL) throws -> (split: PatientSplit, rows: [(id: String, subject: String)]) {
    let t = try TableFile.read(url)
    let cID = try t.require("id")
    let cSubject = try t.require("subject_id")
    let cSplit = try t.require("split")
    var parts: [String: SplitPart] = [:]
    var firstLine: [String: Int] = [:]
    var rows: [(id: String, subject: String)] = []
    rows.reserveCapacity(t.count)
    for (r, row) in t.rows.enumerated() {
      let line = t.lines[r]
      let subject = row[cSubject]
      guard let side = SplitPart(rawValue: row[cSplit]) else {
        throw FileError("\(t.source):\(line): split '\(row[cSplit])' is not train or tune")
      }
      guard !subject.isEmpty else { throw FileError("\(t.source):\(line): subject_id is blank") }
      if let previous = parts[subject], previous != side {
        throw FileError("\(t.source):\(line): patient \(subject) is in \(side.rawValue) here but in \(previous.rawValue) at line \(firstLine[subject]!); a patient must be on one side only: fix the file or delete it to make a new split")
      }
      if parts[subject] == nil { firstLine[subject] = line }
      parts[subject] = side
      rows.append((row[cID], subject))
    }
    return (PatientSplit(parts: parts), rows)
  }

  /// The run folder's split: read from `url` when it exists (and checked against `records`),
  /// otherwise made with `make` and written there. `reused` says which happened.
  public static func loadOrMake(_ url: URL, records: [ImageRecord], tuneFraction: Double = 0.2, seed: UInt64,
                                strata: [String: String]? = nil) throws -> (split: PatientSplit, reused: Bool) {
    if FileManager.default.fileExists(atPath: url.path) { return (try load(url, checkedAgainst: records), true) }
    let split = try make(records: records, tuneFraction: tuneFraction, seed: seed, strata: strata)
    try split.write(records, to: url)
    return (split, false)
  }

  /// Reads a split file and checks it against `records` (see `check`).
  public static func load(_ url: URL, checkedAgainst records: [ImageRecord]) throws -> PatientSplit {
    let (split, rows) = try read(url)
    try split.check(records, rows: rows, source: url.path)
    return split
  }

  /// A reused split must cover every patient and agree on who each image belongs to.
  func check(_ records: [ImageRecord], rows: [(id: String, subject: String)], source: String) throws {
    var subjectOf: [String: String] = [:]
    for r in rows { subjectOf[r.id] = r.subject }
    for r in records {
      if let s = subjectOf[r.id], s != r.subjectID {
        throw FileError("\(source): image \(r.id) belongs to patient \(s) there but to \(r.subjectID) in the dataset; the split was made for other data: delete it to make a new split")
      }
      if parts[r.subjectID] == nil {
        throw FileError("\(source) does not place patient \(r.subjectID) (image \(r.id)); the split was made for other data: delete it to make a new split")
      }
    }
  }
}
