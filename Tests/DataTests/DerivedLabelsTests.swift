import Common
import Foundation
import TestSupport
import XCTest
@testable import Data

final class DerivedLabelsTests: XCTestCase {
  /// A table of `n` studies keyed by study id, two findings, from a value generator.
  func table(_ name: String, n: Int, policy: UncertaintyPolicy = .ones, subject: Bool = false,
             _ value: (Int, Int) -> LabelValue) -> LabelTable {
    var values: [LabelValue] = []
    var rows: [LabelKey: Int] = [:]
    for i in 0..<n {
      rows[LabelKey(subject: subject ? "\(i % 97)" : nil, id: "\(50_000_000 + i)")] = i
      values.append(value(i, 0)); values.append(value(i, 1))
    }
    return LabelTable(schema: name, source: "\(name).csv", findings: ["Pneumothorax", "Fracture"], uncertainty: policy, join: nil,
                      keyedBySubject: subject, values: values, rowOfKey: rows)
  }

  /// Two-sided binomial tolerance: 4 standard deviations of the flipped share.
  func within(_ flipped: Int, of n: Int, rate: Double, file: StaticString = #filePath, line: UInt = #line) {
    let sd = (Double(n) * rate * (1 - rate)).squareRoot()
    XCTAssertLessThanOrEqual(abs(Double(flipped) - Double(n) * rate), 4 * sd + 1e-9,
                             "\(flipped) of \(n) flipped at rate \(rate)", file: file, line: line)
  }

  func testFlipsHitTheRequestedRatesAndAreSeeded() {
    // 40,000 studies: pneumothorax positive in a quarter, fracture in a tenth; some blank negatives.
    let source = table("truth", n: 40_000) { i, f in
      f == 0 ? (i % 4 == 0 ? .positive : i % 3 == 0 ? .blank : .negative) : (i % 10 == 0 ? .positive : .negative)
    }
    let rates = [LabelDerivation.FlipRates(positive: 0.2, negative: 0.05), LabelDerivation.FlipRates(positive: 0.5, negative: 0)]
    let a = LabelDerivation.flip(source, name: "noisy", rates: rates, seed: 7)
    for f in 0..<2 {
      var pos = 0, posFlipped = 0, neg = 0, negFlipped = 0
      for r in 0..<source.rowCount {
        let was = source.values[r * 2 + f] == .positive, now = a.values[r * 2 + f] == .positive
        if was { pos += 1; if !now { posFlipped += 1 } } else { neg += 1; if now { negFlipped += 1 } }
      }
      within(posFlipped, of: pos, rate: rates[f].positive)
      within(negFlipped, of: neg, rate: rates[f].negative)
    }
    XCTAssertEqual(a.schema, "noisy")
    // A blank that does not flip stays blank; a flipped one is written positive.
    XCTAssertTrue(zip(source.values, a.values).contains { $0 == .blank && $1 == .blank })
    XCTAssertFalse(zip(source.values, a.values).contains { $0 == .blank && $1 == .negative })
    // The same seed gives the same table; another seed another one.
    XCTAssertEqual(LabelDerivation.flip(source, name: "noisy", rates: rates, seed: 7).values, a.values)
    XCTAssertNotEqual(LabelDerivation.flip(source, name: "noisy", rates: rates, seed: 8).values, a.values)
    // Nested: with the same seed, every label flipped at 0.2 is flipped at 0.3 too.
    let more = LabelDerivation.flip(source, name: "noisier", rates: [.init(positive: 0.3, negative: 0.05), rates[1]], seed: 7)
    for i in stride(from: 0, to: source.values.count, by: 2) where a.values[i] != source.values[i] && source.values[i] == .positive {
      XCTAssertEqual(more.values[i], .negative)
    }
    // Row order does not matter: a row's fate depends on its key.
    var shuffled = source
    shuffled.rowOfKey = Dictionary(uniqueKeysWithValues: source.rowOfKey.map { ($0.key, source.rowCount - 1 - $0.value) })
    shuffled.values = stride(from: source.rowCount - 1, through: 0, by: -1).flatMap { [source.values[$0 * 2], source.values[$0 * 2 + 1]] }
    let b = LabelDerivation.flip(shuffled, name: "noisy", rates: rates, seed: 7)
    for (key, r) in source.rowOfKey {
      XCTAssertEqual(b.labels(for: key).map(Array.init), Array(a.values[(r * 2)..<(r * 2 + 2)]))
    }
  }

  func testFlipKeepsIgnoredUncertainAndResolvesTheOthers() {
    let values: [LabelValue] = [.uncertain, .positive, .negative, .blank]
    for policy in UncertaintyPolicy.allCases {
      let source = table("s", n: 2, policy: policy) { i, f in values[i * 2 + f] }
      let t = LabelDerivation.flip(source, name: "d", rates: [.init(positive: 0, negative: 0), .init(positive: 0, negative: 0)], seed: 1)
      let first: LabelValue = policy == .ones ? .positive : policy == .zeros ? .negative : .uncertain
      XCTAssertEqual(t.values, [first, .positive, .negative, .blank], "\(policy)")
      XCTAssertEqual(Labelling.apply(t.uncertainty, to: t.values).targets, Labelling.apply(policy, to: values).targets)
    }
  }

  func testVoteRulesAndTies() throws {
    // Pneumothorax by three labellers over 5 studies; the third has no row for the last study.
    let a: [LabelValue] = [.positive, .positive, .negative, .uncertain, .positive]
    let b: [LabelValue] = [.positive, .negative, .negative, .negative, .negative]
    let c: [LabelValue] = [.negative, .negative, .blank, .positive]
    let ta = table("a", n: 5, policy: .ignore) { i, f in f == 0 ? a[i] : .negative }
    let tb = table("b", n: 5) { i, f in f == 0 ? b[i] : .negative }
    let tc = table("c", n: 4) { i, f in f == 0 ? c[i] : .positive }
    let findings = ["Pneumothorax", "Fracture"]
    let majority = try LabelDerivation.vote([ta, tb, tc], name: "v", findings: findings, rule: .majority, ties: .uncertain)
    // Study 3: a abstains (uncertain under ignore), b no, c yes: a tie. Study 4: a yes, b no, c has no row: a tie.
    XCTAssertEqual(stride(from: 0, to: 10, by: 2).map { majority.values[$0] }, [.positive, .negative, .negative, .uncertain, .uncertain])
    XCTAssertEqual(majority.uncertainty, .ignore)
    let tiesPositive = try LabelDerivation.vote([ta, tb, tc], name: "v", findings: findings, rule: .majority, ties: .positive)
    XCTAssertEqual(stride(from: 0, to: 10, by: 2).map { tiesPositive.values[$0] }, [.positive, .negative, .negative, .positive, .positive])
    let any = try LabelDerivation.vote([ta, tb, tc], name: "v", findings: findings, rule: .any, ties: .positive)
    XCTAssertEqual(stride(from: 0, to: 10, by: 2).map { any.values[$0] }, [.positive, .positive, .negative, .positive, .positive])
    let all = try LabelDerivation.vote([ta, tb, tc], name: "v", findings: findings, rule: .all, ties: .positive)
    XCTAssertEqual(stride(from: 0, to: 10, by: 2).map { all.values[$0] }, [.negative, .negative, .negative, .negative, .negative])
    // Fracture: a and b say no, c yes; study 4 has only a's and b's no.
    XCTAssertEqual(stride(from: 1, to: 10, by: 2).map { majority.values[$0] }, [.negative, .negative, .negative, .negative, .negative])
    XCTAssertEqual(stride(from: 1, to: 10, by: 2).map { any.values[$0] }, [.positive, .positive, .positive, .positive, .negative])
    XCTAssertEqual(majority.rowCount, 5)
  }

  func testAlignMatchesOnStudyWhenOneTableHasNoSubject() {
    let withSubject = table("a", n: 3, subject: true) { _, _ in .positive }
    let without = table("b", n: 4) { _, _ in .negative }
    let (keys, rows, bySubject) = LabelDerivation.align([withSubject, without])
    XCTAssertFalse(bySubject)
    XCTAssertEqual(keys.map(\.description), ["50000000", "50000001", "50000002", "50000003"])
    XCTAssertEqual(rows[0], [0, 1, 2, nil])
    XCTAssertEqual(rows[1], [0, 1, 2, 3])
  }

  /// A file of probabilities trains on the probabilities; counts see them thresholded at 0.5.
  func testProbabilityFileGivesSoftTargets() throws {
    let root = try TestEnv.scratch("soft")
    defer { try? FileManager.default.removeItem(at: root) }
    try Fixture.write(Fixture.mimicMetadata, root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv"))
    let idx = try MIMICCXRJPG(root: root).index()
    let file = root.appendingPathComponent("consensus.csv")
    try Fixture.write("id,Pneumothorax,Fracture\n50414267,0.8125,0.25\n53189527,0,\n57375967,1,0.5\n", file)
    let table = try LabelSchema(name: "ds", file: file, format: .probability).read(findings: ["Pneumothorax", "Fracture"])
    let l = Labelling(index: idx, table: table)
    XCTAssertEqual(l.set.records.map(\.studyID), ["50414267", "53189527", "57375967"])
    XCTAssertEqual(l.set.targets, [0.8125, 0.25, 0, 0, 1, 0.5])
    XCTAssertEqual(l.set.mask, [1, 1, 1, 1, 1, 1])
    XCTAssertEqual(l.raw, [.positive, .negative, .negative, .negative, .positive, .positive])
    XCTAssertEqual(try table.selecting(["Fracture"]).probabilities, [0.25, 0, 0.5])
    try Fixture.write("id,Pneumothorax,Fracture\n50414267,1.5,0\n", file)
    XCTAssertThrowsError(try LabelSchema(name: "ds", file: file, format: .probability).read(findings: ["Pneumothorax", "Fracture"])) { e in
      XCTAssertEqual((e as? UserError)?.message, "\(file.path):2: column 'Pneumothorax' has value '1.5'; schema 'ds' (format probability) needs a probability in [0, 1]")
    }
  }
}
