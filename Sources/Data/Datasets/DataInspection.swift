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
    out.append("dataset \(index.name): \(n(recs.count)) images, \(n(Set(recs.map(\.subjectID)).count)) patients, \(n(Set(recs.map(\.studyID)).count)) studies")
    for note in index.notes { out.append("  note: \(note)") }
    var sides: [(name: String, part: SplitPart?)] = [("all", nil)]
    if let split {
      sides += SplitPart.allCases.map { ($0.rawValue, $0) }
      out.append("split (\(splitOrigin)):")
      for part in SplitPart.allCases {
        var images = 0
        var patients = Set<String>()
        for r in recs where split.parts[r.subjectID] == part {
          images += 1
          patients.insert(r.subjectID)
        }
        out.append("  \(part.rawValue): \(n(images)) images, \(n(patients.count)) patients")
      }
    }
    for table in tables {
      let l = Labelling(index: index, table: table)
      out.append("schema \(table.schema) (\(table.source), uncertain -> \(table.uncertainty.rawValue)): \(n(l.set.count)) images labelled")
      if l.unlabelledImages > 0 {
        let unit = (table.join ?? index.labelJoin) == .study ? "studies" : "images"
        out.append("  excluded: \(n(l.unlabelledImages)) images whose \(n(l.unlabelledStudies)) \(unit) have no row")
      }
      if l.unusedRows > 0 { out.append("  \(n(l.unusedRows)) label rows match no image") }
      let width = max(8, table.findings.map(\.count).max() ?? 0)
      out.append("  " + pad("split", 6) + pad("finding", width + 2) + ["images", "patients", "positive", "negative", "uncertain", "missing"].map { lpad($0, 10) }.joined())
      let partOf = l.set.records.map { split?.parts[$0.subjectID] }
      for (name, part) in sides {
        let idx = part == nil ? Array(partOf.indices) : partOf.indices.filter { partOf[$0] == part }
        let patients = Set(idx.map { l.set.records[$0].subjectID }).count
        for (f, c) in l.counts(idx).enumerated() {
          let cells = [idx.count, patients, c.positive, c.negative, c.uncertain, c.missing].map { lpad(n($0), 10) }
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
