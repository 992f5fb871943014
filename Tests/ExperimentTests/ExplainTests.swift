import Data
import Foundation
import TestSupport
import XCTest
@testable import Experiment

/// The pieces of `cxr explain`'s files: the colour map, the overlay blend, the PNG writers.
final class ExplainTests: XCTestCase {
  /// The polynomial fit against matplotlib's viridis table at 0, 0.25, 0.5, 0.75 and 1.
  func testViridisIsCloseToMatplotlibs() {
    let table: [(Float, (Float, Float, Float))] = [
      (0, (0.267004, 0.004874, 0.329415)), (0.25, (0.229739, 0.322361, 0.545706)), (0.5, (0.127568, 0.566949, 0.550556)),
      (0.75, (0.369214, 0.788888, 0.382914)), (1, (0.993248, 0.906157, 0.143936)),
    ]
    for (t, want) in table {
      let got = Explain.viridis(t)
      XCTAssertEqual(got.0, want.0, accuracy: 0.02, "t = \(t)")
      XCTAssertEqual(got.1, want.1, accuracy: 0.02, "t = \(t)")
      XCTAssertEqual(got.2, want.2, accuracy: 0.02, "t = \(t)")
    }
  }

  func testOverlayKeepsTheImageWhereTheMapIsLowAndTintsWhereHigh() {
    let rgb = Explain.overlay(gray: [100, 100], map: [0, 1], alpha: 0.45)
    // m = 0: a quarter of alpha of viridis(0) (dark purple) over grey 100.
    let a0: Float = 0.45 * 0.25, c0 = Explain.viridis(0)
    XCTAssertEqual(Int(rgb[0]), Int(((1 - a0) * 100 + a0 * c0.0 * 255).rounded()))
    // m = 1: alpha of yellow: red and green up, blue down.
    XCTAssertGreaterThan(rgb[3], 100)
    XCTAssertGreaterThan(rgb[4], 100)
    XCTAssertLessThan(rgb[5], 100)
  }

  func testSixteenBitAndRGBPNGsRoundTrip() throws {
    let dir = try TestEnv.scratch("cxr-explain-png")
    defer { try? FileManager.default.removeItem(at: dir) }
    let values: [UInt16] = [0, 1, 256, 65535, 12345, 40000]
    let u = dir.appendingPathComponent("cam.png")
    try PNGCodec.writeGray16(values, width: 3, height: 2, to: u)
    let back = try PNGCodec.decode(Data(contentsOf: u))
    XCTAssertEqual([back.width, back.height], [3, 2])
    guard case .u16(let v) = back.samples else { return XCTFail("a 16-bit PNG decodes to 16 bits") }
    XCTAssertEqual(v, values)
    let rgb = dir.appendingPathComponent("rgb.png")
    try PNGCodec.writeRGB8([255, 255, 255, 0, 0, 0], width: 2, height: 1, to: rgb)
    let grey = try PNGCodec.decode(Data(contentsOf: rgb))
    guard case .u8(let g) = grey.samples else { return XCTFail("an 8-bit PNG decodes to 8 bits") }
    XCTAssertEqual(g, [255, 0])
  }

  func testFileSafeNames() {
    XCTAssertEqual(Explain.fileSafe("Chest Tube/1.2-x_y"), "Chest_Tube_1.2-x_y")
  }
}
