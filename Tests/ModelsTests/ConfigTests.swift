import XCTest
@testable import Models
import Torch

final class ConfigTests: XCTestCase {
  func testUnknownArchitectureListsKnownOnes() {
    XCTAssertThrowsError(try ConvNeXtConfig.named("convnext_huge")) { e in
      XCTAssertEqual("\(e)", "unknown ConvNeXt architecture 'convnext_huge': use one of convnext_atto, convnext_femto, convnext_pico, convnext_nano, convnext_tiny, convnext_small, convnext_base, convnext_large")
    }
  }
}

final class ConfigValuesTests: XCTestCase {
  func testDropPathRatesRiseLinearlyOverAllBlocks() throws {
    let c = try ConvNeXtConfig.named("atto", dropPathRate: 0.22)
    let flat = c.dropPathRates.flatMap { $0 }
    XCTAssertEqual(c.dropPathRates.map(\.count), [2, 2, 6, 2])
    XCTAssertEqual(flat.first, 0)
    XCTAssertEqual(flat.last!, 0.22, accuracy: 1e-12)
    XCTAssertEqual(flat[1], 0.02, accuracy: 1e-12)
  }

  func testBadValuesAreNamed() {
    let cases: [(() throws -> ConvNeXtConfig, String)] = [
      ({ try ConvNeXtConfig.named("tiny", inChannels: 2) }, "in_chans must be 1 (grayscale) or 3 (RGB), not 2"),
      ({ try ConvNeXtConfig.named("tiny", numClasses: 0) }, "num_classes must be at least 1, not 0"),
      ({ try ConvNeXtConfig.named("tiny", dropPathRate: 1) }, "drop_path_rate must be in [0, 1), not 1.0"),
      ({ try ConvNeXtConfig.named("tiny", dropRate: -0.1) }, "drop_rate must be in [0, 1), not -0.1"),
    ]
    for (make, message) in cases {
      XCTAssertThrowsError(try make()) { e in XCTAssertEqual("\(e)", message) }
    }
  }

  func testShortNamesResolveToTimmNames() throws {
    XCTAssertEqual(try ConvNeXtConfig.named("Base").arch, "convnext_base")
    XCTAssertEqual(try ConvNeXtConfig.named("convnext_large").dims, [192, 384, 768, 1536])
    XCTAssertEqual(grouped(88_591_464), "88,591,464")
    XCTAssertEqual(grouped(999), "999")
  }
}
