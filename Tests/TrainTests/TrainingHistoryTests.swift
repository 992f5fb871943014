import Common
import Evaluate
import Foundation
import TestSupport
import XCTest
@testable import Train

/// The evaluation report's training curves come from metrics.jsonl's epoch records: after a
/// resume, the last record of an epoch wins; step records are not points.
final class TrainingHistoryTests: XCTestCase {
  func testEpochRecordsBecomeCurvesAndTheLastOfAnEpochWins() throws {
    let dir = try TestEnv.scratch("cxr-history")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("metrics.jsonl")
    let split = #"{"auprc":{"F":0.5},"auprc_mean":0.5,"auroc":{"F":0.7},"auroc_mean":0.7,"images":8,"loss":0.61}"#
    let lines = [
      #"{"type":"step","epoch":1,"step":1,"loss":0.9,"lr":0.001}"#,
      #"{"type":"epoch","epoch":1,"step":4,"train_loss":0.8,"train_images":32,"lr":0.001,"raw":\#(split),"ema":null,"skipped_batches":0}"#,
      #"{"type":"epoch","epoch":2,"step":8,"train_loss":0.7,"train_images":32,"lr":0.0005,"raw":\#(split),"ema":\#(split),"skipped_batches":0}"#,
      // The run was resumed from epoch 1's checkpoint and epoch 2 ran again.
      #"{"type":"epoch","epoch":2,"step":8,"train_loss":0.65,"train_images":32,"lr":0.0005,"raw":\#(split),"ema":\#(split),"skipped_batches":0}"#,
    ]
    try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    let c = try XCTUnwrap(TrainingHistory.curves(model: "truth", metrics: url))
    XCTAssertEqual(c.model, "truth")
    XCTAssertEqual(c.source, url.path)
    XCTAssertEqual(c.epochs, [1, 2])
    XCTAssertEqual(c.trainLoss, [0.8, 0.65])
    XCTAssertEqual(c.learningRate, [0.001, 0.0005])
    XCTAssertEqual(c.tuneLossRaw, [0.61, 0.61])
    XCTAssertEqual(c.tuneLossEMA, [nil, 0.61])
    XCTAssertEqual(c.tuneAUROCRaw, [0.7, 0.7])
    XCTAssertNil(TrainingHistory.curves(model: "x", metrics: dir.appendingPathComponent("missing.jsonl")))
  }
}
