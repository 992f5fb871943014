import Common
import Foundation
import TestSupport
import XCTest

/// `cxr inspect data` through the built binary: the report on stdout, errors on stderr with
/// exit status 1, and the files it writes.
final class DatasetsCommandLineTests: XCTestCase {
  func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try CXRBinary.run(["inspect", "data"] + args, for: DatasetsCommandLineTests.self)
  }

  /// The fixture's MIMIC metadata in `root`, and its CheXpert labels (returned).
  static func writeMimicWithLabels(in root: URL) throws -> URL {
    try Fixture.writeGzip(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz"))
    let labels = root.appendingPathComponent("chexpert.csv")
    try Fixture.write(Fixture.chexpertLabels, labels)
    return labels
  }

  /// The config form reads the same data through a study config, and reports a config
  /// mistake with the key and the line.
  func testConfigFormMatchesTheFlagForm() throws {
    let root = try TestEnv.scratch("cli-data-config")
    defer { try? FileManager.default.removeItem(at: root) }
    let labels = try Self.writeMimicWithLabels(in: root)
    let config = root.appendingPathComponent("study.yaml")
    try Fixture.write("""
      findings: [Pneumothorax]
      seed: 5
      train_data: {kind: mimic, root: \(root.path)}
      schemas:
        - {name: chexpert, file: \(labels.path)}

      """, config)
    let viaConfig = try run(["--config", config.path, "--no-check-files"])
    let viaFlags = try run(["--mimic", root.path, "--schema", "chexpert=\(labels.path)", "--findings", "Pneumothorax",
                            "--seed", "5", "--no-check-files"])
    XCTAssertEqual(viaConfig.status, 0, viaConfig.err)
    XCTAssertEqual(viaConfig.out.replacingOccurrences(of: "; nothing written", with: ""),
                   viaFlags.out.replacingOccurrences(of: "; nothing written", with: ""))
    try Fixture.write("train_data:\n  rooot: /x\n", config)
    let bad = try run(["--config", config.path])
    XCTAssertEqual(bad.status, 1)
    XCTAssertTrue(bad.err.contains("\(config.path):2: unknown key 'train_data.rooot'"), bad.err)
  }

  func testReportSplitFileAndBadFiles() throws {
    let root = try TestEnv.scratch("cli-data")
    defer { try? FileManager.default.removeItem(at: root) }
    let labels = try Self.writeMimicWithLabels(in: root)
    let llm = root.appendingPathComponent("llm.csv")
    try Fixture.write("#Model: x\n\"index\",\"pneumothorax_response\",\"fracture_response\"\n\"s50414267\",\"Yes\",\"No\"\n", llm)
    let split = root.appendingPathComponent("split.csv")
    try Fixture.write("""
      id,subject_id,study_id,split
      x,10000032,50414267,train
      y,10000764,57375967,tune
      z,12000012,52000012,train

      """, split)
    let bad = root.appendingPathComponent("bad.csv")
    let r = try run(["--mimic", root.path, "--schema", "chexpert=\(labels.path)", "--schema", "llm=\(llm.path):mapped",
                     "--values", "Yes->1, No->0", "--findings", "Pneumothorax", "--split", split.path,
                     "--bad-files", bad.path])
    XCTAssertEqual(r.err, "")
    XCTAssertEqual(r.status, 0)
    XCTAssertEqual(r.out, """
      dataset mimic-cxr-jpg: 4 images, 3 patients, 4 studies
        note: skipped 3 images of other views ((blank) 1, LATERAL 1, LL 1)
      split (read from \(split.path)):
        train: 3 images, 2 patients
        tune: 1 images, 1 patients
      schema chexpert (\(labels.path), uncertain -> ones): 3 images labelled
        excluded: 1 images whose 1 studies have no row
        split finding           images  patients  positive  negative uncertain   missing
        all   Pneumothorax           3         2         1         1         1         0
        train Pneumothorax           2         1         0         1         1         0
        tune  Pneumothorax           1         1         1         0         0         0
      schema llm (\(llm.path), uncertain -> ones): 1 images labelled
        excluded: 3 images whose 3 studies have no row
        split finding           images  patients  positive  negative uncertain   missing
        all   Pneumothorax           1         1         1         0         0         0
        train Pneumothorax           1         1         1         0         0         0
        tune  Pneumothorax           0         0         0         0         0         0
      bad files: 4 of 4 checked
        missing: \(root.path)/files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg
        missing: \(root.path)/files/p10/p10000032/s53189527/2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab.jpg
        missing: \(root.path)/files/p10/p10000764/s57375967/096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4.jpg
        missing: \(root.path)/files/p12/p12000012/s52000012/ffffffff-00000000-11111111-22222222-33333333.jpg

      """)
    XCTAssertEqual(try String(contentsOf: bad, encoding: .utf8).split(separator: "\n").count, 5)
  }

  func testErrorsReachTheUserWithStatus1() throws {
    let root = try TestEnv.scratch("cli-data")
    defer { try? FileManager.default.removeItem(at: root) }
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    let labels = root.appendingPathComponent("l.csv")
    try Fixture.write("subject_id,study_id,Pneumothorax,Fracture\n10000032,50414267,maybe,\n", labels)
    let cases: [([String], String)] = [
      ([], "give exactly one of --mimic, --candid or --manifest"),
      (["--mimic", root.path, "--candid", root.path], "give exactly one of --mimic, --candid or --manifest"),
      (["--mimic", root.path, "--uncertainty", "U-ones"], "--uncertainty: 'U-ones' is not one of ones, zeros, ignore"),
      (["--mimic", root.path, "--schema", "nofile"], "--schema 'nofile' is not NAME=FILE[:chexpert|mapped]"),
      (["--mimic", root.path, "--findings", " , "], "--findings is empty; name at least one finding"),
      (["--mimic", root.path, "--schema", "c=\(labels.path)"],
       "\(labels.path):2: column 'Pneumothorax' has value 'maybe'; CheXpert-format labels are 1.0, 0.0, -1.0 or blank"),
      (["--mimic", root.path, "--no-check-files", "--bad-files", root.appendingPathComponent("b.csv").path],
       "--bad-files needs the file check; drop --no-check-files"),
      (["--mimic", root.path, "--tune-fraction", "2"], "split: the tune fraction must be between 0 and 1, got 2.0"),
    ]
    for (args, message) in cases {
      let r = try run(args)
      XCTAssertEqual(r.status, 1, "\(args)")
      XCTAssertEqual(r.err, "Error: \(message)\n", "\(args)")
      XCTAssertEqual(r.out, "", "\(args)")
    }
  }
}
