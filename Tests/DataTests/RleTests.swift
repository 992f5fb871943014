import XCTest
import TestSupport
@testable import Data

final class RleTests: XCTestCase {
  func testDecodesColumnMajorRelativeRuns() throws {
    // 3 wide, 4 high; pixels numbered down the columns: col 0 = 0...3, col 1 = 4...7, col 2 = 8...11.
    // "1 2" sets 1, 2; "3 2" skips 3, 4, 5 and sets 6, 7.
    let m = try RLE.decode("1 2 3 2", width: 3, height: 4)
    XCTAssertEqual(m.encoding, .relative)
    XCTAssertEqual(m.pixels, [0, 0, 0,
                              1, 0, 0,
                              1, 1, 0,
                              0, 1, 0])
  }

  func testEmptyMarkersAndEncodeRoundTrip() throws {
    XCTAssertEqual(try RLE.decode("-1", width: 2, height: 2).pixels, [0, 0, 0, 0])
    XCTAssertEqual(try RLE.decode(" -1 ", width: 2, height: 2).pixels, [0, 0, 0, 0])
    XCTAssertEqual(try RLE.decode("", width: 2, height: 2).pixels, [0, 0, 0, 0])
    XCTAssertEqual(RLE.encode([0, 0, 0, 0], width: 2, height: 2), "-1")
    var state: UInt64 = 7
    for _ in 0..<20 {
      let w = 5 + Int(state % 7), h = 3 + Int(state % 5)
      let pixels = (0..<(w * h)).map { _ -> UInt8 in state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8((state >> 60) & 1) }
      XCTAssertEqual(try RLE.decode(RLE.encode(pixels, width: w, height: h), width: w, height: h).pixels, pixels)
    }
  }

  func testAbsoluteEncodingIsDetectedOnlyWhenRelativeCannotFit() throws {
    // Starts 6 and 9 (absolute) on a 3x4 image: relative reading ends at 6+2+9+1 = 18 > 12.
    let m = try RLE.decode("6 2 9 1", width: 3, height: 4)
    XCTAssertEqual(m.encoding, .absolute)
    XCTAssertEqual(m.pixels, try RLE.decode("6 2 1 1", width: 3, height: 4, encoding: .relative).pixels)
    XCTAssertEqual(try RLE.detectEncoding([(6, 2)], pixelCount: 12), .relative)
  }

  func testMatchesTheSIIMReferenceDecoder() throws {
    // The SIIM-ACR starter kit's rle2mask (relative, column-major via reshape(width, height).T).
    let out = try Python.json("""
      import numpy as np
      def rle2mask(rle, width, height):
          mask = np.zeros(width * height)
          array = np.asarray([int(x) for x in rle.split()])
          starts, lengths = array[0::2], array[1::2]
          current = 0
          for i, start in enumerate(starts):
              current += start
              mask[current:current + lengths[i]] = 1
              current += lengths[i]
          return mask.reshape(width, height).T
      rng = np.random.default_rng(3)
      cases = []
      for w, h in [(7, 5), (16, 9), (33, 40)]:
          m = (rng.random((h, w)) < 0.3).astype(np.uint8)
          m[h // 2:, w // 3:] = 1
          flat = m.T.flatten()
          runs, pos, i = [], 0, 0
          while i < flat.size:
              if flat[i]:
                  j = i
                  while j < flat.size and flat[j]: j += 1
                  runs += [i - pos, j - i]; pos = j; i = j
              else:
                  i += 1
          rle = ' '.join(map(str, runs))
          cases.append({'w': w, 'h': h, 'rle': rle, 'mask': rle2mask(rle, w, h).astype(int).flatten().tolist()})
      print(json.dumps(cases))
      """) as! [[String: Any]]
    XCTAssertEqual(out.count, 3)
    for c in out {
      let w = c["w"] as! Int, h = c["h"] as! Int, rle = c["rle"] as! String
      let ours = try RLE.decode(rle, width: w, height: h)
      XCTAssertEqual(ours.encoding, .relative)
      XCTAssertEqual(ours.pixels.map(Int.init), c["mask"] as! [Int], "\(w)x\(h)")
      XCTAssertEqual(RLE.encode(ours.pixels, width: w, height: h), rle)
    }
  }

  func testBadMasksAreErrorsThatSayWhy() {
    func message(_ s: String, _ w: Int = 3, _ h: Int = 4, _ e: RLEEncoding? = nil) -> String {
      do { _ = try RLE.decode(s, width: w, height: h, encoding: e); return "no error" } catch { return "\(error)" }
    }
    XCTAssertEqual(message("1 2 3"), "odd count of numbers (3); an RLE mask is pairs 'gap length'")
    XCTAssertEqual(message("1 x"), "'x' is not a whole number; an RLE mask is pairs of numbers 'gap length ...' or -1")
    XCTAssertEqual(message("1 -1"), "negative number -1 inside a mask; only a lone -1 means 'no mask'")
    XCTAssertEqual(message("5 4 4 4"), "runs end at pixel 17 but the image has 12 pixels, and the starts do not fit an absolute reading either; check the image size or whether this column holds SIIM-style RLE")
    XCTAssertEqual(message("10 5", 3, 4, .relative), "a run ends at pixel 15 but the 3x4 image has 12 pixels (relative reading)")
    XCTAssertEqual(message("6 2 3 1", 3, 4, .absolute), "absolute run starting at 3 overlaps or precedes the previous run ending at 8")
    XCTAssertEqual(message("0 1", 0, 4), "mask size 0x4 is not positive")
  }
}
