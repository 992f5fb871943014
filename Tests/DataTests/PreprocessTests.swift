import XCTest
import TestSupport
@testable import Data

/// Parity with the study's MONAI pipeline (monai 1.6.1 in .deps/venv):
/// Resize(N, size_mode="longest", mode="area") -> SpatialPad(N) -> [HistogramNormalize(256, 0, 255)]
/// -> ScaleIntensityRange(0, 255, -1, 1).
///
/// Tolerance: 2e-3 in the [-1, 1] output (a quarter of one 8-bit grey level). Without
/// equalization the only difference is float32 summation order in the area filter
/// (observed <= 1e-5). With equalization a value that float rounding puts on the other
/// side of a histogram bin edge moves one count between bins, which shifts the equalized
/// output by about 255/pixels per count (about 0.1 of a grey level at these sizes).
final class PreprocessTests: XCTestCase {
  static let tolerance = 2e-3

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

  func testMatchesMONAIOnRandomImagesOfOddSizes() throws {
    let script = #"""
    import numpy as np, torch
    from monai.transforms import Compose, Resize, SpatialPad, HistogramNormalize, ScaleIntensityRange
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
        out = Compose(ts)(torch.from_numpy(img)[None])
        out = np.asarray(out)[0]
        cases.append(dict(h=h, w=w, n=n, eq=eq, kind=kind, img=img.ravel().tolist(), out=out.ravel().tolist()))
    print(json.dumps(cases))
    """#
    let cases = try Python.json(script) as! [[String: Any]]
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
      if !eq { XCTAssertLessThanOrEqual(maxDiff, 1e-5, "\(w)x\(h) -> \(n): no equalization should be float-exact") }
    }
  }

  func testWholePipelineFromAFileMatchesMONAILoadImage() throws {
    let dir = try TestEnv.scratch()
    let file = dir.appendingPathComponent("x.png")
    // MONAI's PILReader hands images as (W, H): we transpose its output back.
    let script = #"""
    import numpy as np
    from PIL import Image
    from monai.transforms import Compose, LoadImage, Resize, SpatialPad, HistogramNormalize, ScaleIntensityRange
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:71, 0:43]
    img = np.clip(128 + 80*np.sin(x/7.0) + rng.normal(0, 20, (71, 43)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(sys.argv[1])
    t = Compose([LoadImage(image_only=True, ensure_channel_first=True),
                 Resize(spatial_size=40, size_mode="longest", mode="area"), SpatialPad(spatial_size=(40, 40)),
                 HistogramNormalize(num_bins=256, min=0, max=255), ScaleIntensityRange(a_min=0, a_max=255, b_min=-1, b_max=1)])
    out = np.asarray(t(sys.argv[1]))[0].T
    print(json.dumps(out.ravel().tolist()))
    """#
    let expected = (try Python.json(script, args: [file.path]) as! [NSNumber]).map(\.doubleValue)
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
