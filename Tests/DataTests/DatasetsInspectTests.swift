import Common
import XCTest
import TestSupport
@testable import Data

final class DatasetsInspectTests: XCTestCase {
  func testFileCheckRecognisesImagesAndNamesProblems() throws {
    let dir = try TestEnv.scratch("filecheck")
    var preambleDICOM = Data(count: 128)
    preambleDICOM.append(contentsOf: Array("DICM".utf8) + [0x02, 0x00])
    let files: [(String, Data?)] = [
      ("a.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10])), ("b.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])),
      ("c.dcm", preambleDICOM), ("d", Data([0x08, 0x00, 0x05, 0x00, 0x43, 0x53])),
      ("e.jpg", Data()), ("f.jpg", Data("<html>".utf8)), ("g.jpg", nil),
    ]
    var records: [ImageRecord] = []
    for (name, data) in files {
      let path = dir.appendingPathComponent(name).path
      if let data { try data.write(to: URL(fileURLWithPath: path)) }
      records.append(ImageRecord(id: name, path: path, subjectID: "p", studyID: "s"))
    }
    let found = FileCheck.scan(records)
    XCTAssertEqual(found.map(\.record.id), ["e.jpg", "f.jpg", "g.jpg"])
    XCTAssertEqual(found.map(\.problem), [.empty, .unknownFormat, .missing])
    XCTAssertEqual(FileCheck.check(dir.path), .unreadable, "a folder is not an image")
    let out = dir.appendingPathComponent("bad_files.csv")
    try FileCheck.write(found, to: out)
    XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), """
      id,path,problem
      e.jpg,\(dir.path)/e.jpg,empty
      f.jpg,\(dir.path)/f.jpg,"not a JPEG, PNG or DICOM file"
      g.jpg,\(dir.path)/g.jpg,missing

      """)
  }

  func testReportCountsPerSplitAndSchema() throws {
    let root = try TestEnv.scratch("inspect")
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    let labels = root.appendingPathComponent("chexpert.csv")
    try Fixture.write(Fixture.chexpertLabels, labels)
    let idx = try MIMICCXRJPG(root: root).index()
    let table = try LabelSchema(name: "chexpert", file: labels, format: .chexpert, uncertainty: .ignore)
      .read(findings: ["Pneumothorax", "Fracture"])
    let split = PatientSplit(parts: ["10000032": .train, "10000764": .tune, "12000012": .train])
    let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0])
    for r in idx.records.prefix(2) {
      try FileManager.default.createDirectory(at: URL(fileURLWithPath: r.path).deletingLastPathComponent(), withIntermediateDirectories: true)
      try jpeg.write(to: URL(fileURLWithPath: r.path))
    }
    let report = DataInspection(index: idx, tables: [table], split: split, splitOrigin: "test",
                                badFiles: FileCheck.scan(idx.records), listLimit: 1).render()
    let p = root.path + "/files"
    XCTAssertEqual(report, """
      dataset mimic-cxr-jpg: 4 images, 3 patients, 4 studies
        note: skipped 3 images of other views ((blank) 1, LATERAL 1, LL 1)
      split (test):
        train: 3 images, 2 patients
        tune: 1 images, 1 patients
      schema chexpert (\(labels.path), uncertain -> ignore): 3 images labelled
        excluded: 1 images whose 1 studies have no row
        split finding           images  patients  positive  negative uncertain   missing
        all   Pneumothorax           3         2         1         1         1         0
        all   Fracture               3         2         1         0         1         1
        train Pneumothorax           2         1         0         1         1         0
        train Fracture               2         1         1         0         0         1
        tune  Pneumothorax           1         1         1         0         0         0
        tune  Fracture               1         1         0         0         1         0
      bad files: 2 of 4 checked
        missing: \(p)/p10/p10000764/s57375967/096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4.jpg
        ... and 1 more

      """)
  }
}
