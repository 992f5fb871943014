import Common
import Foundation
import TestSupport
import XCTest
@testable import Experiment

final class PredictionsFileTests: XCTestCase {
  func testInterruptedWriteResumesWithoutDuplicatesAndTornLinesAreDropped() throws {
    let dir = try TestEnv.scratch()
    let out = dir.appendingPathComponent("preds.csv")
    do {
      let f = try PredictionsFile(url: out, findings: ["Pneumothorax", "Fracture"])
      try f.append(id: "a", path: "/x/a.dcm", probabilities: [0.1, 0.2])
      try f.append(id: "b", path: "/x/b,1.dcm", probabilities: [0.3, 0.4])
      try f.flush()
      try f.append(id: "c", path: "/x/c.dcm", probabilities: [0.5, 0.6])  // never flushed: lost on "kill"
    }
    // a torn line, as if killed in the middle of a write
    let partial = dir.appendingPathComponent("preds.csv.partial")
    let h = try FileHandle(forWritingTo: partial); try h.seekToEnd(); try h.write(contentsOf: Data("d,/x/d.dc".utf8)); try h.close()
    let f = try PredictionsFile(url: out, findings: ["Pneumothorax", "Fracture"])
    XCTAssertEqual(f.done, ["a", "b"])
    try f.append(id: "c", path: "/x/c.dcm", probabilities: [0.5, 0.6])
    try f.finish()
    let t = try CSVTable.read(out)
    XCTAssertEqual(t.header, ["id", "path", "Pneumothorax", "Fracture"])
    XCTAssertEqual(t.rows, [["a", "/x/a.dcm", "0.100000", "0.200000"], ["b", "/x/b,1.dcm", "0.300000", "0.400000"],
                            ["c", "/x/c.dcm", "0.500000", "0.600000"]])
    XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
  }

  func testOtherFindingsAndNaNAreErrors() throws {
    let dir = try TestEnv.scratch()
    let out = dir.appendingPathComponent("p.csv")
    let f = try PredictionsFile(url: out, findings: ["A"])
    XCTAssertThrowsError(try f.append(id: "x", path: "/x.png", probabilities: [.nan])) { e in
      XCTAssertEqual("\(e)", "the model produced NaN for /x.png; the checkpoint may be damaged")
    }
    try f.flush()
    XCTAssertThrowsError(try PredictionsFile(url: out, findings: ["B"])) { e in
      XCTAssertTrue("\(e)".contains("was written for other findings (A); delete it to start over"), "\(e)")
    }
  }
}
