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
    if case .u8(let v) = image.samples {
      var out = [Float](repeating: 0, count: outW * outH)
      out.withUnsafeMutableBufferPointer { o in
        v.withUnsafeBufferPointer { areaU8($0, inW, inH, outW, outH, xs, xe, ys, ye, into: o.baseAddress!, stride: outW) }
      }
      return out
    }
    // Horizontal pass: row sums over each column window.
    var rows = [Float](repeating: 0, count: inH * outW)
    rows.withUnsafeMutableBufferPointer { r in
      switch image.samples {
      case .u8: break
      case .u16(let v): v.withUnsafeBufferPointer { horizontal($0, r, inW, inH, outW, xs, xe) }
      case .f32(let v): v.withUnsafeBufferPointer { horizontal($0, r, inW, inH, outW, xs, xe) }
      }
    }
    // Vertical pass: sum the row sums over each row window, divide by the window area.
    var out = [Float](repeating: 0, count: outW * outH)
    let kw = (0..<outW).map { Float(xe[$0] - xs[$0]) }
    rows.withUnsafeBufferPointer { r in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<outH {
          let base = i * outW
          for y in ys[i]..<ye[i] {
            let rowBase = y * outW
            for j in 0..<outW { o[base + j] += r[rowBase + j] }
          }
          let kh = Float(ye[i] - ys[i])
          for j in 0..<outW { o[base + j] /= kh * kw[j] }
        }
      }
    }
    return out
  }

  /// The 8-bit case in integers: window sums are exact, then one division per pixel.
  /// Horizontal sums come from a running prefix sum of each input row and are kept in a
  /// small ring of rows (each input row is summed once), so nothing large is allocated.
  /// Writes `outH` rows of `outW` pixels into `dst`, rows `dstStride` apart.
  static func areaU8(_ src: UnsafeBufferPointer<UInt8>, _ inW: Int, _ inH: Int, _ outW: Int, _ outH: Int,
                     _ xs: [Int], _ xe: [Int], _ ys: [Int], _ ye: [Int],
                     into dst: UnsafeMutablePointer<Float>, stride dstStride: Int) {
    var ring = 1
    for i in 0..<outH { ring = max(ring, ye[i] - ys[i]) }
    var rows = [UInt32](repeating: 0, count: ring * outW)
    var prefix = [UInt32](repeating: 0, count: inW + 1)
    var acc = [UInt32](repeating: 0, count: outW)
    let kw = (0..<outW).map { Float(xe[$0] - xs[$0]) }
    xs.withUnsafeBufferPointer { xs in
    xe.withUnsafeBufferPointer { xe in
    kw.withUnsafeBufferPointer { kw in
    prefix.withUnsafeMutableBufferPointer { p in
    rows.withUnsafeMutableBufferPointer { r in
    acc.withUnsafeMutableBufferPointer { a in
      var next = 0
      for i in 0..<outH {
        while next < ye[i] {
          let s = next * inW
          var run: UInt32 = 0
          for x in 0..<inW { run &+= UInt32(src[s + x]); p[x + 1] = run }
          let d = (next % ring) * outW
          for j in 0..<outW { r[d + j] = p[xe[j]] &- p[xs[j]] }
          next += 1
        }
        for j in 0..<outW { a[j] = 0 }
        for y in ys[i]..<ye[i] {
          let d = (y % ring) * outW
          for j in 0..<outW { a[j] &+= r[d + j] }
        }
        let kh = Float(ye[i] - ys[i])
        let o = dst + i * dstStride
        for j in 0..<outW { o[j] = Float(a[j]) / (kh * kw[j]) }
      }
    }}}}}}
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
    guard bins >= 2, !values.isEmpty else { return }
    let (mn, mx) = values.withUnsafeBufferPointer(minMax)
    // np.histogram widens a zero range to [v - 0.5, v + 0.5].
    let first = mn == mx ? Double(mn) - 0.5 : Double(mn)
    let last = mn == mx ? Double(mx) + 0.5 : Double(mx)
    // Edges as numpy's linspace in the image's dtype (float32): first + i * step.
    let step = (last - first) / Double(bins)
    var edges = [Float](repeating: 0, count: bins + 1)
    for i in 0...bins { edges[i] = Float(first + Double(i) * step) }
    edges[bins] = Float(last)
    // Bin index estimated, then corrected against the float32 edges as numpy does.
    // Four interleaved sub-histograms: runs of equal values (the zero padding) would
    // otherwise serialise on one counter.
    var sub = [Int32](repeating: 0, count: 4 * bins)
    let norm = Float(Double(bins) / (last - first)), firstF = Float(first)
    edges.withUnsafeBufferPointer { e in
      sub.withUnsafeMutableBufferPointer { h in
        values.withUnsafeBufferPointer { v in
          @inline(__always) func bin(_ x: Float) -> Int {
            var k = min(bins - 1, max(0, Int((x - firstF) * norm)))
            if x < e[k] { k = max(0, k - 1) } else if k < bins - 1, x >= e[k + 1] { k += 1 }
            return k
          }
          let n4 = v.count / 4 * 4
          var i = 0
          while i < n4 {
            h[bin(v[i])] &+= 1
            h[bins + bin(v[i + 1])] &+= 1
            h[2 * bins + bin(v[i + 2])] &+= 1
            h[3 * bins + bin(v[i + 3])] &+= 1
            i += 4
          }
          while i < v.count { h[bin(v[i])] &+= 1; i += 1 }
        }
      }
    }
    var hist = [Int](repeating: 0, count: bins)
    for k in 0..<bins { hist[k] = Int(sub[k]) + Int(sub[bins + k]) + Int(sub[2 * bins + k]) + Int(sub[3 * bins + k]) }
    var centers = [Float](repeating: 0, count: bins)
    for i in 0..<bins { centers[i] = (edges[i] + edges[i + 1]) / 2 }
    // Cumulative counts rescaled to [lo, hi] (MONAI rescale_array), in float64 as numpy.
    var cum = [Double](repeating: 0, count: bins)
    var running = 0
    for i in 0..<bins { running += hist[i]; cum[i] = Double(running) }
    let cmin = cum[0], cmax = cum[bins - 1]
    for i in 0..<bins {
      cum[i] = cmax == cmin ? Double(lo) : (cum[i] - cmin) / (cmax - cmin) * Double(hi - lo) + Double(lo)
    }
    // np.interp: clamped outside the centres, linear in between. Evaluated in float32
    // (output is float32; the difference to numpy's float64 is below 1e-5 of a grey level).
    var slopes = [Float](repeating: 0, count: bins - 1)
    for j in 0..<(bins - 1) { slopes[j] = Float((cum[j + 1] - cum[j]) / Double(centers[j + 1] - centers[j])) }
    let cumF = cum.map { Float($0) }
    let c0 = centers[0], cl = centers[bins - 1]
    let inv = Float(bins - 1) / (cl - c0)
    centers.withUnsafeBufferPointer { c in
      cumF.withUnsafeBufferPointer { f in
        slopes.withUnsafeBufferPointer { s in
          values.withUnsafeMutableBufferPointer { v in
            for i in 0..<v.count {
              let x = v[i]
              if x <= c0 { v[i] = f[0]; continue }
              if x >= cl { v[i] = f[bins - 1]; continue }
              var j = min(bins - 2, Int((x - c0) * inv))
              while j > 0 && x < c[j] { j -= 1 }
              while j < bins - 2 && x >= c[j + 1] { j += 1 }
              v[i] = s[j] * (x - c[j]) + f[j]
            }
          }
        }
      }
    }
  }

  /// Smallest and largest value, eight lanes at a time.
  static func minMax(_ v: UnsafeBufferPointer<Float>) -> (Float, Float) {
    var lo = v[0], hi = v[0]
    let n8 = v.count / 8 * 8
    if n8 > 0, let base = v.baseAddress {
      let raw = UnsafeRawPointer(base)
      var vlo = raw.loadUnaligned(as: SIMD8<Float>.self), vhi = vlo
      var i = 8
      while i < n8 {
        let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        vlo = pointwiseMin(vlo, x)
        vhi = pointwiseMax(vhi, x)
        i += 8
      }
      lo = vlo.min()
      hi = vhi.max()
    }
    for i in n8..<v.count { lo = min(lo, v[i]); hi = max(hi, v[i]) }
    return (lo, hi)
  }

  /// The preprocessed image in the [0, 255] range (before ScaleIntensityRange), size x size.
  public static func apply(_ source: SourceImage, _ settings: PreprocessSettings) -> [Float] {
    let target = resizedSize(width: source.originalWidth, height: source.originalHeight, longest: settings.size)
    var padded: [Float]
    if case .u8(let v) = source.pixels.samples, target.width <= settings.size, target.height <= settings.size {
      // 8-bit fast path: resize straight into the zero-padded square.
      let n = settings.size
      padded = [Float](repeating: 0, count: n * n)
      let left = (n - target.width) / 2, top = (n - target.height) / 2
      let (xs, xe) = windows(source.pixels.width, target.width)
      let (ys, ye) = windows(source.pixels.height, target.height)
      padded.withUnsafeMutableBufferPointer { o in
        v.withUnsafeBufferPointer {
          areaU8($0, source.pixels.width, source.pixels.height, target.width, target.height, xs, xe, ys, ye,
                 into: o.baseAddress! + top * n + left, stride: n)
        }
      }
    } else {
      let resized = resizeArea(source.pixels, width: target.width, height: target.height)
      padded = padCenter(resized, width: target.width, height: target.height, size: settings.size).values
    }
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
