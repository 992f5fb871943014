import XCTest
import TestSupport
@testable import Data

final class ImagingTests: XCTestCase {
  static var fixtures: ImagingFixtures.Set!
  override class func setUp() {
    super.setUp()
    do { fixtures = try ImagingFixtures.make() } catch { fixtures = nil; print("fixture error: \(error)") }
  }
  var fx: ImagingFixtures.Set { get throws { try XCTUnwrap(Self.fixtures, "the Python fixtures could not be written") } }

  func decodeFloats(_ url: URL) throws -> GrayImage { try ImageDecoder.load(url).pixels }

  func testSniffsFormatsByContentNotExtension() throws {
    let fx = try fx
    XCTAssertEqual(ImageFormat.sniff(try Data(contentsOf: fx.url("gray.jpg"))), .jpeg)
    XCTAssertEqual(ImageFormat.sniff(try Data(contentsOf: fx.url("gray8.png"))), .png)
    XCTAssertEqual(ImageFormat.sniff(try Data(contentsOf: fx.url("plain.dcm"))), .dicom)
    XCTAssertNil(ImageFormat.sniff(try Data(contentsOf: fx.url("garbage.jpg"))))
  }

  func testJPEGMatchesPILExactly() throws {
    let fx = try fx
    for name in ["gray.jpg", "big.jpg"] {
      let img = try JPEGDecoder.decode(try Data(contentsOf: fx.url(name)), path: name)
      let (w, h) = fx.size(name)
      XCTAssertEqual([img.width, img.height], [w, h], name)
      XCTAssertEqual(img.floats.map(Double.init), fx.pixels(name), name)
    }
  }

  func testDCTScaledDecodeMatchesPILDraft() throws {
    let fx = try fx
    // PIL's draft((w/4, h/4)) asks libjpeg for scale 1/4 = 2/8.
    let img = try JPEGDecoder.decode(try Data(contentsOf: fx.url("big.jpg")), scaleNumerator: 2)
    let (w, h) = fx.size("big.jpg@2")
    XCTAssertEqual([img.width, img.height], [w, h])
    XCTAssertEqual([img.width, img.height], [51, 76])  // ceil(203/4), ceil(301/4)
    XCTAssertEqual(img.floats.map(Double.init), fx.pixels("big.jpg@2"))
  }

  func testScaleChoiceIsSmallestNotBelowTarget() {
    // MIMIC-sized 2544x3056 to 512: 1/8 gives 382 (< 512), 2/8 gives 764.
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 3056, target: 512), 2)
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 1000, target: 512), 5)  // 4/8 -> 500, 5/8 -> 625
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 4096, target: 512), 1)  // exactly 512
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 4090, target: 512), 1)  // ceil(4090/8) = 512
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 4088, target: 512), 2)  // 4088/8 = 511 < 512
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 512, target: 512), 8)
    XCTAssertEqual(JPEGDecoder.scaleNumerator(longestSide: 300, target: 512), 8)  // never upscale
  }

  func testLoadUsesScaledDecodeButKeepsOriginalSize() throws {
    let fx = try fx
    let src = try ImageDecoder.load(fx.url("big.jpg"), targetLongestSide: 64)
    XCTAssertEqual(src.jpegScale, 2)  // 301 * 2/8 -> 76 >= 64; 1/8 -> 38
    XCTAssertEqual([src.pixels.width, src.pixels.height], [51, 76])
    XCTAssertEqual([src.originalWidth, src.originalHeight], [203, 301])
  }

  func testHarmlessJPEGWarningsAreTolerated() throws {
    // Two stray bytes between SOI and the next marker: libjpeg warns "extraneous bytes
    // before marker" but every pixel is intact, so the image must decode as the original.
    let fx = try fx
    var data = try Data(contentsOf: fx.url("gray.jpg"))
    data.insert(contentsOf: [0x12, 0x34], at: 2)
    let img = try JPEGDecoder.decode(data)
    XCTAssertEqual(img.floats.map(Double.init), fx.pixels("gray.jpg"))
  }

  func testColourJPEGGivesLuma() throws {
    let fx = try fx
    let img = try ImageDecoder.load(fx.url("color.jpg")).pixels
    XCTAssertEqual([img.width, img.height], [30, 40])
    guard case .u8 = img.samples else { return XCTFail("expected 8-bit samples") }
  }

  func testPNG8And16MatchPIL() throws {
    let fx = try fx
    let p8 = try PNGCodec.decode(try Data(contentsOf: fx.url("gray8.png")))
    guard case .u8 = p8.samples else { return XCTFail("8-bit PNG should decode to u8") }
    XCTAssertEqual(p8.floats.map(Double.init), fx.pixels("gray8.png"))
    let p16 = try PNGCodec.decode(try Data(contentsOf: fx.url("gray16.png")))
    guard case .u16 = p16.samples else { return XCTFail("16-bit PNG should decode to u16") }
    XCTAssertEqual([p16.width, p16.height], [27, 33])
    XCTAssertEqual(p16.floats.map(Double.init), fx.pixels("gray16.png"))
    // And load() brings 16-bit to [0, 255] by min-max.
    let loaded = try ImageDecoder.load(fx.url("gray16.png")).pixels.floats
    let ref = fx.pixels("gray16.png"), lo = ref.min()!, hi = ref.max()!
    for (a, b) in zip(loaded, ref) { XCTAssertEqual(Double(a), (b - lo) / (hi - lo) * 255, accuracy: 1e-3) }
  }

  func testPNGWriterRoundTrips() throws {
    let dir = try TestEnv.scratch()
    let url = dir.appendingPathComponent("w.png")
    let px: [UInt8] = (0..<(7 * 5)).map { UInt8($0 * 7 % 256) }
    try PNGCodec.writeGray8(px, width: 7, height: 5, to: url)
    let back = try PNGCodec.decode(try Data(contentsOf: url))
    XCTAssertEqual([back.width, back.height], [7, 5])
    XCTAssertEqual(back.floats, px.map(Float.init))
    let read = try Python.run("from PIL import Image; import numpy as np; print(np.asarray(Image.open(sys.argv[1])).ravel().tolist())", args: [url.path])
    XCTAssertEqual(read.trimmingCharacters(in: .whitespacesAndNewlines), "[" + px.map(String.init).joined(separator: ", ") + "]")
  }

  func testDICOMMatchesPydicomModalityLUT() throws {
    let fx = try fx
    XCTAssertTrue(DICOMDecoder.isAvailable, "libcxt_dicom.so should be built by `make shim`")
    for name in ["plain.dcm", "mono1.dcm", "rescale.dcm", "signed.dcm", "rle.dcm", "byte.dcm"] {
      let d = try DICOMDecoder.decode(path: fx.url(name).path)
      let (w, h) = fx.size(name)
      XCTAssertEqual([d.image.width, d.image.height], [w, h], name)
      let ref = fx.pixels(name)
      let got = d.image.floats
      XCTAssertEqual(got.count, ref.count, name)
      let maxDiff = zip(got, ref).map { abs(Double($0) - $1) }.max() ?? 0
      XCTAssertEqual(maxDiff, 0, accuracy: 1e-3, name)
    }
    XCTAssertEqual(try DICOMDecoder.decode(path: fx.url("rle.dcm").path).transferSyntax, "1.2.840.10008.1.2.5")
    // JPEG baseline and lossless JPEG 2000 inside DICOM (codestreams from PIL).
    for (name, syntax) in [("jpeg.dcm", "1.2.840.10008.1.2.4.50"), ("j2k.dcm", "1.2.840.10008.1.2.4.90")] {
      let d = try DICOMDecoder.decode(path: fx.url(name).path)
      XCTAssertEqual(d.transferSyntax, syntax, name)
      XCTAssertEqual([d.image.width, d.image.height].map(Double.init), [fx.size(name).0, fx.size(name).1].map(Double.init), name)
      XCTAssertEqual(d.image.floats.map(Double.init), fx.pixels(name), name)
    }
    XCTAssertTrue(try DICOMDecoder.decode(path: fx.url("mono1.dcm").path).isMonochrome1)
  }

  func testConcurrentDecodesMatchSerialOnes() throws {
    // The loader decodes on several threads: GDCM, libjpeg and libpng must give the same
    // pixels (and the same errors) as one thread does.
    let fx = try fx
    let names = ["plain.dcm", "rle.dcm", "j2k.dcm", "jpeg.dcm", "big.jpg", "gray16.png", "truncated.dcm", "truncated.jpg"]
    func describe(_ n: String) -> String {
      do { return "\(try ImageDecoder.load(fx.url(n)).pixels.floats.reduce(0, +))" } catch { return "\(error)" }
    }
    let serial = names.map(describe)
    var parallel = [[String]](repeating: [], count: 4)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: 4) { t in
      var got: [String] = []
      for _ in 0..<5 { got = names.map(describe) }
      lock.lock(); parallel[t] = got; lock.unlock()
    }
    for p in parallel { XCTAssertEqual(p, serial) }
    XCTAssertTrue(serial[6].contains("truncated pixel data"), serial[6])
  }

  func testMissingDICOMLibraryIsANamedError() {
    let r = DICOMDecoder.loadLibrary(candidates: ["/nonexistent/libcxt_dicom.so"])
    guard case .failure(let e) = r else { return XCTFail("a missing library must not load") }
    XCTAssertEqual(e.kind, .dicomUnavailable)
    XCTAssertTrue(e.reason.hasPrefix("DICOM support is not available: libcxt_dicom.so was not found or could not load (tried /nonexistent/libcxt_dicom.so ("), e.reason)
    XCTAssertTrue(e.reason.hasSuffix("Install GDCM (apt-get install libgdcm-dev) and run `make shim`, or set CXR_DICOM_LIB"), e.reason)
  }

  func testDICOMToEightBitIsMinMaxAndInvertsMonochrome1() throws {
    let fx = try fx
    for name in ["rescale.dcm", "mono1.dcm"] {
      let loaded = try ImageDecoder.load(fx.url(name))
      XCTAssertEqual(loaded.format, .dicom)
      let ref = fx.pixels(name), lo = ref.min()!, hi = ref.max()!
      let invert = name == "mono1.dcm"
      for (a, b) in zip(loaded.pixels.floats, ref) {
        let x = (b - lo) / (hi - lo) * 255
        XCTAssertEqual(Double(a), invert ? 255 - x : x, accuracy: 1e-3, name)
      }
    }
  }

  func testBadFilesGiveNamedErrors() throws {
    let fx = try fx
    func kind(_ name: String) -> (ImageError.Kind?, String) {
      do { _ = try ImageDecoder.load(fx.url(name)); return (nil, "") } catch let e as ImageError {
        return (e.kind, e.description)
      } catch { return (nil, "\(error)") }
    }
    let (k1, m1) = kind("truncated.jpg")
    XCTAssertEqual(k1, .corrupt)
    XCTAssertTrue(m1.hasPrefix(fx.url("truncated.jpg").path + ": corrupt JPEG"), m1)
    let (k2, m2) = kind("truncated.png")
    XCTAssertEqual(k2, .corrupt)
    XCTAssertTrue(m2.hasPrefix(fx.url("truncated.png").path + ": corrupt PNG"), m2)
    let (k3, m3) = kind("garbage.jpg")
    XCTAssertEqual(k3, .unknownFormat)
    XCTAssertEqual(m3, fx.url("garbage.jpg").path + ": not a JPEG, PNG or DICOM image (unrecognised content)")
    let (k4, m4) = kind("empty.png")
    XCTAssertEqual(k4, .corrupt)
    XCTAssertEqual(m4, fx.url("empty.png").path + ": the file is empty")
    let (k5, m5) = kind("nope.jpg")
    XCTAssertEqual(k5, .missing)
    XCTAssertEqual(m5, fx.url("nope.jpg").path + ": file not found; check the path or the dataset root")
    let (k6, m6) = kind("truncated.dcm")
    XCTAssertEqual(k6, .corrupt)
    XCTAssertTrue(m6.hasPrefix(fx.url("truncated.dcm").path + ": corrupt DICOM"), m6)
  }
}
