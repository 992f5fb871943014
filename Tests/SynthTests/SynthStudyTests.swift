import Common
import Foundation
import TestSupport
import XCTest
@testable import Synth

/// The synthetic study as files: determinism, layout, columns, markers, refusals.
final class SynthStudyTests: XCTestCase {
  static func files(under root: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])!
    for case let url as URL in walker where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
      out[String(url.path.dropFirst(root.path.count))] = try Data(contentsOf: url)
    }
    return out
  }

  func testSameSeedGivesByteIdenticalFilesAndAnotherSeedDiffers() throws {
    let a = try TestEnv.scratch("synth-a"), b = try TestEnv.scratch("synth-b"), c = try TestEnv.scratch("synth-c")
    defer { for d in [a, b, c] { try? FileManager.default.removeItem(at: d) } }
    try SyntheticStudy.generate(to: a, seed: 7, size: .tiny)
    try SyntheticStudy.generate(to: b, seed: 7, size: .tiny)
    try SyntheticStudy.generate(to: c, seed: 8, size: .tiny)
    let fa = try Self.files(under: a), fb = try Self.files(under: b), fc = try Self.files(under: c)
    XCTAssertGreaterThan(fa.count, 40)
    XCTAssertEqual(Set(fa.keys), Set(fb.keys))
    for (path, data) in fa { XCTAssertEqual(data, fb[path], "\(path) differs between two runs with seed 7") }
    // Another seed: other ids (so other paths) and other contents for files with fixed names.
    XCTAssertNotEqual(Set(fa.keys.filter { $0.hasSuffix(".jpg") }), Set(fc.keys.filter { $0.hasSuffix(".jpg") }))
    for fixed in ["/mimic/mimic-cxr-2.0.0-metadata.csv.gz", "/candid/Pneumothorax_reports.csv",
                  "/labels/mimic/synthetic-truth.csv", "/labels/candid/synthetic-llm_cot.csv"] {
      XCTAssertNotNil(fa[fixed], fixed)
      XCTAssertNotEqual(fa[fixed], fc[fixed], "\(fixed) is the same for seeds 7 and 8")
    }
  }

  func testLayoutLabelColumnsAndSyntheticMarkers() throws {
    let root = try TestEnv.scratch("synth-layout")
    defer { try? FileManager.default.removeItem(at: root) }
    let paths = try SyntheticStudy.generate(to: root, seed: 3, size: .tiny)
    let readme = try String(contentsOf: paths.readme, encoding: .utf8)
    XCTAssertTrue(readme.hasPrefix(SyntheticStudy.marker))
    XCTAssertTrue(readme.contains("missed 25.0 % (75.0 % for two-rib fractures)"), readme)
    XCTAssertTrue(readme.contains("missed 5.0 % (60.0 % for small pneumothoraces)"), readme)
    for dir in ["mimic", "candid", "labels"] {
      let note = try String(contentsOf: root.appendingPathComponent(dir).appendingPathComponent("SYNTHETIC.txt"), encoding: .utf8)
      XCTAssertTrue(note.hasPrefix(SyntheticStudy.marker))
    }
    // MIMIC-CXR-JPG layout: files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg
    for url in paths.mimicImages {
      let parts = url.path.dropFirst(paths.mimicRoot.path.count + 1).split(separator: "/").map(String.init)
      XCTAssertEqual(parts.count, 5, url.path)
      XCTAssertEqual(parts[0], "files")
      XCTAssertEqual(parts[1], "p" + parts[2].dropFirst().prefix(2))
      XCTAssertTrue(parts[2].range(of: #"^p1\d{7}$"#, options: .regularExpression) != nil, parts[2])
      XCTAssertTrue(parts[3].range(of: #"^s5\d{7}$"#, options: .regularExpression) != nil, parts[3])
      XCTAssertTrue(parts[4].range(of: #"^([0-9a-f]{8}-){4}[0-9a-f]{8}\.jpg$"#, options: .regularExpression) != nil, parts[4])
      XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
    }
    // Label files: CheXpert columns and values; RadPrompter comment lines, columns, quoting, values.
    let chexpertHeader = ["subject_id", "study_id", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                          "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity", "Pleural Effusion",
                          "Pneumonia", "Pneumothorax", "Pleural Other", "Support Devices", "No Finding"]
    let studies = try Self.metadataStudies(paths)
    for schema in ["truth", "llm", "rule"] {
      for (file, rows) in [(paths.trainLabels[schema]!, studies.count), (paths.testLabels[schema]!, paths.candidImages.count)] {
        XCTAssertEqual(file.lastPathComponent, "synthetic-\(schema).csv")
        let t = try CSVTable.read(file)
        XCTAssertEqual(t.header, chexpertHeader, file.path)
        XCTAssertEqual(t.count, rows, file.path)
        for row in t.rows { for v in row.dropFirst(2) { XCTAssertTrue(["1.0", "0.0", "-1.0", ""].contains(v), "\(file.path): \(v)") } }
      }
    }
    let truth = try CSVTable.read(paths.trainLabels["truth"]!)
    XCTAssertEqual(Set(truth.rows.map { $0[1] }), Set(studies.keys))
    let cot = paths.trainLabels["llm_cot"]!
    let raw = try String(contentsOf: cot, encoding: .utf8)
    XCTAssertTrue(raw.hasPrefix("#Synthetic: yes - made by cxr synth (seed 3)"), raw)
    XCTAssertTrue(raw.contains("\n\"index\",\"atelectasis_response\","), raw)
    let cotTable = try CSVTable.read(cot)
    XCTAssertEqual(cotTable.comments.first, "Synthetic: yes - made by cxr synth (seed 3); not real reports or labels")
    XCTAssertEqual(cotTable.header.count, 15)
    XCTAssertTrue(cotTable.header.contains("pneumothorax_response") && cotTable.header.contains("fracture_response"))
    XCTAssertEqual(Set(cotTable.rows.map { $0[0] }), Set(studies.keys))
    for row in cotTable.rows { for v in row.dropFirst() { XCTAssertTrue(["Present", "Absent", "Uncertain"].contains(v), v) } }
    // CANDID: one reports row per DICOM, named by its SOPInstanceUID; reports agree with the masks.
    let reports = try CSVTable.read(paths.candidReports)
    XCTAssertEqual(reports.header, ["SOPInstanceUID", "StudyInstanceUID", "filename", "EncodedPixels", "Report"])
    XCTAssertEqual(Set(reports.rows.map { "\($0[0]).dcm" }), Set(paths.candidImages.map(\.lastPathComponent)))
    let candidTruth = try CSVTable.read(paths.testLabels["truth"]!)
    let truthOf = Dictionary(uniqueKeysWithValues: candidTruth.rows.map { ($0[1], $0) })
    for row in reports.rows {
      XCTAssertTrue(row[2].range(of: #"^P\d{5}_\d_synthetic\.dcm$"#, options: .regularExpression) != nil, row[2])
      XCTAssertTrue(row[4].hasPrefix("SYNTHETIC REPORT"), row[4])
      let positive = row[3] != "-1"
      XCTAssertEqual(row[4].contains("apical pneumothorax"), positive, row[4])
      XCTAssertEqual(truthOf[row[0]]![12] == "1.0", positive)
      XCTAssertEqual(truthOf[row[0]]![0], String(row[2].dropFirst().prefix(5)), "subject_id is the P<patient> number")
    }
    let fractures = try CSVTable.read(paths.candidFractures)
    XCTAssertEqual(fractures.header, ["anon_SOPUID", "annotation_id", "mask_rle"])
    XCTAssertEqual(Set(fractures.rows.map { $0[0] }), Set(candidTruth.rows.filter { $0[7] == "1.0" }.map { $0[1] }))
    for row in fractures.rows { XCTAssertNotEqual(row[2], "-1") }
  }

  /// study_id -> view positions, from the gzip metadata read by Python's gzip and csv.
  static func metadataStudies(_ paths: SyntheticStudyPaths) throws -> [String: [String]] {
    let out = try Python.json("""
      import gzip, csv
      rows = list(csv.reader(gzip.open(sys.argv[1], "rt", newline="")))
      print(json.dumps({"header": rows[0], "rows": rows[1:]}))
      """, args: [paths.mimicMetadata.path]) as! [String: Any]
    let header = out["header"] as! [String]
    XCTAssertEqual(header, ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                            "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                            "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"])
    var views: [String: [String]] = [:]
    var studiesOf: [String: Set<String>] = [:]
    for row in out["rows"] as! [[String]] {
      views[row[2], default: []].append(row[4])
      studiesOf[row[1], default: []].insert(row[2])
      XCTAssertTrue(["PA", "AP", "LATERAL", ""].contains(row[4]), row[4])
      XCTAssertTrue(row[7].range(of: #"^2\d{7}$"#, options: .regularExpression) != nil, row[7])
    }
    XCTAssertEqual(views.values.reduce(0) { $0 + $1.count }, paths.mimicImages.count)
    XCTAssertTrue(views.values.contains { $0.contains("LATERAL") }, "some lateral views")
    XCTAssertTrue(views.values.allSatisfy { $0.contains("PA") || $0.contains("AP") }, "every study has a frontal view")
    XCTAssertGreaterThan(studiesOf.values.filter { $0.count > 1 }.count, 1, "several patients with several studies")
    return views
  }

  func testRegeneratesOverAnEarlierStudyAndRefusesOtherFolders() throws {
    let root = try TestEnv.scratch("synth-again")
    defer { try? FileManager.default.removeItem(at: root) }
    let first = try SyntheticStudy.generate(to: root, seed: 1, size: .tiny)
    let second = try SyntheticStudy.generate(to: root, seed: 2, size: .tiny)
    for url in first.mimicImages { XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "stale \(url.path)") }
    XCTAssertTrue(second.mimicImages.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })

    let other = try TestEnv.scratch("synth-other")
    defer { try? FileManager.default.removeItem(at: other) }
    try "mine".write(to: other.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try SyntheticStudy.generate(to: other, seed: 1, size: .tiny)) { error in
      XCTAssertEqual("\(error)", "\(other.path) is not empty and holds no synthetic study (no README.txt from cxr synth); give an empty or new folder")
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: other.path), ["notes.txt"])
    let file = other.appendingPathComponent("notes.txt")
    XCTAssertThrowsError(try SyntheticStudy.generate(to: file, seed: 1, size: .tiny)) { error in
      XCTAssertEqual("\(error)", "\(file.path) is a file; give a folder for the synthetic study")
    }
  }

  /// The label files' error rates, measured against the truth file, match the documented
  /// ones (a medium study without images: about 3,400 reports).
  func testSchemaErrorRatesMatchTheDocumentedOnes() throws {
    let root = try TestEnv.scratch("synth-rates")
    defer { try? FileManager.default.removeItem(at: root) }
    let paths = try SyntheticStudy.generate(to: root, seed: 11, size: .medium, writeImages: false)
    func read(_ url: URL) throws -> [String: [String: String]] {
      let t = try CSVTable.read(url)
      let id = t.header.contains("index") ? t.index(of: "index")! : t.index(of: "study_id")!
      return Dictionary(uniqueKeysWithValues: t.rows.map { row in
        (row[id], Dictionary(uniqueKeysWithValues: zip(t.header, row).map { ($0.replacingOccurrences(of: "_response", with: ""), $1) }))
      })
    }
    let positive: Set<String> = ["1.0", "Present"], negative: Set<String> = ["0.0", "", "Absent"], uncertain: Set<String> = ["-1.0", "Uncertain"]
    for schema in SyntheticStudy.schemas {
      for finding in ["Pneumothorax", "Fracture"] {
        var pos = 0, neg = 0, miss = 0, fp = 0, unc = 0
        for (train, test) in [(paths.trainLabels, "mimic"), (paths.testLabels, "candid")] {
          let truth = try read(paths.trainLabels["truth"]!.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(test).appendingPathComponent("synthetic-truth.csv"))
          let labels = try read(train[schema.name]!)
          XCTAssertEqual(Set(truth.keys), Set(labels.keys))
          let column = schema.format == .chexpert ? finding : finding.lowercased()
          for (id, t) in truth {
            let v = labels[id]![column]!
            XCTAssertTrue(positive.contains(v) || negative.contains(v) || uncertain.contains(v), v)
            if uncertain.contains(v) { unc += 1 }
            if t[finding] == "1.0" {
              pos += 1
              if negative.contains(v) { miss += 1 }
            } else {
              neg += 1
              if positive.contains(v) { fp += 1 }
            }
          }
        }
        let r = schema.rates(finding)!
        // Subtle cases are missed more often: two-rib fractures, and small pneumothoraces (the
        // part of the uniformly drawn collapse range above the "small" threshold).
        let sizes = PneumothoraxSign.collapseRange
        let subtleShare = finding == "Fracture" ? FractureSign.twoRibShare
          : (sizes.upperBound - PneumothoraxSign.smallAbove) / (sizes.upperBound - sizes.lowerBound)
        let missRate = r.subtleMiss.map { subtleShare * $0 + (1 - subtleShare) * r.miss } ?? r.miss
        let expected = (miss: (1 - r.uncertain) * missRate, fp: (1 - r.uncertain) * r.falsePositive, unc: r.uncertain)
        func near(_ k: Int, _ n: Int, _ p: Double, _ what: String) {
          let measured = Double(k) / Double(n)
          let tolerance = max(0.01, 4 * (p * (1 - p) / Double(n)).squareRoot())
          XCTAssertEqual(measured, p, accuracy: tolerance, "\(schema.name) \(finding) \(what): \(k)/\(n)")
        }
        XCTAssertGreaterThan(pos, 800)
        near(miss, pos, expected.miss, "miss")
        near(fp, neg, expected.fp, "over-call")
        near(unc, pos + neg, expected.unc, "uncertain")
        let prevalence = Double(pos) / Double(pos + neg)
        XCTAssertEqual(prevalence, 0.3, accuracy: 0.03, "\(finding) prevalence")
      }
    }
  }
}
