import Common
import Data
import Evaluate
import Foundation
import TestSupport
import Torch
import Train
import XCTest
@testable import Experiment

final class DerivedSchemaTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try TestEnv.scratch("derived")
    try writeLabellers()
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  /// Four labellers of 3,000 studies in CheXpert's layout: the truth and three with known rates
  /// (sensitivity, specificity) per finding.
  static let rates: [String: [(Double, Double)]] = ["a": [(0.9, 0.95), (0.7, 0.98)], "b": [(0.8, 0.9), (0.85, 0.9)],
                                                   "c": [(0.95, 0.85), (0.6, 0.95)]]
  var truth: [[Bool]] = []

  func writeLabellers() throws {
    var rng = SplitMix64(seed: 42)
    truth = (0..<3000).map { _ in [rng.uniform() < 0.2, rng.uniform() < 0.1] }
    func write(_ name: String, _ label: (Int, Int) -> String) throws {
      var text = "subject_id,study_id,Pneumothorax,Fracture\n"
      for i in 0..<3000 { text += "\(10_000_000 + i / 3),\(50_000_000 + i),\(label(i, 0)),\(label(i, 1))\n" }
      try text.write(to: root.appendingPathComponent("\(name).csv"), atomically: true, encoding: .utf8)
    }
    try write("truth") { i, f in self.truth[i][f] ? "1.0" : (i % 2 == 0 ? "0.0" : "") }
    for name in ["a", "b", "c"] {
      let r = Self.rates[name]!
      try write(name) { i, f in
        let u = rng.uniform()
        let positive = self.truth[i][f] ? u < r[f].0 : u >= r[f].1
        return positive ? "1.0" : "0.0"
      }
    }
  }

  func config(_ schemas: String, overrides: [String] = []) throws -> Config {
    try Config.parse("""
      name: derived
      findings: [Pneumothorax, Fracture]
      train_data: {kind: manifest, manifest: m.csv}
      test_data: {kind: none}
      schemas:
      \(schemas)
      """, source: "derived.yaml", overrides: overrides, baseDir: root)
  }

  let schemas = """
      - {name: truth, file: truth.csv}
      - {name: a, file: a.csv}
      - {name: b, file: b.csv}
      - {name: c, file: c.csv}
      - name: noisy
        derive: {from: truth, flip_positive: 0.3, flip_negative: 0.05, per_finding: {Fracture: {flip_positive: 0.5}}, seed: 1}
      - name: majority
        derive: {vote: [a, b, c], rule: majority}
      - name: consensus
        derive: {dawid_skene: [a, b, c], output: soft}
      - name: curve
        derive: {from: truth, seed: 2}
        sweep: {flip_positive: [0, 0.25, 0.5]}
    """

  func testConfigExpandsSweepsAndReadsBack() throws {
    let c = try config(schemas)
    let names = c.settings.schemas.compactMap(\.name)
    XCTAssertEqual(names, ["truth", "a", "b", "c", "noisy", "majority", "consensus", "curve-fp0", "curve-fp0.25", "curve-fp0.5"])
    let point = c.settings.schemas[8]
    XCTAssertEqual(point.derive.from, "truth")
    XCTAssertEqual(point.derive.flipPositive, 0.25)
    XCTAssertEqual(point.derive.flipNegative, 0)
    XCTAssertEqual(point.derive.seed, 2)
    XCTAssertFalse(point.sweep.isSet)
    XCTAssertEqual(c.settings.schemas[4].derive.perFinding["Fracture"], StudyConfig.FlipOverride(flipPositive: 0.5))
    // The resolved config lists every point and reads back to the same settings.
    let again = try Config.parse(c.resolvedYAML(), source: "resolved.yaml")
    XCTAssertEqual(again.settings, c.settings)
  }

  func testConfigErrorsNameTheKey() throws {
    func message(_ s: String) -> String? {
      do { _ = try config(s); return nil } catch let e as UserError { return e.message } catch { return "\(error)" }
    }
    let base = "  - {name: truth, file: truth.csv}\n  - {name: a, file: a.csv}\n  - {name: b, file: b.csv}\n"
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: nobody}}"),
                   "derived.yaml:9: schemas[3].derive.from names 'nobody', which is not a schema (schemas: truth, a, b, n)")
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth, vote: [a, b]}}"),
                   "derived.yaml:9: schemas[3].derive gives 2 recipes; use exactly one of from (label noise), vote or dawid_skene")
    XCTAssertEqual(message(base + "  - {name: n, derive: {dawid_skene: [a, b]}}"),
                   "derived.yaml:9: Dawid-Skene needs at least 3 schemas (got 2): with fewer, one labeller's errors cannot be told from another's")
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth, flip_positive: 1.5}}"),
                   "derived.yaml:9: schemas[3].derive.flip_positive is 1.5; a flip rate is a probability in [0, 1]")
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth, per_finding: {Edema: {flip_positive: 0.1}}}}"),
                   "derived.yaml:9: schemas[3].derive.per_finding names 'Edema', which is not one of the study's findings (Pneumothorax, Fracture)")
    XCTAssertEqual(message(base + "  - {name: n, derive: {vote: [a, b], output: soft}}"),
                   "derived.yaml:9: schemas[3].derive.output applies to derive.dawid_skene only")
    XCTAssertEqual(message(base + "  - {name: n, file: x.csv, derive: {from: truth}}"),
                   "derived.yaml:9: schemas[3] gives both file and derive; a schema's labels come from one of them")
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: m}}\n  - {name: m, derive: {from: n}}"),
                   "derived.yaml:9: derived schemas form a cycle: n -> m -> n")
    XCTAssertEqual(message(base + "  - {name: n, sweep: {flip_positive: [0.1]}}"),
                   "derived.yaml:9: schemas[3].sweep needs derive.from (the schema whose labels are flipped)")
    XCTAssertEqual(message(base + "  - {name: n, derive: {vote: [a, b], ties: maybe}}")?.contains("schemas[3].derive.ties"), true)
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth, per_finding: {Fracture: {flip: 0.1}}}}")?.contains("per_finding"), true)
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth, per_finding: {Fracture: {flip: 0.1}}}}"),
                   "derived.yaml:9: schemas[3].derive.per_finding.Fracture.flip is not a key of per_finding; use flip_positive or flip_negative")
    XCTAssertEqual(message(base + "  - {name: n, derive: {form: truth}}"),
                   "derived.yaml:9: unknown key 'schemas[3].derive.form'; known keys under 'schemas[3].derive': from, flip_positive, flip_negative, per_finding, seed, vote, rule, ties, dawid_skene, output")
    XCTAssertEqual(message(base + "  - {name: n, derive: {from: truth}}\nreferences:\n  - {name: r, file: r.csv, derive: {from: truth}}"),
                   "derived.yaml:11: references[0] is derived; derive and sweep are for schemas (a reference is a file of test-set labels)")
  }

  /// A changed seed or rate changes the training inputs of that schema only; a changed source
  /// file those of every schema made from it; file schemas carry no derive keys.
  func testFingerprintsFollowTheSources() throws {
    let study = try Study(try config(schemas))
    func fingerprints(_ s: Study) throws -> [String: String] {
      Dictionary(uniqueKeysWithValues: try s.schemaNames.map { ($0, try TrainingInputs(study: s, schema: $0).fingerprint) })
    }
    let before = try fingerprints(study)
    XCTAssertFalse(try TrainingInputs(study: study, schema: "truth").values.keys.contains { $0.contains("derive") || $0.contains("sweep") })
    let noisy = try TrainingInputs(study: study, schema: "noisy").values
    XCTAssertEqual(noisy["schema.derive.seed"], "1")
    XCTAssertNotNil(noisy["file source.truth.file"])
    XCTAssertEqual(Set(try TrainingInputs(study: study, schema: "consensus").values.keys.filter { $0.hasPrefix("file source.") }),
                   ["file source.a.file", "file source.b.file", "file source.c.file"])
    func changed(_ overrides: [String]) throws -> Set<String> {
      let after = try fingerprints(try Study(try config(schemas, overrides: overrides)))
      return Set(before.keys.filter { before[$0] != after[$0] })
    }
    XCTAssertEqual(try changed(["schemas[4].derive.seed=5"]), ["noisy"])
    XCTAssertEqual(try changed(["schemas[4].derive.flip_negative=0.1"]), ["noisy"])
    XCTAssertEqual(try changed(["schemas[7].derive.seed=3"]), ["curve-fp0", "curve-fp0.25", "curve-fp0.5"])
    XCTAssertEqual(try changed(["schemas[5].derive.rule=any"]), ["majority"])
    XCTAssertEqual(try changed([]), [])
    try "subject_id,study_id,Pneumothorax,Fracture\n1,2,1.0,0.0\n".write(to: root.appendingPathComponent("a.csv"), atomically: true, encoding: .utf8)
    XCTAssertEqual(try changed([]), ["a", "majority", "consensus"])
  }

  func testDerivedTablesAtLoadTime() throws {
    let study = try Study(try config(schemas))
    let truthTable = try study.labelTable(schema: "truth")
    // Flips at the configured rates (4 binomial standard deviations), the same on every load.
    let noisy = try study.labelTable(schema: "noisy")
    XCTAssertEqual(noisy.values, try study.labelTable(schema: "noisy").values)
    for (f, (fp, fn)) in [(0.3, 0.05), (0.5, 0.05)].enumerated() {
      var pos = 0, posFlipped = 0, neg = 0, negFlipped = 0
      for (key, r) in truthTable.rowOfKey {
        let was = truthTable.values[r * 2 + f] == .positive, now = noisy.labels(for: key)![noisy.labels(for: key)!.startIndex + f] == .positive
        if was { pos += 1; if !now { posFlipped += 1 } } else { neg += 1; if now { negFlipped += 1 } }
      }
      XCTAssertLessThanOrEqual(abs(Double(posFlipped) - Double(pos) * fp), 4 * (Double(pos) * fp * (1 - fp)).squareRoot())
      XCTAssertLessThanOrEqual(abs(Double(negFlipped) - Double(neg) * fn), 4 * (Double(neg) * fn * (1 - fn)).squareRoot())
    }
    // The sweep's first point flips nothing.
    let zero = try study.labelTable(schema: "curve-fp0")
    XCTAssertEqual(Labelling.apply(zero.uncertainty, to: zero.values).targets, Labelling.apply(.ones, to: truthTable.values).targets)
    // The Dawid-Skene consensus equals the Evaluate layer's fit on the same columns, soft.
    let consensus = try study.labelTable(schema: "consensus")
    let tables = try ["a", "b", "c"].map { try study.labelTable(schema: $0) }
    for f in 0..<2 {
      let columns = tables.map { t in (0..<3000).map { i -> Bool? in t.values[i * 2 + f] == .positive } }
      let fit = try DawidSkene.fit(columns, labellers: ["a", "b", "c"])
      XCTAssertEqual((0..<3000).map { consensus.probabilities![$0 * 2 + f] }, fit.posterior.map(Float.init))
      for (j, name) in ["a", "b", "c"].enumerated() {
        XCTAssertEqual(fit.sensitivity[j]!, Self.rates[name]![f].0, accuracy: 0.1)
        XCTAssertEqual(fit.specificity[j]!, Self.rates[name]![f].1, accuracy: 0.03)
      }
    }
    // The consensus is closer to the truth than the majority vote, which is closer than the worst labeller.
    func accuracy(_ t: LabelTable) -> Double {
      var right = 0
      for i in 0..<3000 { for f in 0..<2 where (t.values[i * 2 + f] == .positive) == truth[i][f] { right += 1 } }
      return Double(right) / 6000
    }
    XCTAssertGreaterThanOrEqual(accuracy(consensus), accuracy(try study.labelTable(schema: "majority")))
    XCTAssertGreaterThan(accuracy(try study.labelTable(schema: "majority")), tables.map(accuracy).min()!)
  }

  /// Soft targets through the loss the trainer uses (Train's MaskedBCE over the Torch layer's
  /// binary_cross_entropy_with_logits) equal PyTorch's on the same logits and targets.
  func testSoftTargetBCEMatchesPyTorch() throws {
    let file = root.appendingPathComponent("soft.csv")
    try "id,Pneumothorax,Fracture\n1,0.8125,0.25\n2,0,0.6\n3,1,0.5\n4,0.125,0.9375\n".write(to: file, atomically: true, encoding: .utf8)
    let table = try LabelSchema(name: "soft", file: file, format: .probability).read(findings: ["Pneumothorax", "Fracture"])
    let targets = table.probabilities!
    let logits: [Float] = [1.5, -0.25, -2, 0.75, 3, 0.125, -1, 2.5]
    let loss = try MaskedBCE()(Tensor(logits, shape: [4, 2]), Tensor(targets, shape: [4, 2]), mask: Tensor([Float](repeating: 1, count: 8), shape: [4, 2]))
    let ours = try loss.toArray(Float.self)[0]
    let ref = try Python.json("""
      import torch, json, sys
      x = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float32).view(4, 2)
      y = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32).view(4, 2)
      print(json.dumps([torch.nn.functional.binary_cross_entropy_with_logits(x, y).item()]))
      """, args: ["\(logits)", "\(targets)"]) as! [Double]
    XCTAssertEqual(Double(ours), ref[0], accuracy: 1e-6)
    XCTAssertEqual(targets, [0.8125, 0.25, 0, 0.6, 1, 0.5, 0.125, 0.9375])
  }
}
