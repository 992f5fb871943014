import Foundation
@testable import Models
import TestSupport
import Torch
import XCTest

final class PredictorTests: XCTestCase {
  func model(inChans: Int) throws -> ConvNeXt {
    try ConvNeXt(try ConvNeXtConfig.named("atto", numClasses: 2, inChannels: inChans), generator: Generator(seed: 2))
  }

  func testProbabilitiesAreTheSigmoidOfTheLogitsInEvalMode() throws {
    let m = try model(inChans: 1)
    m.setTraining(true)
    let predictor = try Predictor(model: m, findings: ["Pneumothorax", "Fracture"])
    XCTAssertFalse(m.isTraining)
    let x = try Tensor.randn([3, 1, 64, 64], generator: Generator(seed: 4))
    let p = try predictor.probabilities(x)
    XCTAssertEqual(p.shape, [3, 2])
    XCTAssertFalse(p.requiresGrad)
    XCTAssertLessThan(try maxAbsDiff(p, try withNoGrad { try m(x) }.sigmoid()), 1e-7)
    XCTAssertLessThan(try maxAbsDiff(try predictor.probabilities(x.to(dtype: .float64)), p), 1e-7)
    let rows = try predictor.predict(x)
    XCTAssertEqual(rows.count, 3)
    XCTAssertEqual(rows[2], try p.select(dim: 0, 2).toArray(Float.self))
  }

  func testGrayscaleBatchIsReplicatedForAThreeChannelModel() throws {
    let m = try model(inChans: 3)
    let predictor = try Predictor(model: m, findings: ["a", "b"], channelsLast: true)
    let x = try Tensor.randn([2, 1, 64, 64], generator: Generator(seed: 4))
    let rgb = try x.expand([2, 3, 64, 64]).contiguous()
    XCTAssertLessThan(try maxAbsDiff(try predictor.probabilities(x), try predictor.probabilities(rgb)), 1e-6)
  }

  func testPredictingOnTheCPULeavesCuDNNAlone() throws {
    defer { try? Runtime.setCuDNNBenchmark(false) }
    for state in [true, false] {
      try Runtime.setCuDNNBenchmark(state)
      let predictor = try Predictor(model: try model(inChans: 1), findings: ["a", "b"], on: .cpu)
      XCTAssertFalse(predictor.channelsLast)
      XCTAssertEqual(Runtime.cuDNNBenchmarkEnabled, state)
    }
  }

  func testBadBatchesAreExplained() throws {
    let predictor = try Predictor(model: try model(inChans: 1), findings: ["a", "b"])
    let cases: [(Tensor, String)] = [
      (try Tensor.zeros([1, 64, 64]), "the model takes a batch of images [batch, 1, height, width]; got a tensor of shape [1, 64, 64]"),
      (try Tensor.zeros([1, 3, 64, 64]), "the model takes 1-channel images, got 3 channels (batch shape [1, 3, 64, 64])"),
      (try Tensor.zeros([1, 1, 16, 64]), "images must be at least 32x32 pixels (ConvNeXt downsamples by 32), got 16x64"),
      (try Tensor.zeros([1, 1, 64, 64], dtype: .uint8), "the model takes floating-point images (preprocessed), got uint8"),
    ]
    for (x, message) in cases {
      XCTAssertThrowsError(try predictor.probabilities(x)) { e in XCTAssertEqual("\(e)", message) }
    }
    XCTAssertThrowsError(try Predictor(model: try model(inChans: 1), findings: ["a"])) { e in
      XCTAssertEqual("\(e)", "convnext_atto has 2 outputs but 1 finding names were given")
    }
  }
}
