import Foundation

/// How the first number of each RLE pair counts pixels.
public enum RLEEncoding: String, Sendable {
  /// SIIM-ACR: the gap since the end of the previous run (the first counted from pixel 0).
  case relative
  /// The run's start pixel, counted from 0 (what one public code base assumes).
  case absolute
}

/// A decoded mask: `pixels[row * width + col]` is 1 inside a run, 0 outside.
public struct RLEMask: Equatable, Sendable {
  public var width: Int
  public var height: Int
  public var encoding: RLEEncoding
  public var pixels: [UInt8]
}

/// Why an RLE string cannot be read; callers prefix the file, line and column.
public struct RLEError: Error, Equatable, CustomStringConvertible {
  public let message: String
  public var description: String { message }
}

/// SIIM-ACR pneumothorax run-length encoding: whitespace-separated pairs (gap, length),
/// pixels numbered column-major (top to bottom, then left to right); `-1` (or blank) means
/// no mask. The absolute reading is accepted too when only it fits, and reported.
public enum RLE {
  /// True for the "no mask" markers `-1` and blank.
  public static func isEmptyMask(_ text: String) -> Bool {
    let t = text.trimmingCharacters(in: .whitespaces)
    return t.isEmpty || t == "-1"
  }

  /// The (first, length) pairs of an RLE string; empty for `-1` or blank.
  public static func parse(_ text: String) throws -> [(Int, Int)] {
    if isEmptyMask(text) { return [] }
    var numbers: [Int] = []
    for token in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
      guard let v = Int(token) else {
        throw RLEError(message: "'\(token.prefix(20))' is not a whole number; an RLE mask is pairs of numbers 'gap length ...' or -1")
      }
      guard v >= 0 else {
        throw RLEError(message: "negative number \(v) inside a mask; only a lone -1 means 'no mask'")
      }
      numbers.append(v)
    }
    guard numbers.count % 2 == 0 else {
      throw RLEError(message: "odd count of numbers (\(numbers.count)); an RLE mask is pairs 'gap length'")
    }
    return stride(from: 0, to: numbers.count, by: 2).map { (numbers[$0], numbers[$0 + 1]) }
  }

  /// Which reading keeps every run inside `pixelCount` pixels. Relative (SIIM's) wins when
  /// both fit (a single run reads the same either way); neither fitting is an error.
  public static func detectEncoding(_ pairs: [(Int, Int)], pixelCount: Int) throws -> RLEEncoding {
    var end = 0
    for (gap, length) in pairs { end += gap + length }
    if end <= pixelCount { return .relative }
    var previousEnd = 0
    var absoluteFits = true
    for (start, length) in pairs {
      if start < previousEnd { absoluteFits = false; break }
      previousEnd = start + length
    }
    if absoluteFits && previousEnd <= pixelCount { return .absolute }
    throw RLEError(message: "runs end at pixel \(end) but the image has \(pixelCount) pixels, and the starts do not fit an absolute reading either; check the image size or whether this column holds SIIM-style RLE")
  }

  /// Decodes into a width x height mask, detecting the encoding unless one is given.
  public static func decode(_ text: String, width: Int, height: Int, encoding: RLEEncoding? = nil) throws -> RLEMask {
    guard width > 0, height > 0 else { throw RLEError(message: "mask size \(width)x\(height) is not positive") }
    let pairs = try parse(text)
    let count = width * height
    let enc = try encoding ?? detectEncoding(pairs, pixelCount: count)
    var pixels = [UInt8](repeating: 0, count: count)
    var position = 0
    for (first, length) in pairs {
      let start = enc == .relative ? position + first : first
      let end = start + length
      guard end <= count else {
        throw RLEError(message: "a run ends at pixel \(end) but the \(width)x\(height) image has \(count) pixels (\(enc.rawValue) reading)")
      }
      guard enc == .relative || start >= position else {
        throw RLEError(message: "absolute run starting at \(start) overlaps or precedes the previous run ending at \(position)")
      }
      for p in start..<end { pixels[(p % height) * width + p / height] = 1 }
      position = end
    }
    return RLEMask(width: width, height: height, encoding: enc, pixels: pixels)
  }

  /// Encodes a row-major 0/1 mask in the SIIM form (relative, column-major); `-1` when empty.
  public static func encode(_ pixels: [UInt8], width: Int, height: Int) -> String {
    var out: [String] = []
    var lastEnd = 0
    var runStart = -1
    for p in 0...(width * height) {
      let on = p < width * height && pixels[(p % height) * width + p / height] != 0
      if on && runStart < 0 { runStart = p }
      if !on && runStart >= 0 {
        out.append("\(runStart - lastEnd) \(p - runStart)")
        lastEnd = p
        runStart = -1
      }
    }
    return out.isEmpty ? "-1" : out.joined(separator: " ")
  }
}
