import Foundation
import XCTest
import TestSupport

/// Small files in the datasets' real layouts, written by the tests.
enum Fixture {
  static func write(_ text: String, _ url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try text.write(to: url, atomically: true, encoding: .utf8)
  }

  /// gzip-compresses `text` into `url` with the system gzip (what PhysioNet's files are).
  static func writeGzip(_ text: String, _ url: URL) throws {
    let plain = url.deletingPathExtension()
    try write(text, plain)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["gzip", "-f", "-n", plain.path]
    try p.run()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0, "gzip failed")
  }

  /// MIMIC-CXR-JPG metadata: columns in an unusual order (read by name), every view kind.
  static let mimicMetadata = """
    subject_id,study_id,dicom_id,ViewPosition,PerformedProcedureStepDescription,Rows,Columns
    10000032,50414267,02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,PA,CHEST (PA AND LAT),3056,2544
    10000032,50414267,174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,LATERAL,CHEST (PA AND LAT),3056,2544
    10000032,53189527,2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab,AP,"CHEST (PORTABLE AP)",3056,2544
    10000764,57375967,096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4,AP,CHEST (PORTABLE AP),2544,3056
    10000764,57375967,b79e55c3-735ce5ac-64412506-cdc9ea79-f1af521f,,CHEST (PORTABLE AP),2544,3056
    11000011,51000011,aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee,LL,CHEST (PA AND LAT),3056,2544
    12000012,52000012,ffffffff-00000000-11111111-22222222-33333333,PA,CHEST (PA AND LAT),3056,2544

    """

  /// CheXpert-format labels (mimic-cxr-2.0.0-chexpert.csv): 1.0 / 0.0 / -1.0 / blank.
  static let chexpertLabels = """
    subject_id,study_id,Atelectasis,Fracture,Pneumothorax,No Finding
    10000032,50414267,,1.0,-1.0,
    10000032,53189527,1.0,,0.0,
    10000764,57375967,,-1.0,1.0,

    """
}
