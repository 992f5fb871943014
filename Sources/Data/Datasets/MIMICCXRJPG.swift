import Common
import Foundation

/// MIMIC-CXR-JPG 2.x as PhysioNet distributes it: `files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg`
/// under `root`, and a metadata CSV (gzipped or not) read by column name.
public struct MIMICCXRJPG: Sendable {
  public var root: URL
  /// The metadata file; nil means `mimic-cxr-2.0.0-metadata.csv.gz` (or `.csv`) under root.
  public var metadata: URL?
  /// ViewPosition values kept; the study used the frontal views PA and AP. Empty keeps all.
  public var views: Set<String>
  /// The official split file (`dicom_id, study_id, subject_id, split`), to keep only some parts.
  public var officialSplit: URL?
  /// Parts of the official split to keep (e.g. `train`, `validate`); empty keeps every listed image.
  public var officialParts: Set<String>

  public static let metadataNames = ["mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv"]

  public init(root: URL, metadata: URL? = nil, views: Set<String> = ["PA", "AP"],
              officialSplit: URL? = nil, officialParts: Set<String> = []) {
    self.root = root
    self.metadata = metadata
    self.views = views
    self.officialSplit = officialSplit
    self.officialParts = officialParts
  }

  public func index() throws -> DatasetIndex {
    guard let metaURL = metadata ?? TableFile.firstExisting(Self.metadataNames, in: root) else {
      throw FileError("\(root.path) has no \(Self.metadataNames.joined(separator: " or ")); give the metadata file's path or the MIMIC-CXR-JPG root folder")
    }
    let meta = try TableFile.read(metaURL, columns: ["dicom_id", "subject_id", "study_id", "ViewPosition"])
    let cDicom = try meta.require("dicom_id")
    let cSubject = try meta.require("subject_id")
    let cStudy = try meta.require("study_id")
    let cView = try meta.require("ViewPosition")

    var keepIDs: Set<String>?
    var notes: [String] = []
    if let officialSplit {
      let split = try TableFile.read(officialSplit, columns: ["dicom_id", "split"])
      let sDicom = try split.require("dicom_id")
      let sPart = try split.require("split")
      var keep = Set<String>(minimumCapacity: split.count)
      for row in split.rows where officialParts.isEmpty || officialParts.contains(row[sPart]) {
        keep.insert(row[sDicom])
      }
      keepIDs = keep
    }

    let files = root.appendingPathComponent("files").path
    var records: [ImageRecord] = []
    records.reserveCapacity(meta.count)
    var lineOfID = [String: Int](minimumCapacity: meta.count)
    var skippedViews: [String: Int] = [:]
    var notInSplit = 0
    for (r, row) in meta.rows.enumerated() {
      let line = meta.lines[r]
      let view = row[cView]
      if !views.isEmpty && !views.contains(view) {
        skippedViews[view.isEmpty ? "(blank)" : view, default: 0] += 1
        continue
      }
      let dicom = row[cDicom], subject = row[cSubject], study = row[cStudy]
      guard !dicom.isEmpty else {
        throw FileError("\(meta.source):\(line): dicom_id is blank; fix or remove that row")
      }
      guard subject.utf8.count >= 2, subject.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
        throw FileError("\(meta.source):\(line): subject_id '\(subject)' is not a number like 10000032; is this the MIMIC-CXR-JPG metadata file?")
      }
      guard !study.isEmpty, study.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
        throw FileError("\(meta.source):\(line): study_id '\(study)' is not a number like 50414267; is this the MIMIC-CXR-JPG metadata file?")
      }
      if let keepIDs, !keepIDs.contains(dicom) { notInSplit += 1; continue }
      if let first = lineOfID.updateValue(line, forKey: dicom) {
        throw FileError("\(meta.source):\(line): dicom_id \(dicom) is listed again (first at line \(first)); remove the duplicate row")
      }
      let path = "\(files)/p\(subject.prefix(2))/p\(subject)/s\(study)/\(dicom).jpg"
      records.append(ImageRecord(id: dicom, path: path, subjectID: subject, studyID: study, view: view))
    }
    if !skippedViews.isEmpty {
      let parts = skippedViews.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
      notes.append("skipped \(skippedViews.values.reduce(0, +)) images of other views (\(parts.joined(separator: ", ")))")
    }
    if let officialSplit, notInSplit > 0 {
      let parts = officialParts.isEmpty ? "" : " parts \(officialParts.sorted().joined(separator: ", ")) of"
      notes.append("skipped \(notInSplit) images not in the\(parts) official split \(officialSplit.lastPathComponent)")
    }
    return DatasetIndex(name: "mimic-cxr-jpg", records: records, labelJoin: .study, notes: notes)
  }
}
