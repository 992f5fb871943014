import Foundation
import TestSupport
import XCTest
@testable import Experiment

final class PipelineTests: XCTestCase {
  /// A toy study: train:a, train:b, then evaluate reads both; counts runs per stage.
  func makeStages(_ dir: URL, labels: [String: String], failing: Set<String> = [], runs: Counter) -> [Stage] {
    for (k, v) in labels { try? v.write(to: dir.appendingPathComponent("\(k).csv"), atomically: true, encoding: .utf8) }
    var stages: [Stage] = []
    for schema in ["a", "b"] {
      let labelFile = dir.appendingPathComponent("\(schema).csv")
      let out = dir.appendingPathComponent("\(schema).model")
      stages.append(Stage(name: "train:\(schema)", inputs: ["lr=1", Fingerprint.file(labelFile)], outputs: [out]) {
        runs.add("train:\(schema)")
        if failing.contains(schema) { throw NSError(domain: "t", code: 1, userInfo: [NSLocalizedDescriptionKey: "bad labels in \(schema).csv"]) }
        try "model".write(to: out, atomically: true, encoding: .utf8)
      })
    }
    let report = dir.appendingPathComponent("metrics.csv")
    stages.append(Stage(name: "evaluate", dependencies: ["train:a"], inputs: ["bootstrap=10"], outputs: [report]) {
      runs.add("evaluate")
      try "m".write(to: report, atomically: true, encoding: .utf8)
    })
    return stages
  }

  final class Counter { var names: [String] = []; func add(_ s: String) { names.append(s) } }

  func testRerunSkipsEverythingAndAChangedInputRerunsOnlyItsStages() throws {
    let dir = try TestEnv.scratch()
    let c = Counter()
    let p1 = try Pipeline(folder: dir); p1.log = { _ in }
    p1.run(makeStages(dir, labels: ["a": "1", "b": "1"], runs: c))
    XCTAssertEqual(c.names, ["train:a", "train:b", "evaluate"])

    c.names = []
    let p2 = try Pipeline(folder: dir); p2.log = { _ in }
    let o2 = p2.run(makeStages(dir, labels: [:], runs: c))
    XCTAssertEqual(c.names, [])
    XCTAssertEqual(o2.map(\.1), [.skipped, .skipped, .skipped])

    // change a's labels: train:a and evaluate (which depends on it) re-run, train:b does not
    c.names = []
    let p3 = try Pipeline(folder: dir); p3.log = { _ in }
    p3.run(makeStages(dir, labels: ["a": "2"], runs: c))
    XCTAssertEqual(c.names, ["train:a", "evaluate"])

    // --force train re-runs both trainings
    c.names = []
    let p4 = try Pipeline(folder: dir); p4.log = { _ in }
    p4.run(makeStages(dir, labels: [:], runs: c), force: ["train"])
    XCTAssertEqual(c.names, ["train:a", "train:b", "evaluate"])

    // a deleted output re-runs its stage
    try FileManager.default.removeItem(at: dir.appendingPathComponent("b.model"))
    c.names = []
    let p5 = try Pipeline(folder: dir); p5.log = { _ in }
    p5.run(makeStages(dir, labels: [:], runs: c))
    XCTAssertEqual(c.names, ["train:b"])
  }

  func testAFailingStageIsReportedDependentsBlockedOthersFinish() throws {
    let dir = try TestEnv.scratch()
    let c = Counter()
    let p = try Pipeline(folder: dir); p.log = { _ in }
    let o = p.run(makeStages(dir, labels: ["a": "1", "b": "1"], failing: ["a"], runs: c))
    XCTAssertEqual(c.names, ["train:a", "train:b"])
    XCTAssertEqual(o[0].1, .failed("bad labels in a.csv"))
    XCTAssertEqual(o[1].1.succeeded, true)
    XCTAssertEqual(o[2].1, .blocked("train:a failed: bad labels in a.csv"))
    // fixed on the next run: a and evaluate run, b is skipped
    c.names = []
    let p2 = try Pipeline(folder: dir); p2.log = { _ in }
    p2.run(makeStages(dir, labels: [:], runs: c))
    XCTAssertEqual(c.names, ["train:a", "evaluate"])
  }

  func testDamagedLedgerSaysWhatToDo() throws {
    let dir = try TestEnv.scratch()
    try "{not json".write(to: dir.appendingPathComponent("stages.json"), atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Pipeline(folder: dir)) { e in
      XCTAssertTrue("\(e)".contains("stages.json is damaged") && "\(e)".contains("delete it"), "\(e)")
    }
  }
}
