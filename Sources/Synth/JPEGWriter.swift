import CCodecs
import Common
import Foundation

/// Encodes 8-bit grayscale JPEGs through libjpeg-turbo (CCodecs' `ccx_jpeg_encode_gray`).
enum JPEGWriter {
  static func encodeGray(_ pixels: [UInt8], width: Int, height: Int, quality: Int = 95,
                         comment: String? = nil) throws -> Data {
    guard pixels.count == width * height else {
      throw FileError("JPEG encoder: \(pixels.count) pixels given for a \(width)x\(height) image")
    }
    var out: UnsafeMutablePointer<UInt8>?
    var length = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = pixels.withUnsafeBufferPointer { buf in
      ccx_jpeg_encode_gray(buf.baseAddress, Int32(width), Int32(height), Int32(quality), comment,
                           &out, &length, &message, message.count)
    }
    guard status == 0, let out else {
      throw FileError("JPEG encoder failed: \(String(cString: message))")
    }
    defer { ccx_free(out) }
    return Data(bytes: out, count: length)
  }
}
