import Common
import XCTest
import TestSupport
@testable import Data

final class SplitTests: XCTestCase {
  /// 200 patients with 1 to 3 images each.
  func records() -> [ImageRecord] {
    var out: [ImageRecord] = []
    for p in 0..<200 {
      for i in 0...(p % 3) {
        out.append(ImageRecord(id: "img\(p)_\(i)", path: "/x/\(p)_\(i).jpg", subjectID: "\(10_000_000 + p)", studyID: "\(50_000_000 + p)"))
      }
    }
    return out
  }

  func testSplitMix64MatchesAnIndependentImplementation() throws {
    // The same generator, rejection draw and Fisher-Yates written in Python from the definitions.
    let out = try Python.json("""
      M = (1 << 64) - 1
      class SM:
          def __init__(self, seed): self.s = seed
          def next(self):
              self.s = (self.s + 0x9E3779B97F4A7C15) & M
              z = self.s
              z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
              z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
              return z ^ (z >> 31)
          def below(self, b):
              limit = M - (M % b)
              while True:
                  x = self.next()
                  if x < limit: return x % b
      r = SM(1234567)
      first = [str(r.next()) for _ in range(3)]
      r = SM(42)
      a = list(range(10))
      for i in range(len(a) - 1, 0, -1):
          j = r.below(i + 1); a[i], a[j] = a[j], a[i]
      subjects = sorted(str(10_000_000 + p) for p in range(200))
      r = SM(7)
      for i in range(len(subjects) - 1, 0, -1):
          j = r.below(i + 1); subjects[i], subjects[j] = subjects[j], subjects[i]
      print(json.dumps({'first': first, 'shuffled': a, 'tune': sorted(subjects[:40])}))
      """) as! [String: Any]
    // The split itself, as documented: sorted patients, shuffled, the first round(200 * 0.2) to tune.
    let split = try PatientSplit.make(records: records(), seed: 7)
    XCTAssertEqual(split.parts.filter { $0.value == .tune }.map(\.key).sorted(), out["tune"] as! [String])
    var r = SplitMix64(seed: 1234567)
    XCTAssertEqual((0..<3).map { _ in String(r.next()) }, out["first"] as! [String])
    var g = SplitMix64(seed: 42)
    var a = Array(0..<10)
    g.shuffle(&a)
    XCTAssertEqual(a, out["shuffled"] as! [Int])
  }

  /// `Seeds`' named streams equal the benchmark reference's Python implementation
  /// (scripts/bench/train_reference.py `derive`), and no two streams share a seed.
  func testNamedSeedStreamsMatchPythonAndAreDistinct() throws {
    let out = try Python.json("""
      sys.path.insert(0, os.path.join(sys.argv[1], 'scripts', 'bench'))
      import train_reference as ref
      print(json.dumps({s: [str(ref.derive(7, s, i)) for i in range(3)] for s in sys.argv[2:]}))
      """, args: [TestEnv.root.path] + SeedStream.allCases.map(\.rawValue)) as! [String: [String]]
    let seeds = Seeds(7)
    var all = Set<UInt64>()
    for s in SeedStream.allCases {
      XCTAssertEqual((0..<3).map { String(seeds.seed(s, index: $0)) }, out[s.rawValue], s.rawValue)
      for i in 0..<3 { all.insert(seeds.seed(s, index: i)) }
    }
    XCTAssertEqual(all.count, SeedStream.allCases.count * 3, "every stream and index draws its own seed")
    XCTAssertNotEqual(Seeds(7).seed(.modelInit), Seeds(7).seed(.augmentHost), "model init and augmentation differ")
  }

  func testSplitIsByPatientSizedAndDeterministic() throws {
    let recs = records()
    let s = try PatientSplit.make(records: recs, seed: 7)
    XCTAssertEqual(s, try PatientSplit.make(records: recs.reversed(), seed: 7), "order of records must not matter")
    XCTAssertNotEqual(s, try PatientSplit.make(records: recs, seed: 8))
    XCTAssertEqual(s.parts.values.filter { $0 == .tune }.count, 40)
    XCTAssertEqual(s.parts.count, 200)
    let tune = Set(s.indices(.tune, in: recs).map { recs[$0].subjectID })
    let train = Set(s.indices(.train, in: recs).map { recs[$0].subjectID })
    XCTAssertTrue(tune.isDisjoint(with: train))
    XCTAssertEqual(tune.count + train.count, 200)
    XCTAssertEqual(s.indices(.tune, in: recs).count + s.indices(.train, in: recs).count, recs.count)
    XCTAssertEqual(try PatientSplit.make(records: recs, tuneFraction: 0.25, seed: 7).parts.values.filter { $0 == .tune }.count, 50)
    XCTAssertThrowsError(try PatientSplit.make(records: recs, tuneFraction: 1.5, seed: 7)) {
      XCTAssertEqual("\($0)", "split: the tune fraction must be between 0 and 1, got 1.5")
    }
  }

  func testStratificationSharesPositivesInProportion() throws {
    let recs = records()
    // 30 positive patients of 200: a stratified 20 % tune set holds exactly 6 of them.
    let positive = Set((0..<30).map { "\(10_000_000 + $0 * 6)" })
    let targets: [Float] = recs.flatMap { r -> [Float] in positive.contains(r.subjectID) ? [1, 0] : [0, 0] }
    let set = LabelledSet(records: recs, findings: ["Pneumothorax", "Fracture"], targets: targets,
                          mask: Array(repeating: 1, count: targets.count))
    let strata = PatientSplit.positiveStrata(set)
    XCTAssertEqual(strata[positive.first!], "10")
    XCTAssertEqual(Set(strata.values), ["10", "00"])
    // Small strata: 7 patients in strata of 1, 2 and 4; 20 % of 7 rounds to 1 tune patient in total
    // (per-stratum rounding would give 0), placed in the stratum with the largest remainder (4 * 0.2).
    let few = (0..<7).map { ImageRecord(id: "i\($0)", path: "/\($0)", subjectID: "s\($0)", studyID: "t\($0)") }
    let fewStrata = ["s0": "a", "s1": "b", "s2": "b", "s3": "c", "s4": "c", "s5": "c", "s6": "c"]
    let fewSplit = try PatientSplit.make(records: few, seed: 1, strata: fewStrata)
    XCTAssertEqual(fewSplit.parts.filter { $0.value == .tune }.map { fewStrata[$0.key]! }, ["c"])
    for seed: UInt64 in 0..<5 {
      let s = try PatientSplit.make(records: recs, seed: seed, strata: strata)
      XCTAssertEqual(positive.filter { s.parts[$0] == SplitPart.tune }.count, 6)
      XCTAssertEqual(s.parts.values.filter { $0 == SplitPart.tune }.count, 40)
    }
  }

  func testWrittenReusedAndCheckedOnImport() throws {
    let dir = try TestEnv.scratch("split")
    let file = dir.appendingPathComponent("split.csv")
    let recs = records()
    let (made, reused0) = try PatientSplit.loadOrMake(file, records: recs, seed: 3)
    XCTAssertFalse(reused0)
    let text = try String(contentsOf: file, encoding: .utf8)
    let lines = text.split(separator: "\n")
    XCTAssertEqual(lines.first, "id,subject_id,study_id,split")
    XCTAssertEqual(lines.count, recs.count + 1)
    XCTAssertEqual(lines[1], "img0_0,10000000,50000000,\(made.parts["10000000"]!.rawValue)")
    // Reused, even with another seed: the file wins.
    let (again, reused1) = try PatientSplit.loadOrMake(file, records: recs, seed: 99)
    XCTAssertTrue(reused1)
    XCTAssertEqual(again, made)
    XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), text, "a reused split is not rewritten")

    // A patient on both sides.
    try Fixture.write("id,subject_id,study_id,split\na,1,10,train\nb,2,20,tune\nc,1,11,tune\n", file)
    XCTAssertThrowsError(try PatientSplit.loadOrMake(file, records: recs, seed: 3)) {
      XCTAssertEqual("\($0)", "\(file.path):4: patient 1 is in tune here but in train at line 2; a patient must be on one side only: fix the file or delete it to make a new split")
    }
    try Fixture.write("id,subject_id,study_id,split\na,1,10,validate\n", file)
    XCTAssertThrowsError(try PatientSplit.read(file)) {
      XCTAssertEqual("\($0)", "\(file.path):2: split 'validate' is not train or tune")
    }
    try Fixture.write("id,subject_id,study_id,split\nimg0_0,10000000,50000000,train\n", file)
    XCTAssertThrowsError(try PatientSplit.loadOrMake(file, records: recs, seed: 3)) {
      XCTAssertEqual("\($0)", "\(file.path) does not place patient 10000001 (image img1_0); the split was made for other data: delete it to make a new split")
    }
    try Fixture.write("id,subject_id,study_id,split\nimg0_0,77,50000000,train\n", file)
    XCTAssertThrowsError(try PatientSplit.loadOrMake(file, records: recs, seed: 3)) {
      XCTAssertEqual("\($0)", "\(file.path): image img0_0 belongs to patient 77 there but to 10000000 in the dataset; the split was made for other data: delete it to make a new split")
    }
  }
}

final class SplitIntegrationTests: XCTestCase {
  /// The flow Records.swift documents, end to end on MIMIC-layout files.
  func testIndexLabelSplitSubset() throws {
    let root = try TestEnv.scratch("flow")
    try Fixture.writeGzip(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz"))
    let labels = root.appendingPathComponent("mimic-cxr-2.0.0-chexpert.csv.gz")
    try Fixture.writeGzip(Fixture.chexpertLabels, labels)
    let index = try MIMICCXRJPG(root: root).index()
    let table = try LabelSchema(name: "chexpert", file: labels, format: .chexpert).read(findings: ["Pneumothorax", "Fracture"])
    let labelled = Labelling(index: index, table: table)
    let run = root.appendingPathComponent("run")
    let (split, reused) = try PatientSplit.loadOrMake(run.appendingPathComponent("split.csv"), records: index.records,
                                                      tuneFraction: 0.34, seed: 11)
    XCTAssertFalse(reused)
    let trainIdx = split.indices(.train, in: labelled.set.records), tuneIdx = split.indices(.tune, in: labelled.set.records)
    let train = labelled.set.subset(trainIdx), tune = labelled.set.subset(tuneIdx)
    XCTAssertEqual(train.count + tune.count, 3)
    XCTAssertEqual(split.parts.values.filter { $0 == SplitPart.tune }.count, 1, "round(3 patients * 0.34) = 1 patient in tune")
    let tunePatient = split.parts.first { $0.value == .tune }!.key
    XCTAssertEqual(tune.records.map(\.id), labelled.set.records.filter { $0.subjectID == tunePatient }.map(\.id))
    XCTAssertTrue(Set(train.records.map(\.subjectID)).isDisjoint(with: tune.records.map(\.subjectID)))
    for (i, r) in tuneIdx.enumerated() {
      XCTAssertEqual(tune.target(i, 0), labelled.set.target(r, 0))
      XCTAssertEqual(tune.target(i, 1), labelled.set.target(r, 1))
    }
  }
}
