import Foundation

/// What a dataset adapter found: its images, how label files join them, labels the dataset
/// carries itself (CANDID's masks, a manifest's label columns), reports, and notes on what
/// was left out and why.
public struct DatasetIndex: Sendable {
  public var name: String
  public var records: [ImageRecord]
  /// What label-file ids name for this dataset when a schema does not say.
  public var labelJoin: LabelJoin
  /// Labels that come with the dataset (e.g. CANDID masks), keyed by image id.
  public var builtInLabels: LabelTable?
  /// Free-text reports keyed like `labelJoin` (CANDID: SOPInstanceUID), for labelling.
  public var reports: [String: String]
  /// One line per thing worth knowing: rows skipped and why, encodings detected.
  public var notes: [String]

  public init(name: String, records: [ImageRecord], labelJoin: LabelJoin, builtInLabels: LabelTable? = nil,
              reports: [String: String] = [:], notes: [String] = []) {
    self.name = name
    self.records = records
    self.labelJoin = labelJoin
    self.builtInLabels = builtInLabels
    self.reports = reports
    self.notes = notes
  }

  /// The key a label row must have to label `record` under `join`.
  public static func labelKey(_ record: ImageRecord, join: LabelJoin, withSubject: Bool) -> LabelKey {
    LabelKey(subject: withSubject ? record.subjectID : nil, id: join == .study ? record.studyID : record.id)
  }
}
