import Common
import Foundation

/// One grayscale image to write as a DICOM Part 10 file.
public struct DicomImage: Sendable {
  public enum Photometric: String, Sendable {
    /// Higher values are brighter.
    case monochrome2 = "MONOCHROME2"
    /// Higher values are darker: readers invert for display.
    case monochrome1 = "MONOCHROME1"
  }

  public var rows: Int
  public var columns: Int
  /// 8 or 16.
  public var bitsAllocated: Int
  /// At most `bitsAllocated`; every stored value must fit in it.
  public var bitsStored: Int
  public var photometric: Photometric
  /// Modality value = stored value * slope + intercept.
  public var rescaleSlope: Double
  public var rescaleIntercept: Double
  /// Stored (unsigned) values, row-major, `rows * columns` of them.
  public var pixels: [UInt16]
  public var sopInstanceUID: String
  public var studyInstanceUID: String
  public var seriesInstanceUID: String
  public var patientID: String
  /// View Position (0018,5101), e.g. PA, AP, LL; empty leaves the attribute out.
  public var viewPosition: String
  public var imageComments: String

  public init(rows: Int, columns: Int, bitsAllocated: Int, bitsStored: Int, photometric: Photometric,
              rescaleSlope: Double = 1, rescaleIntercept: Double = 0, pixels: [UInt16],
              sopInstanceUID: String, studyInstanceUID: String, seriesInstanceUID: String,
              patientID: String, viewPosition: String = "PA",
              imageComments: String = "SYNTHETIC image made by cxr synth; not patient data") {
    self.rows = rows
    self.columns = columns
    self.bitsAllocated = bitsAllocated
    self.bitsStored = bitsStored
    self.photometric = photometric
    self.rescaleSlope = rescaleSlope
    self.rescaleIntercept = rescaleIntercept
    self.pixels = pixels
    self.sopInstanceUID = sopInstanceUID
    self.studyInstanceUID = studyInstanceUID
    self.seriesInstanceUID = seriesInstanceUID
    self.patientID = patientID
    self.viewPosition = viewPosition
    self.imageComments = imageComments
  }
}

/// Writes DICOM Part 10 files: 128-byte preamble, `DICM`, the file meta group (with its group
/// length) and the data set in Explicit VR Little Endian, uncompressed pixels. Computed
/// Radiography storage, since CR images carry the rescale attributes.
public enum DicomWriter {
  public static let crImageStorage = "1.2.840.10008.5.1.4.1.1.1"
  public static let explicitVRLittleEndian = "1.2.840.10008.1.2.1"
  public static let implementationClassUID = "2.25.329800735698586629295641978511506172918"

  public static func write(_ image: DicomImage, to url: URL) throws {
    do { try AtomicFile.write(try encode(image), to: url) } catch let e as FileError {
      throw FileError("\(url.path): \(e.message)")
    }
  }

  public static func encode(_ image: DicomImage) throws -> Data {
    try validate(image)
    var meta = Bytes()
    meta.element(0x0002, 0x0001, "OB", [0, 1])
    meta.element(0x0002, 0x0002, "UI", uid(crImageStorage))
    meta.element(0x0002, 0x0003, "UI", uid(image.sopInstanceUID))
    meta.element(0x0002, 0x0010, "UI", uid(explicitVRLittleEndian))
    meta.element(0x0002, 0x0012, "UI", uid(implementationClassUID))
    meta.element(0x0002, 0x0013, "SH", text("CXR_SYNTH"))

    var ds = Bytes()
    ds.element(0x0008, 0x0008, "CS", text("DERIVED\\SECONDARY"))
    ds.element(0x0008, 0x0016, "UI", uid(crImageStorage))
    ds.element(0x0008, 0x0018, "UI", uid(image.sopInstanceUID))
    ds.element(0x0008, 0x0060, "CS", text("CR"))
    ds.element(0x0008, 0x0070, "LO", text("cxr synth (SYNTHETIC)"))
    ds.element(0x0010, 0x0010, "PN", text("SYNTHETIC^\(image.patientID)"))
    ds.element(0x0010, 0x0020, "LO", text(image.patientID))
    // An empty view leaves the attribute out, as real headers without one do.
    if !image.viewPosition.isEmpty { ds.element(0x0018, 0x5101, "CS", text(image.viewPosition)) }
    ds.element(0x0020, 0x000D, "UI", uid(image.studyInstanceUID))
    ds.element(0x0020, 0x000E, "UI", uid(image.seriesInstanceUID))
    ds.element(0x0020, 0x0013, "IS", text("1"))
    ds.element(0x0020, 0x4000, "LT", text(image.imageComments))
    ds.element(0x0028, 0x0002, "US", u16(1))
    ds.element(0x0028, 0x0004, "CS", text(image.photometric.rawValue))
    ds.element(0x0028, 0x0010, "US", u16(image.rows))
    ds.element(0x0028, 0x0011, "US", u16(image.columns))
    ds.element(0x0028, 0x0100, "US", u16(image.bitsAllocated))
    ds.element(0x0028, 0x0101, "US", u16(image.bitsStored))
    ds.element(0x0028, 0x0102, "US", u16(image.bitsStored - 1))
    ds.element(0x0028, 0x0103, "US", u16(0))
    ds.element(0x0028, 0x1052, "DS", text(decimalString(image.rescaleIntercept)))
    ds.element(0x0028, 0x1053, "DS", text(decimalString(image.rescaleSlope)))
    ds.element(0x0028, 0x1054, "LO", text("US"))
    var pixelBytes: [UInt8]
    if image.bitsAllocated == 8 {
      pixelBytes = image.pixels.map { UInt8($0) }
      if pixelBytes.count % 2 == 1 { pixelBytes.append(0) }
      ds.element(0x7FE0, 0x0010, "OB", pixelBytes)
    } else {
      pixelBytes = []
      pixelBytes.reserveCapacity(image.pixels.count * 2)
      for p in image.pixels { pixelBytes += [UInt8(p & 0xFF), UInt8(p >> 8)] }
      ds.element(0x7FE0, 0x0010, "OW", pixelBytes)
    }

    var file = [UInt8](repeating: 0, count: 128)
    file += Array("DICM".utf8)
    var groupLength = Bytes()
    groupLength.element(0x0002, 0x0000, "UL", le32(UInt32(meta.bytes.count)))
    file += groupLength.bytes + meta.bytes + ds.bytes
    return Data(file)
  }

  static func validate(_ image: DicomImage) throws {
    guard image.rows > 0, image.columns > 0, image.rows <= 65535, image.columns <= 65535 else {
      throw FileError("DICOM image size \(image.columns)x\(image.rows) must be 1...65535 on each side")
    }
    guard image.bitsAllocated == 8 || image.bitsAllocated == 16 else {
      throw FileError("BitsAllocated \(image.bitsAllocated) is not supported; use 8 or 16")
    }
    guard image.bitsStored >= 1, image.bitsStored <= image.bitsAllocated else {
      throw FileError("BitsStored \(image.bitsStored) must be 1...\(image.bitsAllocated) (BitsAllocated)")
    }
    guard image.pixels.count == image.rows * image.columns else {
      throw FileError("\(image.pixels.count) pixel values given for \(image.rows) rows x \(image.columns) columns")
    }
    let limit = (1 << image.bitsStored) - 1
    if let bad = image.pixels.firstIndex(where: { Int($0) > limit }) {
      throw FileError("pixel \(bad) has value \(image.pixels[bad]), above \(limit), the largest that BitsStored \(image.bitsStored) holds")
    }
    for (name, value) in [("SOPInstanceUID", image.sopInstanceUID), ("StudyInstanceUID", image.studyInstanceUID),
                          ("SeriesInstanceUID", image.seriesInstanceUID)] {
      guard isValidUID(value) else {
        throw FileError("\(name) '\(value)' is not a DICOM UID (digits and dots, at most 64 characters, no empty or zero-led parts)")
      }
    }
    for (name, value) in [("RescaleSlope", image.rescaleSlope), ("RescaleIntercept", image.rescaleIntercept)] {
      guard value.isFinite, decimalString(value).count <= 16 else {
        throw FileError("\(name) \(value) does not fit a DICOM decimal string (16 characters)")
      }
    }
    guard image.rescaleSlope != 0 else { throw FileError("RescaleSlope must not be 0") }
  }

  static func isValidUID(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 64 else { return false }
    return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
      !part.isEmpty && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber) && (part == "0" || part.first != "0")
    }
  }

  static func decimalString(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
  }

  private static func text(_ s: String) -> [UInt8] {
    var b = Array(s.utf8)
    if b.count % 2 == 1 { b.append(0x20) }
    return b
  }

  private static func uid(_ s: String) -> [UInt8] {
    var b = Array(s.utf8)
    if b.count % 2 == 1 { b.append(0) }
    return b
  }

  private static func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
  private static func le32(_ v: UInt32) -> [UInt8] {
    [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
  }

  /// Explicit VR Little Endian element writer.
  private struct Bytes {
    var bytes: [UInt8] = []
    static let longVRs: Set<String> = ["OB", "OW", "OF", "OD", "OL", "SQ", "UT", "UN", "UC", "UR"]

    mutating func element(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: [UInt8]) {
      bytes += [UInt8(group & 0xFF), UInt8(group >> 8), UInt8(element & 0xFF), UInt8(element >> 8)]
      bytes += Array(vr.utf8)
      if Bytes.longVRs.contains(vr) {
        bytes += [0, 0]
        let n = UInt32(value.count)
        bytes += [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
      } else {
        bytes += [UInt8(value.count & 0xFF), UInt8(value.count >> 8)]
      }
      bytes += value
    }
  }
}
