import XCTest
import TestSupport
@testable import Data

/// Parity with the study's MONAI pipeline (monai 1.6.1 in .deps/venv):
/// Resize(N, size_mode="longest", mode="area") -> SpatialPad(N) -> [HistogramNormalize(256, 0, 255)]
/// -> ScaleIntensityRange(0, 255, -1, 1).
///
/// Tolerance: 1e-5 in the [-1, 1] output (observed at most 1.2e-6, with and without
/// equalization). Not exact because float32 sums are taken in another order (rows then
/// columns here, window by window in PyTorch) and the final values are float32 roundings
/// of float64 results (np.interp) on the MONAI side. A value that rounding put on the
/// other side of a histogram bin edge would move one count between bins and shift the
/// equalized output by about 2/pixels; none did on these cases.
final class PreprocessTests: XCTestCase {
  static let tolerance = 1e-5

  func testResizedSizeRoundsHalfToEven() {
    XCTAssertEqual(Preprocess.resizedSize(width: 2544, height: 3056, longest: 512).width, 426)
    XCTAssertEqual(Preprocess.resizedSize(width: 2544, height: 3056, longest: 512).height, 512)
    // 5 * 512 / 1024 = 2.5 -> 2 (half to even), 7 * 512/1024 = 3.5 -> 4
    XCTAssertEqual(Preprocess.resizedSize(width: 5, height: 1024, longest: 512).width, 2)
    XCTAssertEqual(Preprocess.resizedSize(width: 7, height: 1024, longest: 512).width, 4)
  }

  func testPadPutsTheOddPixelAtTheEnd() {
    let (v, w, h) = Preprocess.padCenter([1, 2, 3], width: 3, height: 1, size: 6)
    XCTAssertEqual([w, h], [6, 6])
    // rows: (6-1)/2 = 2 above, 3 below; columns: (6-3)/2 = 1 left, 2 right
    XCTAssertEqual(Array(v[12..<18]), [0, 1, 2, 3, 0, 0])
    XCTAssertEqual(v.reduce(0, +), 6)
  }

  /// One Python start for every MONAI reference (importing MONAI takes seconds):
  /// random arrays of odd sizes through the transforms, and one PNG file through LoadImage.
  static let reference: Result<(cases: [[String: Any]], file: URL, fileOut: [Double]), Error> = Result {
    let dir = try TestEnv.scratch("cxr-preprocess")
    let file = dir.appendingPathComponent("x.png")
    let script = #"""
    import numpy as np, torch
    from PIL import Image
    from monai.transforms import (Compose, LoadImage, Resize, SpatialPad, HistogramNormalize,
                                  ScaleIntensityRange)
    rng = np.random.default_rng(3)
    cases = []
    for (h, w, n, eq, kind) in [(53, 37, 24, 0, "u8"), (67, 101, 48, 1, "u8"), (13, 20, 31, 1, "f32"),
                                (99, 45, 32, 0, "f32"), (77, 77, 33, 1, "u8"), (150, 41, 64, 1, "f32")]:
        if kind == "u8":
            img = rng.integers(0, 256, (h, w)).astype(np.float32)
        else:
            img = (rng.random((h, w)) * 255).astype(np.float32)
        ts = [Resize(spatial_size=n, size_mode="longest", mode="area"), SpatialPad(spatial_size=(n, n))]
        if eq: ts.append(HistogramNormalize(num_bins=256, min=0, max=255))
        ts.append(ScaleIntensityRange(a_min=0, a_max=255, b_min=-1, b_max=1))
        out = np.asarray(Compose(ts)(torch.from_numpy(img)[None]))[0]
        cases.append(dict(h=h, w=w, n=n, eq=eq, kind=kind, img=img.ravel().tolist(), out=out.ravel().tolist()))
    # The whole pipeline from a file. MONAI's PILReader hands images as (W, H): transpose back.
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:71, 0:43]
    img = np.clip(128 + 80*np.sin(x/7.0) + rng.normal(0, 20, (71, 43)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(sys.argv[1])
    t = Compose([LoadImage(image_only=True, ensure_channel_first=True),
                 Resize(spatial_size=40, size_mode="longest", mode="area"), SpatialPad(spatial_size=(40, 40)),
                 HistogramNormalize(num_bins=256, min=0, max=255), ScaleIntensityRange(a_min=0, a_max=255, b_min=-1, b_max=1)])
    file_out = np.asarray(t(sys.argv[1]))[0].T
    print(json.dumps(dict(cases=cases, file=file_out.ravel().tolist())))
    """#
    let ref = try Python.json(script, args: [file.path]) as! [String: Any]
    return (ref["cases"] as! [[String: Any]], file, (ref["file"] as! [NSNumber]).map(\.doubleValue))
  }

  func testMatchesMONAIOnRandomImagesOfOddSizes() throws {
    let cases = try Self.reference.get().cases
    XCTAssertEqual(cases.count, 6)
    for c in cases {
      let w = c["w"] as! Int, h = c["h"] as! Int, n = c["n"] as! Int, eq = (c["eq"] as! Int) == 1
      let input = (c["img"] as! [NSNumber]).map(\.floatValue)
      let expected = (c["out"] as! [NSNumber]).map(\.doubleValue)
      let samples: GrayImage.Samples = (c["kind"] as! String) == "u8" ? .u8(input.map { UInt8($0) }) : .f32(input)
      let src = SourceImage(pixels: GrayImage(width: w, height: h, samples: samples), originalWidth: w,
                            originalHeight: h, format: .png, jpegScale: 8, notes: [])
      let pre = Preprocess.apply(src, PreprocessSettings(size: n, equalize: eq))
      var out = [Float](repeating: 0, count: pre.count)
      pre.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { Preprocess.scaleToModelRange(p, into: $0) } }
      XCTAssertEqual(out.count, expected.count, "\(w)x\(h) -> \(n)")
      let maxDiff = zip(out, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
      XCTAssertLessThanOrEqual(maxDiff, Self.tolerance, "\(w)x\(h) -> \(n), equalize \(eq)")
    }
  }

  func testWholePipelineFromAFileMatchesMONAILoadImage() throws {
    let (_, file, expected) = try Self.reference.get()
    let pre = Preprocess.apply(try ImageDecoder.load(file), PreprocessSettings(size: 40, equalize: true))
    XCTAssertEqual(pre.count, 1600)
    let maxDiff = zip(pre, expected).map { abs(Double($0) / 255 * 2 - 1 - $1) }.max() ?? .infinity
    XCTAssertLessThanOrEqual(maxDiff, Self.tolerance)
  }

  func testEqualizeOfConstantImageMatchesNumpyRule() {
    // np.histogram widens a constant image's range to [v - 0.5, v + 0.5] and puts it in
    // bin 128: the rescaled cumulative histogram is 0 below, 255 from there; v lies on
    // the edge halfway between the centres of bins 127 and 128, so np.interp gives 127.5
    // (what HistogramNormalize returns for np.full((1, 10), 7)).
    var v = [Float](repeating: 7, count: 10)
    Preprocess.equalizeHistogram(&v)
    XCTAssertEqual(v, [Float](repeating: 127.5, count: 10))
  }
}
