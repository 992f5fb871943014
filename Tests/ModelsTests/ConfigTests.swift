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
