import CCodecs
import Foundation

/// libjpeg-turbo decoding to 8-bit grayscale, optionally downscaled in the DCT domain.
public enum JPEGDecoder {
  /// Width, height and colour components from the header.
  public static func info(_ data: Data, path: String = "<memory>") throws -> (width: Int, height: Int, components: Int) {
    var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
    var err = [CChar](repeating: 0, count: 256)
    let status = data.withUnsafeBytes { buf in
      ccx_jpeg_info(buf.baseAddress?.assumingMemoryBound(to: UInt8.self), buf.count, &w, &h, &c, &err, err.count)
    }
    if status != 0 { throw ImageError(path: path, kind: .corrupt, reason: "corrupt JPEG header (\(String(cString: err)))") }
    return (Int(w), Int(h), Int(c))
  }

  /// The DCT scale numerator M (decode at M/8) that gives the smallest longest side not
  /// below `target`; 8 when the image is already no larger than the target.
  public static func scaleNumerator(longestSide: Int, target: Int) -> Int {
    var m: Int32 = 8
    _ = ccx_jpeg_scale_for(Int32(longestSide), Int32(target), &m, nil, 0)  // fails only on a null out-pointer
    return Int(m)
  }

  /// Decodes at `scaleNumerator`/8 (8 = full size).
  public static func decode(_ data: Data, scaleNumerator: Int = 8, path: String = "<memory>") throws -> GrayImage {
    var w: Int32 = 0, h: Int32 = 0
    var out: UnsafeMutablePointer<UInt8>?
    var err = [CChar](repeating: 0, count: 256)
    let status = data.withUnsafeBytes { buf in
      ccx_jpeg_decode_gray(buf.baseAddress?.assumingMemoryBound(to: UInt8.self), buf.count, Int32(scaleNumerator),
                           &out, &w, &h, &err, err.count)
    }
    guard status == 0, let pixels = out else {
      let msg = String(cString: err)
      let kind: ImageError.Kind = msg.hasPrefix("CMYK") ? .unsupported : .corrupt
      throw ImageError(path: path, kind: kind, reason: kind == .corrupt ? "corrupt JPEG: \(msg)" : msg)
    }
    defer { ccx_free(pixels) }
    let samples = [UInt8](UnsafeBufferPointer(start: pixels, count: Int(w) * Int(h)))
    return GrayImage(width: Int(w), height: Int(h), samples: .u8(samples))
  }
}
