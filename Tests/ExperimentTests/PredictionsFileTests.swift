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
      XCTAssertEqual("\(e)", "the model produced a non-finite probability for /x.png; the checkpoint may be damaged")
    }
    try f.flush()
    XCTAssertThrowsError(try PredictionsFile(url: out, findings: ["B"])) { e in
      XCTAssertTrue("\(e)".contains("was written for other findings (A); delete it to start over"), "\(e)")
    }
  }

  /// A partial file made by other weights is never continued (rows of two checkpoints mixed);
  /// the error says what differs.
  func testPartialOfOtherWeightsIsRefusedNotMixed() throws {
    let dir = try TestEnv.scratch()
    let out = dir.appendingPathComponent("preds.csv")
    do {
      let f = try PredictionsFile(url: out, findings: ["A"], header: [("weights", "/r/best.safetensors"), ("weights_sha256", "aaaa")])
      try f.append(id: "x", path: "/x.png", probabilities: [0.5])
      try f.flush()
    }
    XCTAssertThrowsError(try PredictionsFile(url: out, findings: ["A"], header: [("weights", "/r/best.safetensors"), ("weights_sha256", "bbbb")])) {
      XCTAssertEqual("\($0)", "\(out.path).partial holds rows made by something else (weights_sha256: aaaa -> bbbb); they are not mixed with these: delete or move it to start over, or predict to another --out")
    }
    // The same weights continue it; the finished file starts with the header lines.
    let f = try PredictionsFile(url: out, findings: ["A"], header: [("weights", "/r/best.safetensors"), ("weights_sha256", "aaaa")])
    XCTAssertEqual(f.done, ["x"])
    try f.finish()
    XCTAssertEqual(try String(contentsOf: out, encoding: .utf8),
                   "# cxr predictions\n# weights: /r/best.safetensors\n# weights_sha256: aaaa\nid,path,A\nx,/x.png,0.500000\n")
    XCTAssertEqual(PredictionsFile.header(try CSVTable.read(out).comments)["weights_sha256"], "aaaa")
  }

  /// An output path that is a folder, or a file cxr did not write, is never removed or replaced.
  func testOutputThatIsAFolderOrAForeignFileIsLeftAlone() throws {
    let dir = try TestEnv.scratch()
    let folder = dir.appendingPathComponent("results")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try Data("mine".utf8).write(to: folder.appendingPathComponent("notes.txt"))
    XCTAssertThrowsError(try PredictionsFile(url: folder, findings: ["A"])) {
      XCTAssertEqual("\($0)", "\(folder.path) is a folder; predictions are written to a CSV file: give a file path for --out (nothing was changed)")
    }
    XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("notes.txt"), encoding: .utf8), "mine")
    let foreign = dir.appendingPathComponent("table.csv")
    try Data("a,b\n1,2\n".utf8).write(to: foreign)
    XCTAssertThrowsError(try PredictionsFile(url: foreign, findings: ["A"])) {
      XCTAssertEqual("\($0)", "\(foreign.path) exists and is not a cxr predictions file; choose another --out or move it (nothing was changed)")
    }
    XCTAssertEqual(try String(contentsOf: foreign, encoding: .utf8), "a,b\n1,2\n")
    // A cxr predictions file is replaced (atomically) by a new one.
    let ours = dir.appendingPathComponent("p.csv")
    for v in [0.25, 0.75] {
      let f = try PredictionsFile(url: ours, findings: ["A"])
      try f.append(id: "x", path: "/x.png", probabilities: [v])
      try f.finish()
    }
    XCTAssertEqual(try CSVTable.read(ours).rows, [["x", "/x.png", "0.750000"]])
  }
}
