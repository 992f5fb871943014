import Foundation
@testable import Models
import TestSupport
import Torch
import XCTest

/// Same weights, same input: our ConvNeXt against timm's, float32 on CPU.
final class ParityTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-models") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func check(_ c: Reference.Case, inChans: Int? = nil, expectAdaptations: [String] = [],
             file: StaticString = #filePath, line: UInt = #line) throws -> (LoadedModel, StateDict) {
    let (weights, io) = try Reference.run(c, in: dir)
    let loaded = try ConvNeXt.load(checkpoint: weights, arch: c.arch, findings: findings(c.classes), inChans: inChans)
    XCTAssertEqual(loaded.adaptations, expectAdaptations, file: file, line: line)
    let y = try withNoGrad { try loaded.model(io["x"]!) }
    let diff = try maxAbsDiff(y, io["y"]!)
    XCTAssertLessThan(diff, 1e-4, "\(c.arch): max |ours - timm| = \(diff)", file: file, line: line)
    // The comparison means something only if the outputs are not all tiny.
    XCTAssertGreaterThan(try io["y"]!.abs().max().item(), 0.1, file: file, line: line)
    return (loaded, io)
  }

  /// Also in channels_last: weights and input in NHWC memory give the same outputs.
  func testAttoMatchesTimmContiguousAndChannelsLast() throws {
    let (loaded, io) = try check(.init(arch: "convnext_atto"))
    try loaded.model.toChannelsLast()
    XCTAssertTrue(loaded.model.stemConv.weight.value.isContiguous(.channelsLast))
    let x = try io["x"]!.contiguous(.channelsLast)
    let y = try withNoGrad { try loaded.model(x) }
    XCTAssertLessThan(try maxAbsDiff(y, io["y"]!), 1e-4)
  }

  func testTinyMatchesTimm() throws {
    _ = try check(.init(arch: "convnext_tiny", classes: 2, batch: 1, size: 32))
  }

  func testGrayscaleStemAdaptationMatchesTimmOnReplicatedImage() throws {
    let (loaded, _) = try check(.init(arch: "convnext_atto", inputChans: 1), inChans: 1,
                                expectAdaptations: ["stem.0.weight: summed the file's 3 input channels into 1 (timm adapt_input_conv)"])
    XCTAssertEqual(loaded.model.stemConv.weight.value.shape, [40, 1, 4, 4])
  }

  func testFacebookNamesAreMappedLikeTimm() throws {
    _ = try check(.init(arch: "convnext_atto", names: "facebook"),
                  expectAdaptations: ["renamed 128 keys from Facebook's original ConvNeXt names to timm's (timm checkpoint_filter_fn)"])
  }

  /// With the same seed, drop path and dropout draw the same numbers as timm in training mode.
  func testTrainingModeDropPathAndDropoutMatchTimmWithTheSameSeed() throws {
    let c = Reference.Case(arch: "convnext_atto", batch: 8, size: 32, train: (seed: 123, dropPath: 0.5, drop: 0.3))
    let (weights, io) = try Reference.run(c, in: dir)
    let config = try ConvNeXtConfig.named("convnext_atto", numClasses: 3, dropPathRate: 0.5, dropRate: 0.3)
    let model = try ConvNeXt(uninitialized: config)
    try model.loadWeights(try SafeTensors.read(weights).tensors, source: weights.path)
    XCTAssertEqual(model.stages[3].blocks[1].dropPath.rate, 0.5)
    XCTAssertEqual(model.stages[0].blocks[0].dropPath.rate, 0)
    model.setTraining(true)
    model.generator = try Generator(seed: 123)
    let y = try withNoGrad { try model(io["x"]!) }
    XCTAssertLessThan(try maxAbsDiff(y, io["y"]!), 1e-4)
    // And it is really random: another seed gives other outputs; eval mode gives neither.
    model.generator = try Generator(seed: 124)
    XCTAssertGreaterThan(try maxAbsDiff(try withNoGrad { try model(io["x"]!) }, io["y"]!), 1e-2)
    model.setTraining(false)
    XCTAssertGreaterThan(try maxAbsDiff(try withNoGrad { try model(io["x"]!) }, io["y"]!), 1e-2)
  }

  func testGradientsExistForAllParametersAndMatchTimm() throws {
    let names = ["stem.0.weight", "stages.0.blocks.0.gamma", "stages.1.downsample.1.weight",
                 "stages.2.blocks.3.mlp.fc1.weight", "stages.3.blocks.1.norm.bias", "head.norm.weight", "head.fc.bias"]
    let (weights, io) = try Reference.run(.init(arch: "convnext_atto", size: 32, grads: names), in: dir)
    let loaded = try ConvNeXt.load(checkpoint: weights, arch: "convnext_atto", findings: findings(3))
    let model = loaded.model
    model.setTraining(true)
    let y = try model(io["x"]!)
    try (y * io["w"]!).sum().backward()
    for (name, p) in model.namedParameters() {
      let g = try XCTUnwrap(p.value.grad, "no gradient for \(name)")
      XCTAssertTrue(try g.allFinite(), name)
    }
    let params = Dictionary(uniqueKeysWithValues: model.namedParameters())
    for name in names {
      let ours = try XCTUnwrap(params[name]?.value.grad)
      let theirs = io["grad." + name]!
      let scale = max(try theirs.abs().max().item(), 1e-3)
      XCTAssertLessThan(try maxAbsDiff(ours, theirs) / scale, 1e-4, name)
    }
  }
}
