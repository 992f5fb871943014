import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// Subgroups: per attribute value against its complement and against all cases, with CIs from
/// the evaluation's own bootstrap rounds.
final class SubgroupTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-subgroups") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  struct Cases {
    var ids: [String] = [], scores: [Double] = [], labels: [Bool] = [], attribute: [String: String] = [:]

    var predictions: Predictions {
      let text = "id,Pneumothorax\n" + zip(ids, scores).map { "\($0),\($1)" }.joined(separator: "\n") + "\n"
      return try! Predictions(name: "model", table: CSVTable.parse(text, source: "preds.csv"), findings: ["Pneumothorax"])
    }
    var reference: ReferenceLabels {
      let text = "id,Pneumothorax\n" + zip(ids, labels).map { "\($0),\($1 ? 1 : 0)" }.joined(separator: "\n") + "\n"
      return try! ReferenceLabels(name: "masks", table: CSVTable.parse(text, source: "masks.csv"), findings: ["Pneumothorax"], policy: .ones)
    }
  }

  /// A planted shortcut: the score follows only the attribute (tube 0.7, no tube 0.2, plus noise
  /// unrelated to the label), and the label follows the attribute (80 % vs 10 % positive).
  func shortcut(count: Int = 400) -> Cases {
    var rng = TestRandom(17)
    var c = Cases()
    for i in 0..<count {
      let tube = rng.uniform() < 0.4
      c.ids.append("img\(i)")
      c.labels.append(rng.uniform() < (tube ? 0.8 : 0.1))
      c.scores.append((tube ? 0.7 : 0.2) + 0.1 * rng.uniform())
      c.attribute["img\(i)"] = tube ? "yes" : "no"
    }
    return c
  }

  func evaluate(_ c: Cases, attributes: [SubgroupAttribute], rounds: Int = 400, minimumCases: Int = 10) throws -> EvaluationResult {
    var options = EvaluationOptions()
    options.subgroups = attributes
    options.minimumSubgroupCases = minimumCases
    return try Evaluation.run(predictions: [c.predictions], references: [c.reference], findings: ["Pneumothorax"],
                              rounds: rounds, seed: 3, options: options)
  }

  func testPlantedShortcutIsHighOverallAndChanceWithinEachValue() throws {
    let c = shortcut()
    var result = try evaluate(c, attributes: [SubgroupAttribute(name: "chest tube", source: "test", values: c.attribute)])
    let overall = try XCTUnwrap(result.row(model: "model", reference: "masks", finding: "Pneumothorax", metric: "auroc"))
    XCTAssertGreaterThan(overall.value, 0.8, "the shortcut looks excellent over all cases")
    XCTAssertEqual(result.subgroups.map(\.value), ["no", "yes"])
    for r in result.subgroups {
      let members = c.ids.indices.filter { c.attribute[c.ids[$0]] == r.value }
      let positives = members.filter { c.labels[$0] }.count
      XCTAssertEqual(r.n, members.count)
      XCTAssertEqual(r.nPos, positives)
      XCTAssertEqual(r.prevalence, Double(positives) / Double(members.count))
      XCTAssertEqual(r.complementN, c.ids.count - members.count)
      XCTAssertEqual(r.complementNPos, c.labels.filter { $0 }.count - positives)
      XCTAssertEqual(try XCTUnwrap(r.auroc.value), 0.5, accuracy: 0.12, "\(r.value): chance within the value")
      XCTAssertEqual(try XCTUnwrap(r.overallAUROC.value), overall.value, accuracy: 1e-12, "every case has a value")
      // The gap: the value's AUROC is far below the overall one, and the paired CI says so.
      XCTAssertLessThan(try XCTUnwrap(r.aurocVersusOverall.ciHigh), 0, "\(r.value): the CI of subgroup − all excludes 0")
      XCTAssertLessThan(try XCTUnwrap(r.aurocVersusOverall.value), -0.25)
      XCTAssertEqual(r.roundsUsed, 400)
    }
    // Both values sit at chance: no gap between them, and the CI of their difference holds 0.
    let yes = try XCTUnwrap(result.subgroups.first { $0.value == "yes" })
    XCTAssertLessThan(try XCTUnwrap(yes.aurocDifference.ciLow), 0)
    XCTAssertGreaterThan(try XCTUnwrap(yes.aurocDifference.ciHigh), 0)

    try result.write(to: dir)
    let csv = try CSVTable.read(dir.appendingPathComponent("subgroups.csv"))
    XCTAssertEqual(csv.count, 2)
    XCTAssertEqual(Array(csv.header.prefix(8)), ["attribute", "value", "model", "reference", "finding", "n", "n_pos", "prevalence"])
    XCTAssertEqual(csv.rows[1][csv.index(of: "auroc_vs_overall_ci_high")!], "\(yes.aurocVersusOverall.ciHigh!)", "full precision")
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("metrics.json"))) as? [String: Any])
    XCTAssertEqual((json["subgroups"] as? [[String: Any]])?.count, 2)
    let md = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
    XCTAssertTrue(md.contains("### Pneumothorax by chest tube (reference: masks)"), md)
    XCTAssertTrue(md.contains("| model | yes | \(yes.n) | \(yes.nPos) | "), md)
    let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertTrue(html.contains("<h3>Pneumothorax by chest tube (reference: masks)</h3>"))
    XCTAssertTrue(html.contains(Format.interval(yes.aurocVersusOverall.ciLow, yes.aurocVersusOverall.ciHigh)))
  }

  /// The model sees the finding only in one value: the difference to the complement is a gap
  /// whose CI excludes 0, with opposite signs for the two values.
  func testGapToTheComplement() throws {
    var rng = TestRandom(5)
    var c = Cases()
    for i in 0..<300 {
      let tube = i % 2 == 0
      let label = rng.uniform() < 0.4
      c.ids.append("i\(i)"); c.labels.append(label)
      c.scores.append(tube ? (label ? 0.6 : 0.3) + 0.3 * rng.uniform() : rng.uniform())
      c.attribute["i\(i)"] = tube ? "yes" : "no"
    }
    let result = try evaluate(c, attributes: [SubgroupAttribute(name: "tube", source: "test", values: c.attribute)])
    let yes = try XCTUnwrap(result.subgroups.first { $0.value == "yes" }), no = try XCTUnwrap(result.subgroups.first { $0.value == "no" })
    XCTAssertGreaterThan(try XCTUnwrap(yes.aurocDifference.ciLow), 0)
    XCTAssertLessThan(try XCTUnwrap(no.aurocDifference.ciHigh), 0)
    XCTAssertEqual(try XCTUnwrap(yes.aurocDifference.value), -(try XCTUnwrap(no.aurocDifference.value)), accuracy: 1e-12)
    XCTAssertEqual(yes.complementAUROC.value, no.auroc.value)
  }

  /// Subgroup, complement and all-known areas equal scikit-learn's on the subsets, with ties and
  /// cases of unknown value; and each bootstrap round equals a direct weighted computation.
  func testAreasEqualScikitLearnOnEachSubset() throws {
    var rng = TestRandom(99)
    var c = Cases()
    let values = ["a", "b", "c"]
    for i in 0..<240 {
      let label = rng.uniform() < 0.35
      c.ids.append("x\(i)"); c.labels.append(label)
      c.scores.append(((label ? 0.25 : 0) + rng.uniform() * 10).rounded(.down) / 10)  // coarse grid: many ties
      if i % 11 != 0 { c.attribute["x\(i)"] = values[Int(rng.next() % 3)] }
    }
    let result = try evaluate(c, attributes: [SubgroupAttribute(name: "site", source: "sites.csv", values: c.attribute)], rounds: 0)
    XCTAssertEqual(result.subgroups.count, 3)
    XCTAssertTrue(result.notes.contains("subgroups by 'site' on 'masks' / 'Pneumothorax': 22 of 240 case(s) have no value and are left out of its subgroups and complements"), "\(result.notes)")
    func subset(_ keep: (String?) -> Bool) -> [String: Any] {
      let idx = c.ids.indices.filter { keep(c.attribute[c.ids[$0]]) }
      return ["scores": idx.map { c.scores[$0] }, "labels": idx.map { c.labels[$0] ? 1 : 0 }]
    }
    var input: [[String: Any]] = []
    for v in values {
      input.append(subset { $0 == v }); input.append(subset { $0 != nil && $0 != v }); input.append(subset { $0 != nil })
    }
    let out = try XCTUnwrap(try pythonExact("""
      import json, sys
      from sklearn.metrics import roc_auc_score, average_precision_score
      print(json.dumps(exact([[roc_auc_score(c['labels'], c['scores']), average_precision_score(c['labels'], c['scores'])]
                              for c in json.load(open(sys.argv[1]))])))
      """, input: input) as? [[Double]])
    for (k, r) in result.subgroups.enumerated() {
      XCTAssertEqual(r.value, values[k])
      XCTAssertEqual(r.auroc.value!, out[3 * k][0], accuracy: 1e-12); XCTAssertEqual(r.auprc.value!, out[3 * k][1], accuracy: 1e-12)
      XCTAssertEqual(r.complementAUROC.value!, out[3 * k + 1][0], accuracy: 1e-12)
      XCTAssertEqual(r.complementAUPRC.value!, out[3 * k + 1][1], accuracy: 1e-12)
      XCTAssertEqual(r.overallAUROC.value!, out[3 * k + 2][0], accuracy: 1e-12)
      XCTAssertEqual(r.overallAUPRC.value!, out[3 * k + 2][1], accuracy: 1e-12)
      XCTAssertNil(r.auroc.ciLow, "no rounds, no CI")
    }
    // The bootstrap's pass in a round equals Ranking on the subset (and on its complement) with
    // that round's counts: on the coarse scores (tie groups of several cases) and on fine ones
    // (almost every tie group one case: the pass's shortcut for those).
    let fine = c.labels.map { ($0 ? 0.25 : 0) + rng.uniform() }
    let grouping = Subgroups.groupings([SubgroupAttribute(name: "site", source: "", values: c.attribute)], ids: c.ids)[0]
    let rankings = [Ranking(scores: c.scores, labels: c.labels), Ranking(scores: fine, labels: c.labels)]
    let samples = Subgroups.bootstrap(labels: c.labels, rankings: rankings, groupings: [grouping], rounds: 5, seed: 11)
    let positives = c.labels.indices.filter { c.labels[$0] }.map { Int32($0) }
    for (m, scores) in [c.scores, fine].enumerated() {
      for round in 0..<5 {
        var counts = [Int32](repeating: 0, count: c.ids.count)
        counts.withUnsafeMutableBufferPointer { _ = Bootstrap.draw(into: $0, seed: 11, round: round, positives: positives) }
        for v in 0..<3 {
          for (side, keep) in [(0, { (g: Int32) in g == Int32(v) }), (2, { (g: Int32) in g >= 0 && g != Int32(v) })] {
            let idx = c.ids.indices.filter { keep(grouping.groupOf[$0]) }
            let direct = Ranking(scores: idx.map { scores[$0] }, labels: idx.map { c.labels[$0] })
            let w = idx.map { counts[$0] }
            let expected = w.withUnsafeBufferPointer { direct.areas(weights: $0) }
            XCTAssertEqual(samples[m][0][v][side][round], expected?.auroc ?? .nan, accuracy: 1e-12, "model \(m) value \(v) side \(side)")
            XCTAssertEqual(samples[m][0][v][side + 1][round], expected?.auprc ?? .nan, accuracy: 1e-12, "model \(m) value \(v) side \(side)")
          }
        }
      }
    }
  }

  /// References resampled together (one draw per round, each model's subgroup passes over up to
  /// four references as one, in SIMD lanes) give exactly what each gives alone, for a two- and a
  /// three-valued attribute with unknown values, coarse (tied) and fine scores, and a reference
  /// with one positive that many shared draws do not suit.
  func testReferencesResampledTogetherEqualEachAlone() {
    var rng = TestRandom(5)
    let n = 260
    let truth = (0..<n).map { _ in rng.uniform() < 0.3 }
    let scores = [truth.map { (($0 ? 0.25 : 0) + rng.uniform() * 10).rounded(.down) / 10 }, truth.map { ($0 ? 0.3 : 0) + rng.uniform() }]
    var sets = [0.0, 0.05, 0.1, 0.02, 0.08].map { flip in truth.map { $0 != (rng.uniform() < flip) } }
    sets.append((0..<n).map { $0 == 3 })
    let ids = (0..<n).map { "c\($0)" }
    var site: [String: String] = [:], tube: [String: String] = [:]
    for (i, id) in ids.enumerated() {
      if i % 13 != 0 { site[id] = ["a", "b", "c"][Int(rng.next() % 3)] }
      tube[id] = truth[i] && rng.uniform() < 0.5 ? "yes" : "no"
    }
    let groupings = Subgroups.groupings([SubgroupAttribute(name: "site", source: "", values: site),
                                         SubgroupAttribute(name: "tube", source: "", values: tube)], ids: ids)
    let rankings = sets.map { labels in scores.map { Ranking(scores: $0, labels: labels) } }
    XCTAssertNotNil(Subgroups.LabelLanes(labelSets: Array(sets[0..<4]), rankings: rankings[0..<4].map { $0[1] }))
    let together = Subgroups.bootstrap(labelSets: sets, rankings: rankings, groupings: groupings, rounds: 30, seed: 8)
    for j in sets.indices {
      let alone = Subgroups.bootstrap(labels: sets[j], rankings: rankings[j], groupings: groupings, rounds: 30, seed: 8)
      // NaN (a side without a class) compares unequal: compare the bit patterns.
      XCTAssertEqual(together[j].map { $0.map { $0.map { $0.map { $0.map(\.bitPattern) } } } },
                     alone.map { $0.map { $0.map { $0.map { $0.map(\.bitPattern) } } } }, "set \(j)")
      XCTAssertEqual(alone.count, 2); XCTAssertEqual(alone[0].map(\.count), [3, 2]); XCTAssertEqual(alone[0][0][0][0].count, 30)
    }
  }

  func testSmallOrOneClassSubgroupsAreSkippedWithANote() throws {
    var c = shortcut(count: 200)
    c.attribute["img0"] = "rare"; c.attribute["img1"] = "rare"; c.attribute["img2"] = "rare"
    let result = try evaluate(c, attributes: [SubgroupAttribute(name: "kind", source: "k.csv", values: c.attribute)], rounds: 50)
    XCTAssertEqual(Set(result.subgroups.map(\.value)), ["no", "yes"])
    let rare = try XCTUnwrap(result.notes.first { $0.hasPrefix("subgroup 'kind' = 'rare'") })
    XCTAssertTrue(rare.hasPrefix("subgroup 'kind' = 'rare' on 'masks' / 'Pneumothorax' was skipped: the subgroup has 3 case(s), fewer than 10"), rare)
    // One value only: nothing to compare.
    let one = try evaluate(c, attributes: [SubgroupAttribute(name: "site", source: "s.csv", values: Dictionary(uniqueKeysWithValues: c.ids.map { ($0, "A") }))], rounds: 10)
    XCTAssertTrue(one.subgroups.isEmpty)
    XCTAssertTrue(one.notes.contains("subgroups by 'site' on 'masks' / 'Pneumothorax': the cases hold one value ('A'), so there is nothing to compare; skipped"))
  }

  // MARK: the user CSV

  func table(_ text: String) throws -> CSVTable { try CSVTable.parse(text, source: "attrs.csv") }

  func testUserCSVColumnsBecomeAttributes() throws {
    let attrs = try SubgroupAttribute.parse(table("id,sex,age_band\na,F,18-39\nb,M,\nc,F,65+\n"))
    XCTAssertEqual(attrs.map(\.name), ["sex", "age_band"])
    XCTAssertEqual(attrs[0].values, ["a": "F", "b": "M", "c": "F"])
    XCTAssertEqual(attrs[1].values, ["a": "18-39", "c": "65+"], "a blank cell is unknown")
    XCTAssertEqual(try SubgroupAttribute.parse(table("SOPInstanceUID,sex,site\na,F,x\n"), columns: ["site"]).map(\.name), ["site"])
  }

  func testUserCSVErrorsNameFileRowAndRemedy() throws {
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table("image,sex\na,F\n")),
                           "attrs.csv (--subgroups) has no id column (id, dicom_id, SOPInstanceUID); its columns are: image, sex; add one holding the test images' ids")
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table("id,sex\na,F\n"), columns: ["age"]),
                           "attrs.csv (--subgroups) has no attribute column 'age'; its attribute columns are: sex")
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table("id,sex\na,F\nb,M\na,M\n")),
                           "attrs.csv:4: id 'a' appears twice (first on line 2); keep one row per image")
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table("id,sex\na,F\n,M\n")),
                           "attrs.csv:3: the id is blank; fill it in or remove the row")
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table("id\na\n")),
                           "attrs.csv (--subgroups) has only the id column 'id'; add a column per attribute (e.g. sex, age_band, site)")
    let ages = "id,age\n" + (0..<25).map { "i\($0),\(20 + $0)" }.joined(separator: "\n") + "\n"
    XCTAssertThrowsMessage(try SubgroupAttribute.parse(table(ages)),
                           "attrs.csv (--subgroups): column 'age' has 25 distinct values, more than 20; subgroups need categories: bin it (e.g. age_band 18-39, 40-64, 65+) or leave it out with --subgroup-columns / evaluate.subgroups.columns")
    XCTAssertThrowsMessage(try SubgroupAttribute.read(dir.appendingPathComponent("missing.csv")),
                           "--subgroups \(dir.appendingPathComponent("missing.csv").path): no such file; give a CSV with an id column and one column per attribute (e.g. id,sex,age_band)")
  }

  func testAttributeIDsAreCheckedAgainstTheTestSet() throws {
    let c = shortcut(count: 100)
    XCTAssertThrowsMessage(try evaluate(c, attributes: [SubgroupAttribute(name: "sex", source: "attrs.csv", values: ["p1": "F", "p2": "M"])]),
                           "attrs.csv: none of the 2 id(s) with a 'sex' value is a test image id (e.g. 'p1'); the id column must hold the ids of the predictions and references (for CANDID-PTX the SOPInstanceUID)")
    var values = c.attribute
    values["stranger"] = "yes"
    let result = try evaluate(c, attributes: [SubgroupAttribute(name: "tube", source: "attrs.csv", values: values)], rounds: 10)
    XCTAssertTrue(result.notes.contains("subgroup attribute 'tube' (attrs.csv): 1 of 101 id(s) match no test image and were ignored"), "\(result.notes)")
    XCTAssertThrowsMessage(try evaluate(c, attributes: [SubgroupAttribute(name: "tube", source: "a.csv", values: c.attribute),
                                                        SubgroupAttribute(name: "tube", source: "b.csv", values: c.attribute)]),
                           "subgroup attribute 'tube' is given twice (b.csv); rename one of them")
  }

  func testCommandLineOptions() throws {
    let c = shortcut(count: 120)
    let preds = try write("id,Pneumothorax\n" + zip(c.ids, c.scores).map { "\($0),\($1)" }.joined(separator: "\n") + "\n", "p.csv", in: dir)
    let ref = try write("id,Pneumothorax\n" + zip(c.ids, c.labels).map { "\($0),\($1 ? 1 : 0)" }.joined(separator: "\n") + "\n", "r.csv", in: dir)
    let attrs = try write("id,tube,site\n" + c.ids.enumerated().map { "\($1),\(c.attribute[$1]!),s\($0 % 2)" }.joined(separator: "\n") + "\n", "a.csv", in: dir)
    let out = dir.appendingPathComponent("out")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["m=\(preds)"], references: ["r=\(ref)"], findings: nil, rounds: 20,
                                             subgroupColumns: ["tube"], out: out),
                           "--subgroup-columns tube needs --subgroups FILE: the CSV (id and one column per attribute) they are columns of")
    XCTAssertThrowsMessage(try Jobs.evaluate(predictions: ["m=\(preds)"], references: ["r=\(ref)"], findings: nil, rounds: 20,
                                             subgroups: attrs, subgroupColumns: ["sex"], out: out),
                           "\(attrs) (--subgroups) has no attribute column 'sex'; its attribute columns are: tube, site")
    let result = try Jobs.evaluate(predictions: ["m=\(preds)"], references: ["r=\(ref)"], findings: nil, rounds: 20,
                                   subgroups: attrs, subgroupColumns: ["tube"], out: out)
    XCTAssertEqual(Set(result.subgroups.map(\.attribute)), ["tube"])
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("subgroups.csv").path))
  }
}
