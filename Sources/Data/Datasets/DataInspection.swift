import Foundation

/// The dry-run report of `cxr inspect data`: per split and per schema, images, patients and
/// label counts, plus what the adapter left out and the bad files found.
public struct DataInspection: Sendable {
  public var index: DatasetIndex
  /// One table per schema (a dataset's built-in labels count as one).
  public var tables: [LabelTable]
  public var split: PatientSplit?
  /// How the split came about, e.g. `made with seed 0, tune 20 %` or the file it was read from.
  public var splitOrigin: String
  /// Problems found by `FileCheck.scan`; nil when files were not checked.
  public var badFiles: [FileCheck.Finding]?
  /// How many bad files are listed by name.
  public var listLimit: Int

  public init(index: DatasetIndex, tables: [LabelTable], split: PatientSplit?, splitOrigin: String = "",
              badFiles: [FileCheck.Finding]?, listLimit: Int = 20) {
    self.index = index
    self.tables = tables
    self.split = split
    self.splitOrigin = splitOrigin
    self.badFiles = badFiles
    self.listLimit = listLimit
  }

  public func render() -> String {
    var out: [String] = []
    let recs = index.records
    // Patients as dense numbers, so the counts below index arrays instead of hashing strings.
    var numberOf = [String: Int](minimumCapacity: recs.count / 2)
    let patientOf = recs.map { r -> Int in
      if let k = numberOf[r.subjectID] { return k }
      numberOf[r.subjectID] = numberOf.count
      return numberOf.count - 1
    }
    var sideOfPatient = [SplitPart?](repeating: nil, count: numberOf.count)
    if let split { for (s, k) in numberOf { sideOfPatient[k] = split.parts[s] } }
    /// Of `images` (dataset positions), the positions in that list on `side`, and their patients.
    func tally(_ images: [Int], _ side: SplitPart?) -> (images: [Int], patients: Int) {
      var seen = [Bool](repeating: false, count: numberOf.count)
      var kept: [Int] = []
      kept.reserveCapacity(images.count)
      var patients = 0
      for (position, i) in images.enumerated() where side == nil || sideOfPatient[patientOf[i]] == side {
        kept.append(position)
        if !seen[patientOf[i]] { seen[patientOf[i]] = true; patients += 1 }
      }
      return (kept, patients)
    }

    let all = Array(recs.indices)
    out.append("dataset \(index.name): \(n(recs.count)) images, \(n(numberOf.count)) patients, \(n(Set(recs.map(\.studyID)).count)) studies")
    for note in index.notes { out.append("  note: \(note)") }
    var sides: [(name: String, part: SplitPart?)] = [("all", nil)]
    if split != nil {
      sides += SplitPart.allCases.map { ($0.rawValue, $0) }
      out.append("split (\(splitOrigin)):")
      for part in SplitPart.allCases {
        let t = tally(all, part)
        out.append("  \(part.rawValue): \(n(t.images.count)) images, \(n(t.patients)) patients")
      }
    }
    for table in tables {
      let l = Labelling(index: index, table: table)
      out.append("schema \(table.schema) (\(table.source), uncertain -> \(table.uncertainty.rawValue)): \(n(l.set.count)) images labelled")
      if l.unlabelledImages > 0 {
        if (table.join ?? index.labelJoin) == .study {
          out.append("  excluded: \(n(l.unlabelledImages)) images whose \(n(l.unlabelledStudies)) studies have no row")
        } else {
          out.append("  excluded: \(n(l.unlabelledImages)) images that have no row")
        }
      }
      if l.unusedRows > 0 { out.append("  \(n(l.unusedRows)) label rows match no image") }
      let width = max(8, table.findings.map(\.count).max() ?? 0)
      out.append("  " + pad("split", 6) + pad("finding", width + 2) + ["images", "patients", "positive", "negative", "uncertain", "missing"].map { lpad($0, 10) }.joined())
      for (name, part) in sides {
        let t = tally(l.sourceIndices, part)
        for (f, c) in l.counts(t.images).enumerated() {
          let cells = [t.images.count, t.patients, c.positive, c.negative, c.uncertain, c.missing].map { lpad(n($0), 10) }
          out.append("  " + pad(name, 6) + pad(table.findings[f], width + 2) + cells.joined())
        }
      }
    }
    if let badFiles {
      out.append("bad files: \(n(badFiles.count)) of \(n(recs.count)) checked")
      for b in badFiles.prefix(listLimit) { out.append("  \(b.problem.rawValue): \(b.record.path)") }
      if badFiles.count > listLimit { out.append("  ... and \(n(badFiles.count - listLimit)) more") }
    } else {
      out.append("bad files: not checked")
    }
    return out.joined(separator: "\n") + "\n"
  }

  private func n(_ v: Int) -> String {
    var s = String(v)
    var i = s.count - 3
    while i > 0 { s.insert(",", at: s.index(s.startIndex, offsetBy: i)); i -= 3 }
    return s
  }
  private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
  private func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? " " + s : String(repeating: " ", count: w - s.count) + s }
}
