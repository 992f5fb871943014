import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mirrors `cxt_dicom_info` in CShims/include/cxt_dicom.h (the layout must match).
struct CXTDicomInfo {
  var width: Int32 = 0, height: Int32 = 0, frames: Int32 = 0
  var bitsAllocated: Int32 = 0, bitsStored: Int32 = 0, isSigned: Int32 = 0, samplesPerPixel: Int32 = 0
  var slope: Double = 1, intercept: Double = 0
  var photometric: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)                      // char[32]
  var transferSyntax: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                       UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)                                                  // char[96]
}

/// A DICOM image's pixels after the Modality LUT (rescale slope/intercept), plus what the
/// header said about it.
public struct DICOMImage: Sendable {
  public let image: GrayImage           // .f32, slope * stored + intercept
  public let photometric: String
  public let transferSyntax: String
  public let bitsStored: Int
  public var isMonochrome1: Bool { photometric == "MONOCHROME1" }
}

/// Reads DICOM through GDCM via libcxt_dicom.so, loaded with dlopen on first use so that a
/// machine without GDCM still reads JPEG and PNG.
public enum DICOMDecoder {
  typealias ReadFn = @convention(c) (UnsafePointer<CChar>?, UnsafeMutableRawPointer?,
                                     UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<Int>?,
                                     UnsafeMutablePointer<CChar>?, Int) -> Int32
  typealias FreeFn = @convention(c) (UnsafeMutableRawPointer?) -> Void
  typealias ViewPositionFn = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, Int,
                                             UnsafeMutablePointer<CChar>?, Int) -> Int32

  static let viewPositionSymbol = "cxt_dicom_read_view_position"

  struct Library: @unchecked Sendable {
    /// Where it was loaded from, for messages.
    var path: String = ""
    let read: ReadFn
    let free: FreeFn
    /// Nil for a libcxt_dicom.so built before the header reader existed: pixels still decode,
    /// reading the View Position says to rebuild the shim.
    var readViewPosition: ViewPositionFn? = nil
  }

  /// Where libcxt_dicom.so is looked for, in order: $CXR_DICOM_LIB, next to the executable,
  /// the build folder of this source tree, then the dynamic loader's search path.
  static var candidates: [String] {
    var list: [String] = []
    if let p = ProcessInfo.processInfo.environment["CXR_DICOM_LIB"], !p.isEmpty { list.append(p) }
    if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
      list.append(exe.appendingPathComponent("libcxt_dicom.so").path)
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    list.append(root.appendingPathComponent("CShims/build/libcxt_dicom.so").path)
    list.append("libcxt_dicom.so")
    return list
  }

  static let library: Result<Library, ImageError> = loadLibrary(candidates: candidates)

  static func loadLibrary(candidates: [String]) -> Result<Library, ImageError> {
    var tried: [String] = []
    for path in candidates {
      guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
        tried.append("\(path) (\(String(cString: dlerror())))")
        continue
      }
      guard let r = dlsym(handle, "cxt_dicom_read"), let f = dlsym(handle, "cxt_dicom_free") else {
        tried.append("\(path) (missing cxt_dicom_read)")
        continue
      }
      // Looked up on its own: an older library without it still decodes pixels.
      let view = dlsym(handle, viewPositionSymbol).map { unsafeBitCast($0, to: ViewPositionFn.self) }
      return .success(Library(path: path, read: unsafeBitCast(r, to: ReadFn.self), free: unsafeBitCast(f, to: FreeFn.self),
                              readViewPosition: view))
    }
    return .failure(ImageError(path: "", kind: .dicomUnavailable,
      reason: "DICOM support is not available: libcxt_dicom.so was not found or could not load (tried \(tried.joined(separator: "; "))). Install GDCM (apt-get install libgdcm-dev) and run `make shim`, or set CXR_DICOM_LIB"))
  }

  /// The View Position (0018,5101) of a DICOM file, read from its header alone (the pixel data
  /// is not read): upper-cased, surrounding blanks removed; nil when the attribute is absent or
  /// blank. Throws when the file is not readable DICOM or the library is missing or too old.
  public static func viewPosition(path: String) throws -> String? {
    switch library {
    case .success(let l): return try viewPosition(path: path, library: l)
    case .failure(let e): throw ImageError(path: path, kind: e.kind, reason: e.reason)
    }
  }

  static func viewPosition(path: String, library lib: Library) throws -> String? {
    guard let readView = lib.readViewPosition else {
      throw ImageError(path: path, kind: .dicomUnavailable,
        reason: "\(lib.path.isEmpty ? "libcxt_dicom.so" : lib.path) was built before cxr read DICOM headers: it has no \(viewPositionSymbol), so the View Position cannot be read (pixels still can). Rebuild it with `make shim` (or point CXR_DICOM_LIB at a current build)")
    }
    var out = [CChar](repeating: 0, count: 128)
    var err = [CChar](repeating: 0, count: 512)
    let status = readView(path, &out, out.count, &err, err.count)
    guard status == 0 else {
      throw ImageError(path: path, kind: .corrupt, reason: "cannot read the DICOM header: \(String(cString: err))")
    }
    // The shim strips the value's padding (spaces or NULs to even length, as CS values are stored).
    let value = String(cString: out).uppercased()
    return value.isEmpty ? nil : value
  }

  public static var isAvailable: Bool { if case .success = library { return true } else { return false } }

  public static func decode(path: String) throws -> DICOMImage {
    let lib: Library
    switch library {
    case .success(let l): lib = l
    case .failure(let e): throw ImageError(path: path, kind: e.kind, reason: e.reason)
    }
    var info = CXTDicomInfo()
    var pixels: UnsafeMutableRawPointer?
    var nbytes = 0
    var err = [CChar](repeating: 0, count: 512)
    let status = withUnsafeMutableBytes(of: &info) { infoPtr in
      lib.read(path, infoPtr.baseAddress, &pixels, &nbytes, &err, err.count)
    }
    guard status == 0, let raw = pixels else {
      throw ImageError(path: path, kind: .corrupt, reason: "corrupt DICOM: \(String(cString: err))")
    }
    defer { lib.free(raw) }
    let photometric = withUnsafeBytes(of: info.photometric) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    let syntax = withUnsafeBytes(of: info.transferSyntax) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    let w = Int(info.width), h = Int(info.height), n = w * h
    guard info.samplesPerPixel == 1, photometric.hasPrefix("MONOCHROME") else {
      throw ImageError(path: path, kind: .unsupported,
                       reason: "DICOM with \(info.samplesPerPixel) samples per pixel (\(photometric)) is not supported: chest X-rays are MONOCHROME1/2")
    }
    let signed = info.isSigned != 0
    let allocated = Int(info.bitsAllocated)
    // Mask to BitsStored and sign-extend as pydicom does, then apply the Modality LUT.
    let stored = info.bitsStored > 0 && Int(info.bitsStored) <= allocated ? Int(info.bitsStored) : allocated
    let mask: UInt64 = stored >= 64 ? ~0 : (UInt64(1) << UInt64(stored)) - 1
    let signBit: UInt64 = UInt64(1) << UInt64(stored - 1)
    let slope = info.slope, intercept = info.intercept
    @inline(__always) func value(_ raw: UInt64) -> Float {
      let m = raw & mask
      let v = signed && m & signBit != 0 ? Double(Int64(bitPattern: m)) - Double(UInt64(1) << UInt64(stored)) : Double(m)
      return Float(v * slope + intercept)
    }
    var values = [Float](repeating: 0, count: n)
    switch allocated {
    case 8: let p = raw.assumingMemoryBound(to: UInt8.self); for i in 0..<n { values[i] = value(UInt64(p[i])) }
    case 16: let p = raw.assumingMemoryBound(to: UInt16.self); for i in 0..<n { values[i] = value(UInt64(p[i])) }
    case 32: let p = raw.assumingMemoryBound(to: UInt32.self); for i in 0..<n { values[i] = value(UInt64(p[i])) }
    default:
      throw ImageError(path: path, kind: .unsupported, reason: "DICOM with \(allocated) bits allocated is not supported")
    }
    return DICOMImage(image: GrayImage(width: w, height: h, samples: .f32(values)), photometric: photometric,
                      transferSyntax: syntax, bitsStored: stored)
  }
}
