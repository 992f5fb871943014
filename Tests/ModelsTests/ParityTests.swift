import Foundation
@testable import Models
import TestSupport
import Torch
import XCTest

/// Same weights, same input: our ConvNeXt against timm's, float32 on CPU. The timm side of
/// every case runs once, in one Python process, the first time a test needs it.
final class ParityTests: XCTestCase {
  static let gradNames = ["stem.0.weight", "stages.0.blocks.0.gamma", "stages.1.downsample.1.weight",
                          "stages.2.blocks.3.mlp.fc1.weight", "stages.3.blocks.1.norm.bias", "head.norm.weight",
                          "head.fc.bias"]
  static let cases: [String: Reference.Case] = [
    "atto": .init(arch: "convnext_atto"),
    "tiny": .init(arch: "convnext_tiny", classes: 2, batch: 1, size: 32),
    "gray": .init(arch: "convnext_atto", inputChans: 1),
    "facebook": .init(arch: "convnext_atto", names: "facebook"),
    "facebook-tiny": .init(arch: "convnext_tiny", classes: 2, batch: 1, size: 32, names: "facebook"),
    "train": .init(arch: "convnext_atto", batch: 8, size: 32, train: (seed: 123, dropPath: 0.5, drop: 0.3)),
    "grads": .init(arch: "convnext_atto", size: 32, grads: gradNames),
  ]
  nonisolated(unsafe) static var dir: URL?
  nonisolated(unsafe) static var results: [String: (weights: URL, io: StateDict)]?

  static func fixture(_ name: String) throws -> (weights: URL, io: StateDict) {
    if results == nil {
      let d = try TestEnv.scratch("cxr-parity")
      dir = d
      results = try Reference.run(cases, in: d)
    }
    return results![name]!
  }

  override class func tearDown() {
    if let dir { try? FileManager.default.removeItem(at: dir) }
    results = nil
    super.tearDown()
  }

  func check(_ name: String, inChans: Int? = nil, expectAdaptations: [String] = [],
             file: StaticString = #filePath, line: UInt = #line) throws -> (LoadedModel, StateDict) {
    let c = Self.cases[name]!
    let (weights, io) = try Self.fixture(name)
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
    let (loaded, io) = try check("atto")
    try loaded.model.toChannelsLast()
    XCTAssertTrue(loaded.model.stemConv.weight.value.isContiguous(.channelsLast))
    let x = try io["x"]!.contiguous(.channelsLast)
    let y = try withNoGrad { try loaded.model(x) }
    XCTAssertLessThan(try maxAbsDiff(y, io["y"]!), 1e-4)
  }

  func testTinyMatchesTimm() throws {
    _ = try check("tiny")
  }

  func testGrayscaleStemAdaptationMatchesTimmOnReplicatedImage() throws {
    let (loaded, _) = try check("gray", inChans: 1,
                                expectAdaptations: ["stem.0.weight: summed the file's 3 input channels into 1 (timm adapt_input_conv)"])
    XCTAssertEqual(loaded.model.stemConv.weight.value.shape, [40, 1, 4, 4])
  }

  /// Facebook's names (and its linear MLP weights in the 1x1-conv atto) are mapped as timm's
  /// checkpoint_filter_fn does; the Python side checks that timm maps the file back exactly.
  func testFacebookNamesAreMappedLikeTimm() throws {
    _ = try check("facebook", expectAdaptations: ["renamed 128 keys from Facebook's original ConvNeXt names to timm's (timm checkpoint_filter_fn)"])
    _ = try check("facebook-tiny", expectAdaptations: ["renamed 182 keys from Facebook's original ConvNeXt names to timm's (timm checkpoint_filter_fn)"])
  }

  /// With the same seed, drop path and dropout draw the same numbers as timm in training mode.
  func testTrainingModeDropPathAndDropoutMatchTimmWithTheSameSeed() throws {
    let (weights, io) = try Self.fixture("train")
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
    let (weights, io) = try Self.fixture("grads")
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
    for name in Self.gradNames {
      let ours = try XCTUnwrap(params[name]?.value.grad)
      let theirs = io["grad." + name]!
      let scale = max(try theirs.abs().max().item(), 1e-3)
      XCTAssertLessThan(try maxAbsDiff(ours, theirs) / scale, 1e-4, name)
    }
  }
}
