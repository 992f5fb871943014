import Foundation

/// What the model is fed, as the study's MONAI pipeline made it:
/// `LoadImage -> Resize(size, size_mode="longest", mode="area") -> SpatialPad(size)
///  -> HistogramNormalize(num_bins=256, min=0, max=255) (when `equalize`)
///  -> ScaleIntensityRange(0, 255, -1, 1)`.
public struct PreprocessSettings: Hashable, Codable, Sendable, CustomStringConvertible {
  public var size: Int
  public var equalize: Bool

  public init(size: Int = 512, equalize: Bool = false) {
    self.size = size
    self.equalize = equalize
  }

  public var description: String { "size \(size), equalize \(equalize ? "yes" : "no")" }
}

public enum Preprocess {
  /// MONAI `Resize(size_mode="longest")`: each side `round_half_even(side * target / longest)`.
  public static func resizedSize(width: Int, height: Int, longest target: Int) -> (width: Int, height: Int) {
    let scale = Double(target) / Double(max(width, height))
    let w = (Double(width) * scale).rounded(.toNearestOrEven)
    let h = (Double(height) * scale).rounded(.toNearestOrEven)
    return (max(1, Int(w)), max(1, Int(h)))
  }

  /// Area interpolation = `adaptive_avg_pool2d` (what `F.interpolate(mode="area")` does):
  /// output pixel i averages input [floor(i*in/out), ceil((i+1)*in/out)). The window mean
  /// is separable, so we sum rows then columns; on 8-bit input every partial sum is an exact
  /// integer in Float, so only the final division rounds (as in PyTorch).
  public static func resizeArea(_ image: GrayImage, width outW: Int, height outH: Int) -> [Float] {
    let inW = image.width, inH = image.height
    let (xs, xe) = windows(inW, outW)
    let (ys, ye) = windows(inH, outH)
    // Horizontal pass: row sums over each column window.
    var rows = [Float](repeating: 0, count: inH * outW)
    rows.withUnsafeMutableBufferPointer { r in
      switch image.samples {
      case .u8(let v): v.withUnsafeBufferPointer { horizontal($0, r, inW, inH, outW, xs, xe) }
      case .u16(let v): v.withUnsafeBufferPointer { horizontal($0, r, inW, inH, outW, xs, xe) }
      case .f32(let v): v.withUnsafeBufferPointer { horizontal($0, r, inW, inH, outW, xs, xe) }
      }
    }
    // Vertical pass: sum the row sums over each row window, divide by the window area.
    var out = [Float](repeating: 0, count: outW * outH)
    rows.withUnsafeBufferPointer { r in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<outH {
          let base = i * outW
          for y in ys[i]..<ye[i] {
            let rowBase = y * outW
            for j in 0..<outW { o[base + j] += r[rowBase + j] }
          }
          let kh = ye[i] - ys[i]
          for j in 0..<outW { o[base + j] /= Float(kh * (xe[j] - xs[j])) }
        }
      }
    }
    return out
  }

  static func windows(_ n: Int, _ out: Int) -> (starts: [Int], ends: [Int]) {
    var s = [Int](repeating: 0, count: out), e = [Int](repeating: 0, count: out)
    for i in 0..<out {
      s[i] = (i * n) / out
      e[i] = ((i + 1) * n + out - 1) / out
    }
    return (s, e)
  }

  @inline(__always)
  static func horizontal(_ src: UnsafeBufferPointer<UInt8>, _ r: UnsafeMutableBufferPointer<Float>,
                         _ inW: Int, _ inH: Int, _ outW: Int, _ xs: [Int], _ xe: [Int]) {
    for y in 0..<inH {
      let s = y * inW, d = y * outW
      for j in 0..<outW {
        var acc: UInt32 = 0
        for x in xs[j]..<xe[j] { acc &+= UInt32(src[s + x]) }
        r[d + j] = Float(acc)
      }
    }
  }

  @inline(__always)
  static func horizontal(_ src: UnsafeBufferPointer<UInt16>, _ r: UnsafeMutableBufferPointer<Float>,
                         _ inW: Int, _ inH: Int, _ outW: Int, _ xs: [Int], _ xe: [Int]) {
    for y in 0..<inH {
      let s = y * inW, d = y * outW
      for j in 0..<outW {
        var acc: Float = 0
        for x in xs[j]..<xe[j] { acc += Float(src[s + x]) }
        r[d + j] = acc
      }
    }
  }

  @inline(__always)
  static func horizontal(_ src: UnsafeBufferPointer<Float>, _ r: UnsafeMutableBufferPointer<Float>,
                         _ inW: Int, _ inH: Int, _ outW: Int, _ xs: [Int], _ xe: [Int]) {
    for y in 0..<inH {
      let s = y * inW, d = y * outW
      for j in 0..<outW {
        var acc: Float = 0
        for x in xs[j]..<xe[j] { acc += src[s + x] }
        r[d + j] = acc
      }
    }
  }

  /// MONAI `SpatialPad(size)` with zeros, symmetric: before = (size - n) / 2, the odd pixel
  /// after. Sides already at least `size` are left as they are (MONAI does not crop).
  public static func padCenter(_ values: [Float], width: Int, height: Int, size: Int) -> (values: [Float], width: Int, height: Int) {
    let outW = max(width, size), outH = max(height, size)
    if outW == width && outH == height { return (values, width, height) }
    let left = (outW - width) / 2, top = (outH - height) / 2
    var out = [Float](repeating: 0, count: outW * outH)
    values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for y in 0..<height {
          let d = (y + top) * outW + left
          for x in 0..<width { dst[d + x] = src[y * width + x] }
        }
      }
    }
    return (out, outW, outH)
  }

  /// MONAI `HistogramNormalize(num_bins, min, max)` = `equalize_hist`: a histogram of
  /// `bins` equal bins over [image min, image max] (skimage.exposure.histogram), its
  /// cumulative counts rescaled to [lo, hi], applied with `np.interp` at the bin centres.
  public static func equalizeHistogram(_ values: inout [Float], bins: Int = 256, lo: Float = 0, hi: Float = 255) {
    guard var mn = values.first, bins >= 2 else { return }
    var mx = mn
    for v in values { mn = min(mn, v); mx = max(mx, v) }
    // np.histogram widens a zero range to [v - 0.5, v + 0.5].
    let first = mn == mx ? Double(mn) - 0.5 : Double(mn)
    let last = mn == mx ? Double(mx) + 0.5 : Double(mx)
    // Edges as numpy's linspace in the image's dtype (float32): first + i * step.
    let step = (last - first) / Double(bins)
    var edges = [Double](repeating: 0, count: bins + 1)
    for i in 0...bins { edges[i] = Double(Float(first + Double(i) * step)) }
    edges[bins] = Double(Float(last))
    // Bin index as numpy computes it, then corrected against the edges.
    var hist = [Int](repeating: 0, count: bins)
    let norm = Double(bins) / (last - first)
    edges.withUnsafeBufferPointer { e in
      hist.withUnsafeMutableBufferPointer { h in
        for v in values {
          let x = Double(v)
          var k = min(bins - 1, max(0, Int((x - first) * norm)))
          if x < e[k] { k = max(0, k - 1) } else if k < bins - 1, x >= e[k + 1] { k += 1 }
          h[k] += 1
        }
      }
    }
    var centers = [Double](repeating: 0, count: bins)
    for i in 0..<bins { centers[i] = Double((Float(edges[i]) + Float(edges[i + 1])) / 2) }
    // Cumulative counts rescaled to [lo, hi] (MONAI rescale_array).
    var cum = [Double](repeating: 0, count: bins)
    var run = 0
    for i in 0..<bins { run += hist[i]; cum[i] = Double(run) }
    let cmin = cum[0], cmax = cum[bins - 1]
    for i in 0..<bins {
      cum[i] = cmax == cmin ? Double(lo) : (cum[i] - cmin) / (cmax - cmin) * Double(hi - lo) + Double(lo)
    }
    // np.interp: clamped outside the centres, linear in between (slopes as numpy computes them).
    var slopes = [Double](repeating: 0, count: bins - 1)
    for j in 0..<(bins - 1) { slopes[j] = (cum[j + 1] - cum[j]) / (centers[j + 1] - centers[j]) }
    let c0 = centers[0], cl = centers[bins - 1]
    let inv = Double(bins - 1) / (cl - c0)
    let lowValue = Float(cum[0]), highValue = Float(cum[bins - 1])
    centers.withUnsafeBufferPointer { c in
      cum.withUnsafeBufferPointer { f in
        slopes.withUnsafeBufferPointer { s in
          values.withUnsafeMutableBufferPointer { v in
            for i in 0..<v.count {
              let x = Double(v[i])
              if x <= c0 { v[i] = lowValue; continue }
              if x >= cl { v[i] = highValue; continue }
              var j = min(bins - 2, Int((x - c0) * inv))
              while j > 0 && x < c[j] { j -= 1 }
              while j < bins - 2 && x >= c[j + 1] { j += 1 }
              v[i] = Float(s[j] * (x - c[j]) + f[j])
            }
          }
        }
      }
    }
  }

  /// The preprocessed image in the [0, 255] range (before ScaleIntensityRange), size x size.
  public static func apply(_ source: SourceImage, _ settings: PreprocessSettings) -> [Float] {
    let target = resizedSize(width: source.originalWidth, height: source.originalHeight, longest: settings.size)
    let resized = resizeArea(source.pixels, width: target.width, height: target.height)
    var (padded, _, _) = padCenter(resized, width: target.width, height: target.height, size: settings.size)
    if settings.equalize { equalizeHistogram(&padded) }
    return padded
  }

  /// ScaleIntensityRange(a_min=0, a_max=255, b_min=-1, b_max=1), written into `out`.
  @inline(__always)
  public static func scaleToModelRange(_ values: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
    for i in 0..<values.count { out[i] = values[i] / 255 * 2 - 1 }
  }

  /// The 8-bit form stored in the cache (round half to even, clamped).
  public static func toUInt8(_ values: [Float]) -> [UInt8] {
    values.map { UInt8(max(0, min(255, $0.rounded(.toNearestOrEven)))) }
  }
}
