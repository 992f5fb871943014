import Common
import XCTest
import TestSupport
@testable import Data

final class LabelsTests: XCTestCase {
  func mimic() throws -> (DatasetIndex, URL) {
    let root = try TestEnv.scratch("labels")
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    return (try MIMICCXRJPG(root: root).index(), root)
  }

  func testCheXpertPoliciesBlankAndUnlabelledStudies() throws {
    let (idx, root) = try mimic()
    let file = root.appendingPathComponent("mimic-cxr-2.0.0-chexpert.csv.gz")
    try Fixture.writeGzip(Fixture.chexpertLabels, file)
    let findings = ["Pneumothorax", "Fracture"]
    // Records: 50414267 (PT -1, Fx 1), 53189527 (PT 0, Fx blank), 57375967 (PT 1, Fx -1), 52000012 (no row).
    var expected: [UncertaintyPolicy: ([Float], [Float])] = [:]
    expected[.ones] = ([1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1])
    expected[.zeros] = ([0, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1])
    expected[.ignore] = ([0, 1, 0, 0, 1, 0], [0, 1, 1, 1, 1, 0])
    for policy in UncertaintyPolicy.allCases {
      let table = try LabelSchema(name: "chexpert", file: file, format: .chexpert, uncertainty: policy).read(findings: findings)
      let l = Labelling(index: idx, table: table)
      XCTAssertEqual(l.set.records.map(\.studyID), ["50414267", "53189527", "57375967"])
      XCTAssertEqual(l.set.targets, expected[policy]!.0, "\(policy)")
      XCTAssertEqual(l.set.mask, expected[policy]!.1, "\(policy)")
      XCTAssertEqual(l.unlabelledImages, 1)
      XCTAssertEqual(l.unlabelledStudies, 1)
      XCTAssertEqual(l.unusedRows, 0)
      XCTAssertEqual(l.counts(), [FindingCounts(positive: 1, negative: 1, uncertain: 1, missing: 0),
                                  FindingCounts(positive: 1, negative: 0, uncertain: 1, missing: 1)])
    }
  }

  func testLabelerColumnOrderIsReadByName() throws {
    let (idx, root) = try mimic()
    // stanfordmlgroup/chexpert-labeler order (Reports first, Fracture near the end) plus the ids a user added.
    let file = root.appendingPathComponent("labeler.csv")
    try Fixture.write("""
      Reports,No Finding,Enlarged Cardiomediastinum,Pneumothorax,Fracture,Support Devices,study
      "PA and lateral, no acute process.",1.0,,,,,s50414267
      "Portable AP.",,,1.0,-1.0,1.0,s57375967

      """, file)
    let table = try LabelSchema(name: "labeler", file: file, format: .chexpert, idColumns: ["study"])
      .read(findings: ["Fracture", "Pneumothorax"])
    let l = Labelling(index: idx, table: table)
    XCTAssertEqual(l.set.records.map(\.studyID), ["50414267", "57375967"])
    XCTAssertEqual(l.raw, [.blank, .blank, .uncertain, .positive])
    XCTAssertEqual(l.unlabelledStudies, 2)
  }

  func testRadPrompterFileWithCommentsQuotesAndValueMap() throws {
    let (idx, root) = try mimic()
    let file = root.appendingPathComponent("llama3_cot.csv")
    try Fixture.write("""
      #Model: meta-llama/Meta-Llama-3-8B-Instruct
      #Template: "cot, v2"
      "index","report","pneumothorax_response","fracture_response"
      "50414267","FINDINGS: small ""apical"" pneumothorax,
      no fracture.","Present","Absent"
      "53189527","Normal.","absent "," Uncertain"
      "57375967","Lines.","Not mentioned","Present"
      "99999999","Other dataset.","Present","Present"

      """, file)
    let values = try LabelSchema.parseValueMap("Present->1, Absent->0, Uncertain->-1, Not mentioned->blank")
    let table = try LabelSchema(name: "llama3-cot", file: file, format: .mapped, values: values, uncertainty: .zeros)
      .read(findings: ["Pneumothorax", "Fracture"])
    let l = Labelling(index: idx, table: table)
    XCTAssertEqual(l.raw, [.positive, .negative, .negative, .uncertain, .blank, .positive])
    XCTAssertEqual(l.set.targets, [1, 0, 0, 0, 0, 1])
    XCTAssertEqual(l.unusedRows, 1)
    XCTAssertEqual(l.unlabelledImages, 1)
  }

  func testExplicitColumnsAndSubjectStudyKeys() throws {
    let (idx, root) = try mimic()
    let file = root.appendingPathComponent("custom.csv")
    try Fixture.write("pid,sid,ptx\n10000032,50414267,yes\n10000999,53189527,yes\n", file)
    let table = try LabelSchema(name: "custom", file: file, format: .mapped, idColumns: ["pid", "sid"],
                                columns: ["Pneumothorax": "ptx"], values: ["yes": .positive, "no": .negative])
      .read(findings: ["Pneumothorax"])
    // 53189527 belongs to subject 10000032, so the second row matches nothing.
    let l = Labelling(index: idx, table: table)
    XCTAssertEqual(l.set.records.map(\.studyID), ["50414267"])
    XCTAssertEqual(l.unusedRows, 1)
  }

  func testBadLabelFilesNameFileLineAndColumn() throws {
    let root = try TestEnv.scratch("labels")
    let file = root.appendingPathComponent("l.csv")
    func message(_ schema: LabelSchema, _ findings: [String] = ["Pneumothorax"]) -> String {
      do { _ = try schema.read(findings: findings); return "no error" } catch { return "\(error)" }
    }
    let chexpert = LabelSchema(name: "chexpert", file: file, format: .chexpert)
    try Fixture.write("subject_id,study_id,Pneumothorax\n1,2,1.0\n1,3,2.0\n", file)
    XCTAssertEqual(message(chexpert), "\(file.path):3: column 'Pneumothorax' has value '2.0'; CheXpert-format labels are 1.0, 0.0, -1.0 or blank")
    try Fixture.write("subject_id,study_id,Edema\n1,2,1.0\n", file)
    XCTAssertEqual(message(chexpert), "\(file.path) has no column for finding 'Pneumothorax' (schema 'chexpert' tried 'Pneumothorax'); its columns are: subject_id, study_id, Edema; map the finding to a column in the schema")
    try Fixture.write("subject_id,Pneumothorax\n1,1.0\n", file)
    XCTAssertEqual(message(chexpert), "\(file.path) has no column 'study_id'; its columns are: subject_id, Pneumothorax")
    try Fixture.write("subject_id,study_id,Pneumothorax\n1,2,1.0\n1,,0.0\n", file)
    XCTAssertEqual(message(chexpert), "\(file.path):3: column 'study_id' is blank; every label row needs its id")
    try Fixture.write("subject_id,study_id,Pneumothorax\n1,2,1.0\n1,2.0,0.0\n", file)
    XCTAssertEqual(message(chexpert), "\(file.path):3: id 1/2 already has a row at line 2 with different labels; keep one row per id")
    try Fixture.write("subject_id,study_id,Pneumothorax\n1,2,1.0\n1,\"2\",1\n", file)
    XCTAssertEqual(message(chexpert), "no error", "a repeated row that agrees is harmless")

    let mapped = LabelSchema(name: "zephyr", file: file, format: .mapped)
    try Fixture.write("#Model: zephyr\nindex,pneumothorax_response\n7,Present\n8,Maybe\n", file)
    XCTAssertEqual(message(mapped), "\(file.path):4: column 'pneumothorax_response' has value 'Maybe', which schema 'zephyr' does not map (it maps Absent, Present, Uncertain); add it to the schema's value map")
    try Fixture.write("index,a_response\n7,Present\n", file)
    XCTAssertEqual(message(mapped), "\(file.path) has no column for finding 'Pneumothorax' (schema 'zephyr' tried 'Pneumothorax', 'Pneumothorax_response', 'pneumothorax_response', 'pneumothorax'); its columns are: index, a_response; map the finding to a column in the schema")
    try Fixture.write("index,Pneumothorax\n\"7\n", file)
    XCTAssertEqual(message(mapped), "\(file.path):2: a quoted field is never closed; fix the quotes on that row")
    XCTAssertEqual(message(LabelSchema(name: "x", file: file, format: .mapped, idColumns: ["a", "b", "c"])),
                   "schema 'x': idColumns must name one column (study or image id) or two (subject id, study id); got 3")
    XCTAssertThrowsError(try LabelSchema.parseValueMap("Present=1")) {
      XCTAssertEqual("\($0)", "value map entry 'Present=1' is not TEXT->LABEL (e.g. Present->1)")
    }
    XCTAssertThrowsError(try LabelSchema.parseValueMap("Present->yes")) {
      XCTAssertEqual("\($0)", "value map entry 'Present->yes': the label must be 1, 0, -1 or blank")
    }
    let clash = LabelSchema(name: "c", file: file, format: .mapped, values: ["Yes": .positive, "yes": .negative])
    try Fixture.write("index,Pneumothorax\n7,Yes\n", file)
    XCTAssertEqual(message(clash), "schema 'c': value map lists 'yes' twice (ignoring case) with different labels")
  }

  func testKeysIgnoreMIMICPrefixesAndPandasFloats() {
    XCTAssertEqual(LabelKey.normalize("s50414267"), "50414267")
    XCTAssertEqual(LabelKey.normalize(" 50414267.0 "), "50414267")
    XCTAssertEqual(LabelKey.normalize("p10000032"), "10000032")
    XCTAssertEqual(LabelKey.normalize("1.2.840.0"), "1.2.840.0")
    XCTAssertEqual(LabelKey.normalize("study"), "study")
    XCTAssertEqual(LabelKey(subject: "p10", id: "s20"), LabelKey(subject: "10", id: "20"))
    XCTAssertEqual(LabelKey(subject: "p10", id: "s20").description, "10/20")
    XCTAssertEqual(LabelKey(subject: nil, id: "1.2.3").description, "1.2.3")
  }
}

final class LabelsConfigTests: XCTestCase {
  func testConfigWordsNameTheirKey() throws {
    XCTAssertEqual(try UncertaintyPolicy(config: " ignore", context: "s.yaml: schemas.a.uncertainty"), .ignore)
    XCTAssertEqual(try LabelFormat(config: "mapped", context: "s.yaml: schemas.a.format"), .mapped)
    XCTAssertThrowsError(try UncertaintyPolicy(config: "U-ones", context: "s.yaml: schemas.a.uncertainty")) {
      XCTAssertEqual("\($0)", "s.yaml: schemas.a.uncertainty: 'U-ones' is not one of ones, zeros, ignore")
    }
    XCTAssertThrowsError(try LabelFormat(config: "negbio", context: "s.yaml: schemas.b.format")) {
      XCTAssertEqual("\($0)", "s.yaml: schemas.b.format: 'negbio' is not one of chexpert, mapped, probability")
    }
  }
}

final class LabelsSpecTests: XCTestCase {
  func testCommandLineSchemaSpecs() throws {
    let c = try LabelSchema(spec: "chexpert=/d/mimic-cxr-2.0.0-chexpert.csv.gz", uncertainty: .zeros)
    XCTAssertEqual(c.name, "chexpert")
    XCTAssertEqual(c.file.path, "/d/mimic-cxr-2.0.0-chexpert.csv.gz")
    XCTAssertEqual(c.format, .chexpert)
    XCTAssertEqual(c.idColumns, ["subject_id", "study_id"])
    XCTAssertEqual(c.uncertainty, .zeros)
    let m = try LabelSchema(spec: "phi3-cot=/r/c:d.csv:mapped", uncertainty: .ones, values: ["Yes": .positive],
                            mappedIDColumn: "SOPInstanceUID")
    XCTAssertEqual(m.file.path, "/r/c:d.csv", "only a known format after the last colon is taken as the format")
    XCTAssertEqual(m.format, .mapped)
    XCTAssertEqual(m.idColumns, ["SOPInstanceUID"])
    XCTAssertEqual(m.values, ["Yes": .positive])
    XCTAssertEqual(try LabelSchema(spec: "x=/a/b.csv:mapped", uncertainty: .ones).idColumns, ["index"])
    XCTAssertThrowsError(try LabelSchema(spec: "=/a.csv", uncertainty: .ones)) {
      XCTAssertEqual("\($0)", "--schema '=/a.csv' is not NAME=FILE[:chexpert|mapped]")
    }
    XCTAssertThrowsError(try LabelSchema(spec: "name:mapped", uncertainty: .ones)) {
      XCTAssertEqual("\($0)", "--schema 'name:mapped' is not NAME=FILE[:chexpert|mapped]")
    }
    XCTAssertThrowsError(try LabelSchema(spec: "a=:mapped", uncertainty: .ones)) {
      XCTAssertEqual("\($0)", "--schema 'a=:mapped' names no file")
    }
  }
}
