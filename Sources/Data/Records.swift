import Foundation

// The indexing half of the data layer, in the order a run uses it (all plain values, no
// global state; the experiment layer builds them from its YAML):
//
//   let index = try MIMICCXRJPG(root: root).index()          // or CANDIDPTX, CSVManifest
//   let table = try LabelSchema(name: "chexpert", file: labels, format: .chexpert,
//                               uncertainty: .ones).read(findings: ["Pneumothorax", "Fracture"])
//   let labelled = Labelling(index: index, table: table)     // .set: LabelledSet; counts
//   // Split the dataset's patients (not one schema's labelled subset), so that every schema
//   // trains and tunes on the same patients:
//   let (split, _) = try PatientSplit.loadOrMake(run.appendingPathComponent("split.csv"),
//                                                records: index.records, seed: seed)
//   let train = labelled.set.subset(split.indices(.train, in: labelled.set.records))

/// One image of a dataset, as an adapter found it. Plain values: the loader decodes `path`,
/// the split groups by `subjectID`, label schemas join on `studyID` (or on `id`).
public struct ImageRecord: Hashable, Sendable {
  /// Unique within the dataset: MIMIC `dicom_id`, CANDID SOPInstanceUID, manifest `id` (or path).
  public var id: String
  /// Absolute path of the image file.
  public var path: String
  /// The patient; the split never puts one patient on both sides.
  public var subjectID: String
  /// The study (one report); labels from report-based schemas are per study.
  public var studyID: String
  /// View position as the source gave it (PA, AP, LATERAL ...), nil when unknown.
  public var view: String?

  public init(id: String, path: String, subjectID: String, studyID: String, view: String? = nil) {
    self.id = id
    self.path = path
    self.subjectID = subjectID
    self.studyID = studyID
    self.view = view
  }
}

/// A label as written in a label file, before an uncertainty policy turns it into a target.
public enum LabelValue: Int8, Hashable, Sendable, CaseIterable {
  case negative = 0
  case positive = 1
  case uncertain = -1
  /// Not mentioned (blank cell): counts as negative in targets, reported as "missing".
  case blank = 2
}

/// Images with per-finding training targets: what the loader and the loss consume.
/// Targets and mask are stored row-major, one row per record, one column per finding.
public struct LabelledSet: Sendable {
  public var records: [ImageRecord]
  public var findings: [String]
  /// Target in {0, 1} for each (record, finding).
  public var targets: [Float]
  /// 1 where the finding enters the loss; 0 where U-ignore left an uncertain label out
  /// (that finding only: the image and its other findings stay).
  public var mask: [Float]

  public init(records: [ImageRecord], findings: [String], targets: [Float], mask: [Float]) {
    precondition(targets.count == records.count * findings.count && mask.count == targets.count,
                 "LabelledSet: targets and mask must have records x findings entries")
    self.records = records
    self.findings = findings
    self.targets = targets
    self.mask = mask
  }

  public var count: Int { records.count }
  public func target(_ record: Int, _ finding: Int) -> Float { targets[record * findings.count + finding] }
  public func isMasked(_ record: Int, _ finding: Int) -> Bool { mask[record * findings.count + finding] == 0 }

  /// The subset at `indices`, in that order (e.g. one side of a split).
  public func subset(_ indices: [Int]) -> LabelledSet {
    let f = findings.count
    var t = [Float](), m = [Float]()
    t.reserveCapacity(indices.count * f)
    m.reserveCapacity(indices.count * f)
    for i in indices {
      t.append(contentsOf: targets[(i * f)..<(i * f + f)])
      m.append(contentsOf: mask[(i * f)..<(i * f + f)])
    }
    return LabelledSet(records: indices.map { records[$0] }, findings: findings, targets: t, mask: m)
  }
}
