import CCodecs
import Common
import Foundation

/// libpng decoding to 8- or 16-bit grayscale, and writers for 8-bit grayscale, 16-bit grayscale
/// and 8-bit RGB.
public enum PNGCodec {
  public static func decode(_ data: Data, path: String = "<memory>") throws -> GrayImage {
    var w: Int32 = 0, h: Int32 = 0, bits: Int32 = 0
    var out: UnsafeMutableRawPointer?
    var err = [CChar](repeating: 0, count: 256)
    let status = data.withUnsafeBytes { buf in
      ccx_png_decode_gray(buf.baseAddress?.assumingMemoryBound(to: UInt8.self), buf.count, &out, &w, &h, &bits,
                          &err, err.count)
    }
    guard status == 0, let pixels = out else {
      throw ImageError(path: path, kind: .corrupt, reason: "corrupt PNG: \(String(cString: err))")
    }
    defer { ccx_free(pixels) }
    let n = Int(w) * Int(h)
    if bits == 16 {
      let v = [UInt16](UnsafeBufferPointer(start: pixels.assumingMemoryBound(to: UInt16.self), count: n))
      return GrayImage(width: Int(w), height: Int(h), samples: .u16(v))
    }
    let v = [UInt8](UnsafeBufferPointer(start: pixels.assumingMemoryBound(to: UInt8.self), count: n))
    return GrayImage(width: Int(w), height: Int(h), samples: .u8(v))
  }

  /// Writes `pixels` (width*height bytes) as an 8-bit grayscale PNG.
  public static func writeGray8(_ pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
    precondition(pixels.count == width * height, "pixel count must be width*height")
    var err = [CChar](repeating: 0, count: 256)
    let status = pixels.withUnsafeBufferPointer { buf in
      ccx_png_write_gray8(url.path, buf.baseAddress, Int32(width), Int32(height), &err, err.count)
    }
    if status != 0 { throw FileError("cannot write \(url.path): \(String(cString: err)); check the folder exists and is writable") }
  }

  /// Writes `pixels` (width*height samples) as a 16-bit grayscale PNG.
  public static func writeGray16(_ pixels: [UInt16], width: Int, height: Int, to url: URL) throws {
    precondition(pixels.count == width * height, "pixel count must be width*height")
    try write(pixels, width: width, height: height, channels: 1, bits: 16, to: url)
  }

  /// Writes `pixels` (width*height RGB triples, interleaved) as an 8-bit RGB PNG.
  public static func writeRGB8(_ pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
    precondition(pixels.count == 3 * width * height, "pixel count must be 3*width*height")
    try write(pixels, width: width, height: height, channels: 3, bits: 8, to: url)
  }

  static func write<T>(_ pixels: [T], width: Int, height: Int, channels: Int, bits: Int, to url: URL) throws {
    var err = [CChar](repeating: 0, count: 256)
    let status = pixels.withUnsafeBytes { buf in
      ccx_png_write(url.path, buf.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(bits), &err, err.count)
    }
    if status != 0 { throw FileError("cannot write \(url.path): \(String(cString: err)); check the folder exists and is writable") }
  }
}
