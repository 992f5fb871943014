import Common
import Foundation
import Models
import TestSupport
import Torch
import XCTest
@testable import Experiment

/// `model.pretrained` takes any cxr checkpoint, custom sizes included, and the config's own
/// drop path / dropout / layer scale; a file of another size is an error naming both sizes.
final class PretrainedTests: XCTestCase {
  func study(_ dir: URL, pretrained: URL, dims: String) throws -> Study {
    try Study(try Config.parse("""
      name: p
      out: \(dir.path)/runs
      device: cpu
      findings: [Pneumothorax, Fracture]
      schemas: []
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: \(dims), pretrained: \(pretrained.path), drop_path_rate: 0.1}
      """, source: "p.yaml"))
  }

  func testACustomSizeCheckpointLoadsAsPretrainedAndAnotherSizeIsRefused() throws {
    let dir = try TestEnv.scratch("cxr-pretrained")
    defer { try? FileManager.default.removeItem(at: dir) }
    var c = try ConvNeXtConfig.named("convnext_atto", numClasses: 2, inChannels: 1)
    c.depths = [1, 1, 1, 1]; c.dims = [8, 16, 32, 64]; c.arch = "convnext_custom"
    let source = try ConvNeXt(c, generator: try Generator(seed: 4))
    let file = dir.appendingPathComponent("custom.safetensors")
    try source.save(to: file, findings: ["Pneumothorax", "Fracture"])

    let model = try study(dir, pretrained: file, dims: "[8, 16, 32, 64]").makeModel(log: { _ in })
    XCTAssertEqual(model.config.dropPathRate, 0.1, "the config's drop path, not the file's")
    for ((n, a), (_, b)) in zip(try source.stateDict(), try model.stateDict()) { XCTAssertTrue(try a.equal(b), n) }

    XCTAssertThrowsError(try study(dir, pretrained: file, dims: "[8, 16, 32, 48]").makeModel(log: { _ in })) {
      XCTAssertEqual("\($0)", "p.yaml:6: \(file.path) holds a convnext_custom (depths [1, 1, 1, 1], dims [8, 16, 32, 64]) but the config builds a convnext_custom (depths [1, 1, 1, 1], dims [8, 16, 32, 48]); set model.arch/depths/dims to match the file")
    }
  }
}
