import Foundation

/// A single-channel image, rows top to bottom. Decoders return the file's own sample type;
/// `ImageDecoder.load` brings everything to the 8-bit range ([0, 255]) the pipeline expects.
public struct GrayImage: Sendable {
  public enum Samples: Sendable {
    case u8([UInt8])
    case u16([UInt16])
    case f32([Float])
  }
  public let width: Int
  public let height: Int
  public let samples: Samples

  public init(width: Int, height: Int, samples: Samples) {
    self.width = width
    self.height = height
    self.samples = samples
  }

  /// The samples as Float (copying).
  public var floats: [Float] {
    switch samples {
    case .u8(let v): return v.map(Float.init)
    case .u16(let v): return v.map(Float.init)
    case .f32(let v): return v
    }
  }
}

/// The formats we recognise by content (never by file extension).
public enum ImageFormat: String, Sendable {
  case jpeg, png, dicom

  /// Sniffs the first bytes: JPEG SOI, PNG signature, DICOM `DICM` at 128 or a bare
  /// DICOM data set starting with a group 0002/0008 element.
  public static func sniff(_ data: Data) -> ImageFormat? {
    let b = [UInt8](data.prefix(132))
    if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
    if b.count >= 8, b[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
    if b.count >= 132, b[128..<132] == [0x44, 0x49, 0x43, 0x4D] { return .dicom }
    if b.count >= 8, (b[0] == 0x02 || b[0] == 0x08), b[1] == 0x00, b[3] == 0x00 { return .dicom }
    return nil
  }
}

/// Brings a high-bit-depth image to [0, 255] the way MIMIC-CXR-JPG was made from DICOM:
/// subtract the minimum, divide by the maximum of the shifted image, times 255; inverted
/// (255 - x) for MONOCHROME1. A constant image becomes all zeros.
public func minMaxTo8BitRange(_ values: [Float], invert: Bool = false) -> [Float] {
  guard var lo = values.first else { return [] }
  var hi = lo
  for v in values { lo = min(lo, v); hi = max(hi, v) }
  let range = hi - lo
  if range <= 0 { return [Float](repeating: invert ? 255 : 0, count: values.count) }
  let scale = 255 / range
  return values.map { v in
    let x = (v - lo) * scale
    return invert ? 255 - x : x
  }
}
