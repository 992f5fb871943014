import Common
import Data
import Foundation

/// Small encoders the synthetic study needs: gzip (stored blocks, so the bytes depend only
/// on the input), SIIM run-length masks, DICOM UIDs, and MIMIC-CXR-JPG's 8-bit conversion.
enum SynthEncoding {
  // MARK: gzip

  static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
  }

  static func crc32(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }

  /// A gzip member (RFC 1952) whose deflate stream uses stored blocks: any gzip reader reads
  /// it, and there is no modification time or compressor version in it to break determinism.
  static func gzip(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
    var start = 0
    repeat {
      let n = min(65_535, data.count - start)
      let last = start + n == data.count
      out.append(last ? 1 : 0)
      out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
      out += data[start..<(start + n)]
      start += n
    } while start < data.count
    for v in [crc32(data), UInt32(truncatingIfNeeded: data.count)] {
      out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
    }
    return out
  }

  // MARK: SIIM RLE

  /// SIIM-ACR run-length encoding of a row-major 0/1 mask (as SIIM's `mask2rle`): pixels
  /// numbered column-major (top to bottom, then left to right) from 0; pairs of (gap since
  /// the end of the previous run, run length). An empty mask is `-1`.
  static func rle(_ mask: [UInt8], width: Int, height: Int) -> String {
    var parts: [String] = []
    var previousEnd = 0  // 0-based index just past the previous run
    var runStart = -1
    let total = width * height
    for k in 0...total {
      let on = k < total && mask[(k % height) * width + k / height] != 0
      if on, runStart < 0 { runStart = k }
      if !on, runStart >= 0 {
        parts.append("\(runStart - previousEnd) \(k - runStart)")
        previousEnd = k
        runStart = -1
      }
    }
    return parts.isEmpty ? "-1" : parts.joined(separator: " ")
  }

  // MARK: UIDs

  /// A DICOM UID under the `2.25` root (an integer made from 128 random bits, as for UUIDs).
  static func uid(_ rng: inout SplitMix64) -> String {
    var limbs: [UInt32] = []  // most significant first
    for _ in 0..<2 {
      let v = rng.next()
      limbs += [UInt32(v >> 32), UInt32(v & 0xFFFF_FFFF)]
    }
    limbs[0] |= 0x8000_0000  // a full-width number: never a leading zero, always 39 digits
    var digits: [Character] = []
    while limbs.contains(where: { $0 != 0 }) {
      var remainder: UInt64 = 0
      for j in limbs.indices {
        let cur = (remainder << 32) | UInt64(limbs[j])
        limbs[j] = UInt32(cur / 10)
        remainder = cur % 10
      }
      digits.append(Character(String(remainder)))
    }
    return "2.25." + String(digits.reversed())
  }

  // MARK: 8-bit conversion

  /// MIMIC-CXR-JPG's conversion: min-max to 0...255.
  static func minMax8(_ pixels: [Float]) -> [UInt8] {
    guard let lo = pixels.min(), let hi = pixels.max(), hi > lo else {
      return [UInt8](repeating: 0, count: pixels.count)
    }
    let scale = 255 / Double(hi - lo)
    return pixels.map { UInt8((Double($0 - lo) * scale).rounded()) }
  }

  /// OpenCV's `equalizeHist` on 8-bit pixels: the cumulative histogram from the first
  /// occupied level, scaled to 0...255 and rounded.
  static func equalize(_ pixels: [UInt8]) -> [UInt8] {
    var hist = [Int](repeating: 0, count: 256)
    for p in pixels { hist[Int(p)] += 1 }
    guard let first = hist.firstIndex(where: { $0 > 0 }) else { return pixels }
    let total = pixels.count
    if hist[first] == total { return pixels }
    let scale = 255.0 / Double(total - hist[first])
    var lut = [UInt8](repeating: 0, count: 256)
    var sum = 0
    for level in (first + 1)..<256 {
      sum += hist[level]
      lut[level] = UInt8(min(255, (Double(sum) * scale).rounded()))
    }
    return pixels.map { lut[Int($0)] }
  }
}
