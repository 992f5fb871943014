import Common
import XCTest
import TestSupport
@testable import Data

final class DatasetsCANDIDTests: XCTestCase {
  /// A CANDID-PTX folder: nested DICOM folders, names with and without `.dcm`.
  func makeCandid(fracture: String = "Rib_fracture_mask_rle.csv") throws -> URL {
    let root = try TestEnv.scratch("candid")
    let dicom = Data("DICM".utf8)
    for (folder, name) in [("dataset/a", "1.2.3.1.dcm"), ("dataset/a/b", "1.2.3.2"), ("dataset", "1.2.3.3.dcm"),
                           ("dataset/b", "1.2.3.5.dcm"), ("dataset/c", "1.2.3.5.dcm"), ("dataset", "notes.txt")] {
      let d = root.appendingPathComponent(folder)
      try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
      try dicom.write(to: d.appendingPathComponent(name))
    }
    // 1.2.3.1: two pneumothorax regions; 1.2.3.2: none; 1.2.3.3: none, second patient; 1.2.3.4: no file.
    try Fixture.write("""
      SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report
      1.2.3.1,9.1,P001_aa.dcm,1000 20 800 20,"Small right pneumothorax, chest tube in place."
      1.2.3.1,9.1,P001_aa.dcm,5000 10,"Small right pneumothorax, chest tube in place."
      1.2.3.2,9.1,P001_ab.dcm,-1,"No pneumothorax.
      Healed rib fracture."
      1.2.3.3,9.2,dataset/P002_ac.dcm,-1,Clear lungs.
      1.2.3.4,9.3,P003_ad.dcm,-1,Clear.

      """, root.appendingPathComponent("Pneumothorax_reports.csv"))
    try Fixture.write("""
      anon_SOPUID,anon_annotation_id,mask_rle
      1.2.3.2,r1,300 12
      1.2.3.2,r2,-1
      1.2.3.3,r3,-1
      7.7.7,r4,10 10

      """, root.appendingPathComponent(fracture))
    try Fixture.write("""
      anon_SOPUID,anon_annotation_id,mask_rle
      1.2.3.1,t1,40 9

      """, root.appendingPathComponent("chest_tube.csv"))
    return root
  }

  func testImagesPatientsMaskLabelsAndReports() throws {
    let root = try makeCandid()
    let idx = try CANDIDPTX(root: root).index()
    let ds = root.appendingPathComponent("dataset").path
    XCTAssertEqual(idx.records, [
      ImageRecord(id: "1.2.3.1", path: ds + "/a/1.2.3.1.dcm", subjectID: "001", studyID: "9.1"),
      ImageRecord(id: "1.2.3.2", path: ds + "/a/b/1.2.3.2", subjectID: "001", studyID: "9.1"),
      ImageRecord(id: "1.2.3.3", path: ds + "/1.2.3.3.dcm", subjectID: "002", studyID: "9.2"),
      ImageRecord(id: "1.2.3.4", path: ds + "/1.2.3.4.dcm", subjectID: "003", studyID: "9.3"),
    ])
    XCTAssertEqual(idx.labelJoin, .image)
    XCTAssertEqual(idx.reports["1.2.3.1"], "Small right pneumothorax, chest tube in place.")
    XCTAssertEqual(idx.reports["1.2.3.2"], "No pneumothorax.\nHealed rib fracture.")
    let labels = try XCTUnwrap(idx.builtInLabels)
    XCTAssertEqual(labels.findings, ["Pneumothorax", "Fracture", "Chest Tube"])
    let set = Labelling(index: idx, table: labels).set
    XCTAssertEqual(set.targets, [1, 0, 1,
                                 0, 1, 0,
                                 0, 0, 0,
                                 0, 0, 0])
    XCTAssertEqual(idx.notes, [
      "1 DICOM files repeat a SOPInstanceUID found earlier; the first path in sorted order is used",
      "1 images listed in Pneumothorax_reports.csv have no DICOM file under \(ds)",
      "1 rows of Rib_fracture_mask_rle.csv name images not in Pneumothorax_reports.csv; ignored",
      "Pneumothorax masks: 2 rows read as relative (SIIM) RLE, 0 as absolute",
      "Fracture masks: 1 rows read as relative (SIIM) RLE, 0 as absolute",
      "Chest Tube masks: 1 rows read as relative (SIIM) RLE, 0 as absolute",
    ])
  }

  func testMaskLabelsForChosenFindings() throws {
    let labels = try XCTUnwrap(try CANDIDPTX(root: try makeCandid()).index().builtInLabels)
    let picked = try labels.selecting(["Fracture", "Pneumothorax"])
    XCTAssertEqual(picked.findings, ["Fracture", "Pneumothorax"])
    XCTAssertEqual(picked.values, [.negative, .positive, .positive, .negative, .negative, .negative, .negative, .negative])
    XCTAssertThrowsError(try labels.selecting(["Edema"])) {
      XCTAssertEqual("\($0)", "schema 'masks' (\(labels.source)) has no finding 'Edema'; it has Pneumothorax, Fracture, Chest Tube")
    }
  }

  func testAcuteRibFractureNameAndMissingMaskFiles() throws {
    let root = try makeCandid(fracture: "acute_rib_fracture.csv")
    XCTAssertEqual(Labelling(index: try CANDIDPTX(root: root).index(), table: try CANDIDPTX(root: root).index().builtInLabels!).set.targets[4], 1)
    try FileManager.default.removeItem(at: root.appendingPathComponent("acute_rib_fracture.csv"))
    let idx = try CANDIDPTX(root: root, maskWidth: nil, maskHeight: nil).index()
    XCTAssertTrue(idx.notes.contains("no acute_rib_fracture.csv or Rib_fracture_mask_rle.csv in \(root.path): Fracture is labelled negative for every image"))
    XCTAssertFalse(idx.notes.contains { $0.contains("masks:") }, "no encoding check without a mask size")
  }

  func testAbsoluteMasksAreReported() throws {
    let root = try makeCandid()
    try Fixture.write("anon_SOPUID,anon_annotation_id,mask_rle\n1.2.3.1,t1,1048000 10 1048100 20\n",
                      root.appendingPathComponent("chest_tube.csv"))
    let idx = try CANDIDPTX(root: root).index()
    XCTAssertEqual(idx.notes.last, "Chest Tube masks: 0 rows read as relative (SIIM) RLE, 1 as absolute (only the absolute reading fits those rows)")
  }

  func testBadRowsNameFileLineAndColumn() throws {
    let root = try makeCandid()
    let reports = root.appendingPathComponent("Pneumothorax_reports.csv")
    let tube = root.appendingPathComponent("chest_tube.csv")
    try Fixture.write("anon_SOPUID,anon_annotation_id,mask_rle\n1.2.3.1,t1,40 9\n1.2.3.3,t2,1048570 10\n", tube)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(tube.path):3: column 'mask_rle': runs end at pixel 1048580 but the image has 1048576 pixels, and the starts do not fit an absolute reading either; check the image size or whether this column holds SIIM-style RLE")
    }
    try Fixture.write("anon_SOPUID,anon_annotation_id,mask_rle\n1.2.3.1,t1,40 9 3\n", tube)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(tube.path):2: column 'mask_rle': odd count of numbers (3); an RLE mask is pairs 'gap length'")
    }
    try Fixture.write("SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report\n1.2.3.1,9.1,scan_001.dcm,-1,x\n", reports)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(reports.path):2: filename 'scan_001.dcm' does not start with P<patient>_; the patient id is read from it, so fix that row")
    }
    try Fixture.write("SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report\n1.2.3.1,9.1,P1_a,-1,x\n1.2.3.1,9.9,P1_a,-1,x\n", reports)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(reports.path):3: image 1.2.3.1 has StudyInstanceUID 9.9 here but 9.1 on an earlier row; the rows of one image must agree")
    }
    try Fixture.write("SOPInstanceUID,StudyInstanceUID,file,EncodedPixels,Report\n", reports)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(reports.path) has no column 'filename'; its columns are: SOPInstanceUID, StudyInstanceUID, file, EncodedPixels, Report")
    }
    try FileManager.default.removeItem(at: reports)
    XCTAssertThrowsError(try CANDIDPTX(root: root).index()) {
      XCTAssertEqual("\($0)", "\(root.path) has no Pneumothorax_reports.csv; give the CANDID-PTX folder that holds it")
    }
  }
}

extension DatasetsCANDIDTests {
  /// The chest tube as a subgroup attribute: yes where chest_tube.csv has a mask, no for every
  /// other image (listed without a mask, or not listed); nil without the file.
  func testChestTubeAttributeFromTheMasks() throws {
    let root = try makeCandid()
    try Fixture.write("anon_SOPUID,anon_annotation_id,mask_rle\n1.2.3.1,t1,40 9\n1.2.3.2,t2,-1\n",
                      root.appendingPathComponent("chest_tube.csv"))
    let candid = CANDIDPTX(root: root)
    XCTAssertEqual(candid.chestTubeAttribute(try candid.index()), ["1.2.3.1": "yes", "1.2.3.2": "no", "1.2.3.3": "no", "1.2.3.4": "no"])
    try FileManager.default.removeItem(at: root.appendingPathComponent("chest_tube.csv"))
    XCTAssertNil(candid.chestTubeAttribute(try candid.index()))
  }
}
