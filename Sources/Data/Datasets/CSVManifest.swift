import Common
import Foundation

/// Any other dataset: a CSV listing one image per row with its patient and study, and
/// optionally an id, a view and label columns (CheXpert-style values 1, 0, -1 or blank).
/// Relative paths are taken from the manifest's folder.
public struct CSVManifest: Sendable {
  public var file: URL
  public var pathColumn: String
  public var patientColumn: String
  public var studyColumn: String
  /// The image id column; when the file has none the path as written is the id.
  public var idColumn: String
  public var viewColumn: String
  /// Findings whose labels the manifest carries, read as a built-in schema named `manifest`.
  public var labelFindings: [String]
  public var uncertainty: UncertaintyPolicy

  public init(file: URL, pathColumn: String = "path", patientColumn: String = "patient",
              studyColumn: String = "study", idColumn: String = "id", viewColumn: String = "view",
              labelFindings: [String] = [], uncertainty: UncertaintyPolicy = .ones) {
    self.file = file
    self.pathColumn = pathColumn
    self.patientColumn = patientColumn
    self.studyColumn = studyColumn
    self.idColumn = idColumn
    self.viewColumn = viewColumn
    self.labelFindings = labelFindings
    self.uncertainty = uncertainty
  }

  public func index() throws -> DatasetIndex {
    let table = try TableFile.read(file)
    let cPath = try table.require(pathColumn)
    let cPatient = try table.require(patientColumn)
    let cStudy = try table.require(studyColumn)
    let cID = table.index(of: idColumn)
    let cView = table.index(of: viewColumn)
    let base = file.deletingLastPathComponent()
    var records: [ImageRecord] = []
    records.reserveCapacity(table.count)
    var lineOfID: [String: Int] = [:]
    for (r, row) in table.rows.enumerated() {
      let line = table.lines[r]
      for (name, c) in [(pathColumn, cPath), (patientColumn, cPatient), (studyColumn, cStudy)]
      where row[c].trimmingCharacters(in: .whitespaces).isEmpty {
        throw FileError("\(table.source):\(line): column '\(name)' is blank; every image needs a path, a patient and a study")
      }
      let written = row[cPath]
      let path = written.hasPrefix("/") ? written : base.appendingPathComponent(written).standardizedFileURL.path
      let id = cID.map { row[$0] } ?? written
      if let first = lineOfID.updateValue(line, forKey: id) {
        throw FileError("\(table.source):\(line): image id '\(id)' is listed again (first at line \(first)); ids must be unique")
      }
      let view = cView.map { row[$0] }.flatMap { $0.isEmpty ? nil : $0 }
      records.append(ImageRecord(id: id, path: path, subjectID: row[cPatient], studyID: row[cStudy], view: view))
    }
    var labels: LabelTable?
    if !labelFindings.isEmpty {
      let schema = LabelSchema(name: "manifest", file: file, format: .chexpert,
                               idColumns: [cID == nil ? pathColumn : idColumn], uncertainty: uncertainty, join: .image)
      labels = try schema.read(table: table, findings: labelFindings)
    }
    return DatasetIndex(name: file.deletingPathExtension().lastPathComponent, records: records, labelJoin: .study,
                        builtInLabels: labels)
  }
}
