import Common
import XCTest
import TestSupport
@testable import Data

final class DatasetsMIMICTests: XCTestCase {
  func testMetadataPlainAndGzipGiveTheFrontalImagesWithTheirPaths() throws {
    let dir = try TestEnv.scratch("mimic")
    let plainRoot = dir.appendingPathComponent("plain"), gzRoot = dir.appendingPathComponent("gz")
    try Fixture.write(Fixture.mimicMetadata, plainRoot.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    try Fixture.writeGzip(Fixture.mimicMetadata, gzRoot.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz"))
    let plain = try MIMICCXRJPG(root: plainRoot).index()
    let gz = try MIMICCXRJPG(root: gzRoot).index()
    XCTAssertEqual(plain.records.map(\.id), gz.records.map(\.id))
    XCTAssertEqual(plain.records.map(\.id), [
      "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab",
      "096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "ffffffff-00000000-11111111-22222222-33333333",
    ])
    XCTAssertEqual(gz.records[0], ImageRecord(
      id: "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014",
      path: gzRoot.path + "/files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg",
      subjectID: "10000032", studyID: "50414267", view: "PA"))
    XCTAssertEqual(gz.records.map(\.view), ["PA", "AP", "AP", "PA"])
    XCTAssertEqual(gz.labelJoin, .study)
    XCTAssertEqual(gz.notes, ["skipped 3 images of other views ((blank) 1, LATERAL 1, LL 1)"])
  }

  func testViewsAreConfigurableAndEmptyKeepsAll() throws {
    let root = try TestEnv.scratch("mimic")
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    XCTAssertEqual(try MIMICCXRJPG(root: root, views: ["LATERAL", "LL"]).index().records.map(\.view), ["LATERAL", "LL"])
    XCTAssertEqual(try MIMICCXRJPG(root: root, views: []).index().records.count, 7)
  }

  func testOfficialSplitKeepsTheChosenParts() throws {
    let root = try TestEnv.scratch("mimic")
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    let split = root.appendingPathComponent("mimic-cxr-2.0.0-split.csv.gz")
    try Fixture.writeGzip("""
      dicom_id,study_id,subject_id,split
      02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,50414267,10000032,train
      2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab,53189527,10000032,validate
      096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4,57375967,10000764,test

      """, split)
    let idx = try MIMICCXRJPG(root: root, officialSplit: split, officialParts: ["train", "validate"]).index()
    XCTAssertEqual(idx.records.map(\.studyID), ["50414267", "53189527"])
    XCTAssertEqual(idx.notes.last, "skipped 2 images not in the parts train, validate of official split mimic-cxr-2.0.0-split.csv.gz")
  }

  func testBadMetadataNamesFileLineAndColumn() throws {
    let root = try TestEnv.scratch("mimic")
    let meta = root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv")
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(root.path) has no mimic-cxr-2.0.0-metadata.csv.gz or mimic-cxr-2.0.0-metadata.csv; give the metadata file's path or the MIMIC-CXR-JPG root folder")
    }
    try Fixture.write("dicom_id,subject_id,study_id\na,10000032,50414267\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path) has no column 'ViewPosition'; its columns are: dicom_id, subject_id, study_id")
    }
    try Fixture.write("dicom_id,subject_id,study_id,ViewPosition\na,10000032,50414267,PA\nb,10000032,PA\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path):3: row has 3 fields but the header has 4; fix or remove that row")
    }
    try Fixture.write("dicom_id,subject_id,study_id,ViewPosition\na,10000032,50414267,PA\nb,abc,50414267,AP\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path):3: subject_id 'abc' is not a number like 10000032; is this the MIMIC-CXR-JPG metadata file?")
    }
    try Fixture.write("dicom_id,subject_id,study_id,ViewPosition\na,10000032,s5041,PA\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path):2: study_id 's5041' is not a number like 50414267; is this the MIMIC-CXR-JPG metadata file?")
    }
    try Fixture.write("dicom_id,subject_id,study_id,ViewPosition\na,10000032,50414267,PA\n,10000032,50414267,PA\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path):3: dicom_id is blank; fix or remove that row")
    }
    try Fixture.write("dicom_id,subject_id,study_id,ViewPosition\na,10000032,50414267,PA\na,10000032,50414267,AP\n", meta)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(meta.path):3: dicom_id a is listed again (first at line 2); remove the duplicate row")
    }
  }

  func testTruncatedAndCorruptGzipAreNamed() throws {
    let root = try TestEnv.scratch("mimic")
    let gz = root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz")
    try Fixture.writeGzip(Fixture.mimicMetadata, gz)
    let whole = try Data(contentsOf: gz)
    try whole.prefix(whole.count / 2).write(to: gz)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertEqual("\($0)", "\(gz.path): the gzip data is truncated; download the file again or unpack it with gunzip to check it")
    }
    var bad = whole
    for i in 20..<40 { bad[i] ^= 0x5A }
    try bad.write(to: gz)
    XCTAssertThrowsError(try MIMICCXRJPG(root: root).index()) {
      XCTAssertTrue("\($0)".hasPrefix("\(gz.path): the gzip data is corrupt: "), "\($0)")
    }
  }

  func testConcatenatedGzipMembersAreReadWhole() throws {
    let dir = try TestEnv.scratch("gz")
    let a = dir.appendingPathComponent("a.csv.gz"), b = dir.appendingPathComponent("b.csv.gz")
    try Fixture.writeGzip("x,y\n1,2\n", a)
    try Fixture.writeGzip("3,4\n", b)
    let joined = dir.appendingPathComponent("ab.csv.gz")
    try (try Data(contentsOf: a) + Data(contentsOf: b)).write(to: joined)
    XCTAssertEqual(try TableFile.read(joined).rows, [["1", "2"], ["3", "4"]])
  }
}

final class DatasetsManifestTests: XCTestCase {
  func testManifestResolvesPathsAndCarriesLabels() throws {
    let dir = try TestEnv.scratch("manifest")
    let file = dir.appendingPathComponent("sets/manifest.csv")
    try Fixture.write("""
      path,patient,study,view,Pneumothorax,Fracture
      img/a.png,p1,s1,PA,1,
      /abs/b.jpg,p1,s2,,-1.0,0
      "img/c, d.png",p2,s3,AP,0.0,1.0

      """, file)
    let idx = try CSVManifest(file: file, labelFindings: ["Pneumothorax", "Fracture"]).index()
    XCTAssertEqual(idx.records, [
      ImageRecord(id: "img/a.png", path: dir.path + "/sets/img/a.png", subjectID: "p1", studyID: "s1", view: "PA"),
      ImageRecord(id: "/abs/b.jpg", path: "/abs/b.jpg", subjectID: "p1", studyID: "s2", view: nil),
      ImageRecord(id: "img/c, d.png", path: dir.path + "/sets/img/c, d.png", subjectID: "p2", studyID: "s3", view: "AP"),
    ])
    let labelled = Labelling(index: idx, table: idx.builtInLabels!)
    XCTAssertEqual(labelled.raw, [.positive, .blank, .uncertain, .negative, .negative, .positive])
    XCTAssertEqual(labelled.set.targets, [1, 0, 1, 0, 0, 1])
  }

  func testManifestErrorsNameFileLineAndColumn() throws {
    let dir = try TestEnv.scratch("manifest")
    let file = dir.appendingPathComponent("m.csv")
    try Fixture.write("path,patient\na.png,p1\n", file)
    XCTAssertThrowsError(try CSVManifest(file: file).index()) {
      XCTAssertEqual("\($0)", "\(file.path) has no column 'study'; its columns are: path, patient")
    }
    try Fixture.write("path,patient,study\na.png,p1,s1\nb.png, ,s1\n", file)
    XCTAssertThrowsError(try CSVManifest(file: file).index()) {
      XCTAssertEqual("\($0)", "\(file.path):3: column 'patient' is blank; every image needs a path, a patient and a study")
    }
    try Fixture.write("id,path,patient,study\nx,a.png,p1,s1\nx,b.png,p2,s1\n", file)
    XCTAssertThrowsError(try CSVManifest(file: file).index()) {
      XCTAssertEqual("\($0)", "\(file.path):3: image id 'x' is listed again (first at line 2); ids must be unique")
    }
    try Fixture.write("path,patient,study,Fracture\na.png,p1,s1,yes\n", file)
    XCTAssertThrowsError(try CSVManifest(file: file, labelFindings: ["Fracture"]).index()) {
      XCTAssertEqual("\($0)", "\(file.path):2: column 'Fracture' has value 'yes'; CheXpert-format labels are 1.0, 0.0, -1.0 or blank")
    }
  }
}
