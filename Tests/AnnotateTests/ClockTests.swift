import Foundation
import XCTest
@testable import Annotate

final class ClockTests: XCTestCase {
  /// The hand-made timestamp equals Foundation's ISO 8601 formatter with fractional seconds.
  func testStampMatchesISO8601Formatter() {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    for t in [0.0, 951_782_400.5, 1_764_620_709.123, 1_798_761_599.999, 4_102_444_800.042] {
      let d = Date(timeIntervalSince1970: t)
      XCTAssertEqual(Clock.stamp(d), f.string(from: d), "\(t)")
    }
    XCTAssertEqual(Clock.stamp(Date(timeIntervalSince1970: 1_764_620_709.5)), "2025-12-01T20:25:09.500Z")
  }
}
