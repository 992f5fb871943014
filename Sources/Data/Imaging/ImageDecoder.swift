import Foundation

/// An image brought to the 8-bit range, ready for preprocessing. `pixels` may be smaller
/// than the original when a JPEG was decoded with DCT downscaling; `originalWidth` and
/// `originalHeight` are the file's own size, from which output sizes are computed (so the
/// result matches a pipeline that decoded at full size).
public struct SourceImage: Sendable {
  public let pixels: GrayImage          // .u8, or .f32 in [0, 255]
  public let originalWidth: Int
  public let originalHeight: Int
  public let format: ImageFormat
  /// DCT scale numerator used for JPEGs (8 = full size); 8 for other formats.
  public let jpegScale: Int
  /// Extra facts for `inspect image` (bit depth, photometric, transfer syntax).
  public let notes: [String]
}

/// Reads an image file of any supported format (detected from its content) and brings it
/// to the 8-bit range:
/// - JPEG: libjpeg-turbo, 8-bit luma, DCT-downscaled when `targetLongestSide` is given;
/// - PNG: 8-bit as is; 16-bit min-max scaled to [0, 255];
/// - DICOM: GDCM, Modality LUT, min-max to [0, 255], MONOCHROME1 inverted (as MIMIC-CXR-JPG).
public enum ImageDecoder {
  public static func load(_ url: URL, targetLongestSide: Int? = nil) throws -> SourceImage {
    let path = url.path
    let data: Data
    do {
      data = try Data(contentsOf: url)  // one read(): cheaper than page-faulting a mapping
    } catch {
      if !FileManager.default.fileExists(atPath: path) {
        throw ImageError(path: path, kind: .missing, reason: "file not found; check the path or the dataset root")
      }
      throw ImageError(path: path, kind: .unreadable, reason: "cannot read the file (\(error.localizedDescription))")
    }
    if data.isEmpty { throw ImageError(path: path, kind: .corrupt, reason: "the file is empty") }
    guard let format = ImageFormat.sniff(data) else {
      throw ImageError(path: path, kind: .unknownFormat, reason: "not a JPEG, PNG or DICOM image (unrecognised content)")
    }
    switch format {
    case .jpeg:
      let info = try JPEGDecoder.info(data, path: path)
      let scale = targetLongestSide.map {
        JPEGDecoder.scaleNumerator(longestSide: max(info.width, info.height), target: $0)
      } ?? 8
      let img = try JPEGDecoder.decode(data, scaleNumerator: scale, path: path)
      return SourceImage(pixels: img, originalWidth: info.width, originalHeight: info.height, format: .jpeg,
                         jpegScale: scale, notes: ["components \(info.components)", "decoded at \(scale)/8 scale"])
    case .png:
      let img = try PNGCodec.decode(data, path: path)
      switch img.samples {
      case .u8:
        return SourceImage(pixels: img, originalWidth: img.width, originalHeight: img.height, format: .png,
                           jpegScale: 8, notes: ["8-bit"])
      case .u16, .f32:
        let scaled = GrayImage(width: img.width, height: img.height, samples: .f32(minMaxTo8BitRange(img.floats)))
        return SourceImage(pixels: scaled, originalWidth: img.width, originalHeight: img.height, format: .png,
                           jpegScale: 8, notes: ["16-bit, min-max scaled to [0, 255]"])
      }
    case .dicom:
      let d = try DICOMDecoder.decode(path: path)
      let scaled = GrayImage(width: d.image.width, height: d.image.height,
                             samples: .f32(minMaxTo8BitRange(d.image.floats, invert: d.isMonochrome1)))
      return SourceImage(pixels: scaled, originalWidth: d.image.width, originalHeight: d.image.height, format: .dicom,
                         jpegScale: 8, notes: [d.photometric + (d.isMonochrome1 ? " (inverted)" : ""),
                                               "\(d.bitsStored) bits stored", d.transferSyntax])
    }
  }
}
