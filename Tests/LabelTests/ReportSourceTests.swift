import Common
import Foundation
import TestSupport
import XCTest
@testable import Label

final class ReportSourceTests: XCTestCase {
  func testCANDIDReportsCSVAsItIs() throws {
    let dir = try TestEnv.scratch("cxr-label-src")
    let csv = dir.appendingPathComponent("Pneumothorax_reports.csv")
    try """
      SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report
      1.2.3,9.1,P1_a.dcm,-1,"No pneumothorax.
      Normal heart."
      1.2.4,9.2,P2_b.dcm,12 4 20 5,"Small left apical pneumothorax, ""new""."
      1.2.4,9.2,P2_b.dcm,40 3,"Small left apical pneumothorax, ""new""."
      1.2.5,9.3,P3_c.dcm,-1,"   "

      """.write(to: csv, atomically: true, encoding: .utf8)
    let set = try ReportSet.csv(csv, idColumn: "SOPInstanceUID", textColumn: "Report")
    XCTAssertEqual(set.idHeader, ["id"])
    XCTAssertEqual(set.reports.map(\.key), ["1.2.3", "1.2.4"])
    XCTAssertEqual(set.reports.map(\.text), ["No pneumothorax.\nNormal heart.", "Small left apical pneumothorax, \"new\"."])
    XCTAssertEqual(set.emptySkipped, 1)
    XCTAssertEqual(set.duplicatesSkipped, 1)

    XCTAssertThrowsError(try ReportSet.csv(csv, idColumn: "dicom_id", textColumn: "Report")) {
      XCTAssertEqual("\($0)", "\(csv.path) has no column 'dicom_id'; its columns are: SOPInstanceUID, StudyInstanceUID, filename, EncodedPixels, Report")
    }
    XCTAssertThrowsError(try ReportSet.csv(csv, idColumn: "SOPInstanceUID", textColumn: "report_text")) {
      XCTAssertEqual("\($0)", "\(csv.path) has no column 'report_text'; its columns are: SOPInstanceUID, StudyInstanceUID, filename, EncodedPixels, Report")
    }
  }

  func testMIMICSectionChoice() {
    let full = """
                                       FINAL REPORT
       EXAMINATION:  CHEST (PA AND LAT)

       INDICATION:  Chest pain.

       FINDINGS:
        Lungs are clear.  No pneumothorax.

       IMPRESSION:
        No acute process.
       Old rib fractures.
      """
    XCTAssertEqual(MIMICSections.labelText(full), "No acute process. Old rib fractures.")
    let findingsOnly = "EXAMINATION: CHEST\n\nFINDINGS: Right pneumothorax,\n  moderate.\n\nNOTIFICATION: called Dr. X."
    XCTAssertEqual(MIMICSections.labelText(findingsOnly), "Right pneumothorax, moderate.")
    let neither = "EXAMINATION: CHEST\n\nINDICATION: fall.\n\nCOMMENTS: Left seventh rib fracture."
    XCTAssertEqual(MIMICSections.labelText(neither), "Left seventh rib fracture.")
    let noHeaders = "Portable chest.\n\nTubes in place.\nNo pneumothorax."
    XCTAssertEqual(MIMICSections.labelText(noHeaders), "Tubes in place. No pneumothorax.")
    XCTAssertEqual(MIMICSections.labelText("IMPRESSIONS: Small effusion."), "Small effusion.")
  }

  func testMIMICReportTree() throws {
    let root = try TestEnv.scratch("cxr-label-mimic")
    let files = root.appendingPathComponent("files")
    func put(_ path: String, _ text: String) throws {
      let url = files.appendingPathComponent(path)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try text.write(to: url, atomically: true, encoding: .utf8)
    }
    try put("p10/p10000032/s50414267.txt", "FINDINGS: Clear.\n\nIMPRESSION: No pneumothorax.")
    try put("p10/p10000032/s53189527.txt", "IMPRESSION:\n\n")
    try put("p11/p11000011/s51029426.txt", "FINDINGS: Right rib fracture.")
    try put("p11/p11000011/notes.md", "ignored")
    let set = try ReportSet.mimic(root)
    XCTAssertEqual(set.idHeader, ["subject_id", "study_id"])
    XCTAssertEqual(set.reports.map(\.idColumns), [["10000032", "50414267"], ["11000011", "51029426"]])
    XCTAssertEqual(set.reports.map(\.text), ["No pneumothorax.", "Right rib fracture."])
    XCTAssertEqual(set.emptySkipped, 1)
    XCTAssertEqual(try ReportSet.mimic(files).reports.count, 2)

    let empty = try TestEnv.scratch("cxr-label-empty")
    XCTAssertThrowsError(try ReportSet.mimic(empty)) {
      XCTAssertEqual("\($0)", "\(empty.path) holds no report files files/pXX/pSUBJECT/sSTUDY.txt; check the folder")
    }
  }
}
