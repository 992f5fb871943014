import Common
import Data
import Foundation

/// A pneumothorax as drawn: the lung on one side collapsed toward the hilum, leaving a
/// crescent of air (dark, no lung markings) under the chest wall, widest at the apex, bounded
/// by a thin bright visceral pleural line.
struct PneumothoraxSign: Equatable {
  /// 0: the lung on the image's left (the patient's right), 1: on the image's right.
  var side: Int
  /// Size of the collapsed lung relative to the full lung (smaller = larger pneumothorax).
  var collapse: Double

  /// The sizes drawn: the collapsed lung keeps this much of the full lung.
  static let collapseRange = 0.55...0.85
  /// Above this a report calls the pneumothorax "small".
  static let smallAbove = 0.7

  /// What a report calls "small": the kind a rule-based labeller most often misses.
  var isSubtle: Bool { collapse > PneumothoraxSign.smallAbove }
}

/// Acute rib fractures as drawn: `ribs` consecutive rib bands broken at about the same
/// lateral position, with a gap and the lateral fragment displaced downward.
struct FractureSign: Equatable {
  var side: Int
  var firstRib: Int
  var ribs: Int
  /// Distance of the break from the midline, as a fraction of the image width.
  var position: Double
  /// Width of the gap, as a fraction of the image width.
  var gap: Double
  /// Downward shift of the lateral fragment, in rib half-thicknesses.
  var displacement: Double

  /// The share of fractures drawn over two ribs (then 3 ribs: 30 %, 4 ribs: 20 %).
  static let twoRibShare = 0.5

  /// The smallest break drawn (two ribs) is the kind a report describes in passing, and a
  /// rule-based labeller misses.
  var isSubtle: Bool { ribs <= 2 }
}

/// A chest tube as drawn: a thin radiopaque tube that enters through the lateral chest wall low
/// on `side` (outside the body it runs down and out) and curves up along the lung's lateral
/// edge to its tip at the apex, with side holes (short gaps in the stripe) near the tip. Real
/// tubes are mostly seen with treated pneumothoraces: a classifier can learn the tube instead.
struct ChestTubeSign: Equatable {
  /// As `PneumothoraxSign.side`: 0 the image's left, 1 its right.
  var side: Int
  /// Height of the entry through the chest wall, in lung half-heights below the lung centre.
  var entry: Double
  /// Height of the tip, in lung half-heights above the lung centre.
  var tip: Double
}

/// What to draw for one image.
struct ImageSpec {
  var width: Int
  var height: Int
  var lateral: Bool
  var pneumothorax: PneumothoraxSign?
  var fracture: FractureSign?
  var chestTube: ChestTubeSign? = nil
  /// Seeds the anatomy jitter, texture and noise of this image.
  var seed: UInt64
}

/// A rendered image: attenuation-like intensities (bright = dense, about 0...1) in row-major
/// order, and the row-major 0/1 masks of the drawn signs.
struct RenderedImage {
  var width: Int
  var height: Int
  var pixels: [Float]
  var pneumothoraxMask: [UInt8]
  var fractureMask: [UInt8]
  var chestTubeMask: [UInt8] = []
}

/// Smooth random texture: random values on a grid, interpolated with a smoothstep.
private struct ValueNoise {
  let cells: Int
  let values: [Double]

  init(cells: Int, rng: inout SplitMix64) {
    self.cells = cells
    values = (0..<((cells + 1) * (cells + 1))).map { _ in rng.uniform() - 0.5 }
  }

  func at(_ u: Double, _ v: Double) -> Double {
    let x = min(max(u, 0), 0.999_999) * Double(cells), y = min(max(v, 0), 0.999_999) * Double(cells)
    let ix = Int(x), iy = Int(y)
    var fx = x - Double(ix), fy = y - Double(iy)
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    let n = cells + 1
    let a = values[iy * n + ix], b = values[iy * n + ix + 1]
    let c = values[(iy + 1) * n + ix], d = values[(iy + 1) * n + ix + 1]
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy
  }
}

/// Draws chest-radiograph-like images. Not anatomy: just enough structure (body, lungs with
/// markings, mediastinum, heart, spine, ribs) that the two signs must be found, not guessed
/// from the overall brightness.
enum ChestRenderer {
  static let ribCount = 7
  /// Rib bands are about 3 px thick and clearly brighter than the lung markings at the demo's
  /// 64 px, so that a break is a visible gap and step rather than texture.
  static let ribHalfThickness = 0.026
  static let ribContrast = 0.24
  /// Distance between neighbouring ribs (in image heights).
  static let ribSpacing = 0.088

  static func ribCenter(_ k: Int, t: Double, top: Double) -> Double {
    top + Double(k) * ribSpacing - 0.05 * t + 0.55 * t * t
  }

  static func render(_ spec: ImageSpec) -> RenderedImage {
    spec.lateral ? renderLateral(spec) : renderFrontal(spec)
  }

  private static func smoothInside(_ q: Double, edge: Double) -> Double {
    min(max((1 - q) / edge, 0), 1)
  }

  static func renderFrontal(_ spec: ImageSpec) -> RenderedImage {
    let w = spec.width, h = spec.height
    var rng = SplitMix64(seed: spec.seed)
    let shiftU = rng.uniform(-0.025, 0.025), shiftV = rng.uniform(-0.025, 0.025)
    let lungRX = rng.uniform(0.15, 0.175), lungRY = rng.uniform(0.28, 0.32)
    let lungCY = 0.45 + shiftV
    let lungCX = [0.5 + shiftU - rng.uniform(0.19, 0.21), 0.5 + shiftU + rng.uniform(0.19, 0.21)]
    let heartRX = rng.uniform(0.12, 0.17), heartRY = rng.uniform(0.11, 0.14)
    let ribTop = lungCY - lungRY + rng.uniform(0.0, 0.03)
    let gain = rng.uniform(0.9, 1.1), offset = rng.uniform(-0.04, 0.04)
    let lungBase = rng.uniform(0.17, 0.24)
    let fine = ValueNoise(cells: 22, rng: &rng), coarse = ValueNoise(cells: 9, rng: &rng)
    let body = ValueNoise(cells: 5, rng: &rng)
    let mid = 0.5 + shiftU

    var pixels = [Float](repeating: 0, count: w * h)
    var ptxMask = [UInt8](repeating: 0, count: w * h)
    var fxMask = [UInt8](repeating: 0, count: w * h)
    let ptx = spec.pneumothorax, fx = spec.fracture
    let tube = spec.chestTube.map { tubeStripe($0, width: w, height: h, lungCX: lungCX[$0.side], lungCY: lungCY, lungRX: lungRX, lungRY: lungRY) }
    // The collapsed lung: shrunk, pulled toward the midline and down, so the air is widest at the apex.
    var collapsed = (cx: 0.0, cy: 0.0, rx: 1.0, ry: 1.0)
    if let p = ptx {
      let toMid = p.side == 0 ? 1.0 : -1.0
      collapsed = (lungCX[p.side] + toMid * (1 - p.collapse) * lungRX * 0.8,
                   lungCY + (1 - p.collapse) * lungRY * 0.9, p.collapse * lungRX, p.collapse * lungRY)
    }
    for y in 0..<h {
      let v = (Double(y) + 0.5) / Double(h)
      for x in 0..<w {
        let u = (Double(x) + 0.5) / Double(w)
        let i = y * w + x
        let qb = pow((u - mid) / 0.46, 2) + pow((v - 0.56) / 0.54, 2)
        let inBody = smoothInside(qb, edge: 0.06)
        var val = 0.04 + inBody * (0.44 + 0.08 * body.at(u, v))
        // Mediastinum and heart (dense), then the lungs (air with markings).
        if abs(u - mid) < 0.07, v > 0.04 { val = max(val, 0.64 * inBody) }
        let qh = pow((u - (mid + 0.03)) / heartRX, 2) + pow((v - (lungCY + lungRY * 0.62)) / heartRY, 2)
        let heart = smoothInside(qh, edge: 0.15)
        for s in 0..<2 {
          let ql = pow((u - lungCX[s]) / lungRX, 2) + pow((v - lungCY) / lungRY, 2)
          guard ql < 1 else { continue }
          var lung = lungBase + 0.11 * coarse.at(u, v) + 0.09 * fine.at(u, v)
          if let p = ptx, p.side == s {
            let qc = (pow((u - collapsed.cx) / collapsed.rx, 2) + pow((v - collapsed.cy) / collapsed.ry, 2)).squareRoot()
            if qc > 1.04 {
              lung = 0.06
              ptxMask[i] = 1
            } else if qc > 0.96 {
              lung = lungBase + 0.2  // the visceral pleural line
            }
          }
          let weight = smoothInside(ql, edge: 0.08) * (1 - heart)
          val = val * (1 - weight) + lung * weight
        }
        val = max(val, 0.62 * heart)
        if abs(u - mid) < 0.024, v > 0.03 { val += 0.08 * inBody }
        // Ribs: bands curving down laterally; a fracture removes a gap and shifts the lateral fragment.
        let side = u < mid ? 0 : 1
        let t = abs(u - mid)
        if t > 0.045, t < 0.43 {
          for k in 0..<ribCount {
            var center = ribCenter(k, t: t, top: ribTop)
            if let f = fx, f.side == side, k >= f.firstRib, k < f.firstRib + f.ribs {
              let breakCenter = ribCenter(k, t: f.position, top: ribTop)
              if abs(t - f.position) < f.gap / 2 + 0.03,
                 abs(v - breakCenter) < ribHalfThickness * (2.5 + f.displacement) {
                fxMask[i] = 1
              }
              if abs(t - f.position) < f.gap / 2 { continue }
              if t > f.position { center += f.displacement * ribHalfThickness }
            }
            let d = abs(v - center) / ribHalfThickness
            if d < 1 { val += ribContrast * (1 - d * d) * inBody }
          }
        }
        if let tube, tube[i] > 0 { val += tubeContrast * Double(tube[i]) }
        val = offset + gain * val + 0.022 * rng.normal()
        pixels[i] = Float(min(max(val, 0), 1))
      }
    }
    return RenderedImage(width: w, height: h, pixels: pixels, pneumothoraxMask: ptxMask, fractureMask: fxMask,
                         chestTubeMask: tube.map { opacity in opacity.map { $0 > 0 ? UInt8(1) : 0 } } ?? [UInt8](repeating: 0, count: w * h))
  }

  /// Brightness the tube adds at its centre line (it is denser than bone).
  static let tubeContrast = 0.42
  /// Half the tube's width, in image widths (about 3 px wide at the demo's 160 px test images, 1 px at its 64 px input).
  static let tubeHalfWidth = 0.009

  /// The tube's opacity per pixel (0 outside; under 1 at the side holes): a path stamped with a
  /// disc every half pixel, from outside the body to the entry, then a quadratic curve up the
  /// lateral lung edge to the tip.
  static func tubeStripe(_ t: ChestTubeSign, width w: Int, height h: Int, lungCX: Double, lungCY: Double,
                         lungRX: Double, lungRY: Double) -> [Float] {
    let outward = t.side == 0 ? -1.0 : 1.0
    let entry = (u: lungCX + outward * lungRX * 1.12, v: lungCY + t.entry * lungRY)
    let outside = (u: entry.u + outward * 0.07, v: entry.v + 0.07)
    let control = (u: lungCX + outward * lungRX * 1.0, v: lungCY - 0.35 * lungRY)
    let tip = (u: lungCX + outward * lungRX * 0.35, v: lungCY - t.tip * lungRY)
    func point(_ s: Double) -> (u: Double, v: Double) {
      if s < 0.2 {  // the outside part, straight
        let a = s / 0.2
        return (outside.u + (entry.u - outside.u) * a, outside.v + (entry.v - outside.v) * a)
      }
      let a = (s - 0.2) / 0.8, b = 1 - a
      return (b * b * entry.u + 2 * a * b * control.u + a * a * tip.u, b * b * entry.v + 2 * a * b * control.v + a * a * tip.v)
    }
    var out = [Float](repeating: 0, count: w * h)
    let radius = max(tubeHalfWidth * Double(w), 0.75)  // in pixels
    let steps = Int(2 * Double(max(w, h)) * 1.5)
    let reach = Int(radius.rounded(.up))
    for k in 0...steps {
      let s = Double(k) / Double(steps)
      // Side holes: gaps in the stripe over the last third, every 6 % of the length.
      let hole = s > 0.66 && s < 0.96 && (s - 0.66).truncatingRemainder(dividingBy: 0.06) < 0.02
      let p = point(s)
      let cx = p.u * Double(w) - 0.5, cy = p.v * Double(h) - 0.5
      let x0 = Int(cx.rounded()), y0 = Int(cy.rounded())
      for y in (y0 - reach)...(y0 + reach) where y >= 0 && y < h {
        for x in (x0 - reach)...(x0 + reach) where x >= 0 && x < w {
          let d2 = (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)
          guard d2 <= radius * radius else { continue }
          let opacity = Float(hole ? 0.35 : 1.0 - 0.3 * d2 / (radius * radius))
          out[y * w + x] = max(out[y * w + x], opacity)
        }
      }
    }
    return out
  }

  /// A lateral view: one broad lung field between the sternum and the spine. It carries no
  /// sign; adapters are meant to drop lateral views.
  static func renderLateral(_ spec: ImageSpec) -> RenderedImage {
    let w = spec.width, h = spec.height
    var rng = SplitMix64(seed: spec.seed)
    let fine = ValueNoise(cells: 20, rng: &rng)
    let shift = rng.uniform(-0.03, 0.03)
    var pixels = [Float](repeating: 0, count: w * h)
    for y in 0..<h {
      let v = (Double(y) + 0.5) / Double(h)
      for x in 0..<w {
        let u = (Double(x) + 0.5) / Double(w)
        let inBody = smoothInside(pow((u - 0.5 - shift) / 0.42, 2) + pow((v - 0.55) / 0.52, 2), edge: 0.06)
        var val = 0.04 + 0.46 * inBody
        let ql = pow((u - 0.47 - shift) / 0.27, 2) + pow((v - 0.47) / 0.31, 2)
        let lung = smoothInside(ql, edge: 0.1)
        val = val * (1 - lung) + (0.26 + 0.1 * fine.at(u, v)) * lung
        if abs(u - (0.8 + shift)) < 0.05 { val += 0.18 * inBody }   // spine
        if abs(u - (0.16 + shift)) < 0.015 { val += 0.14 * inBody }  // sternum
        val += 0.022 * rng.normal()
        pixels[y * w + x] = Float(min(max(val, 0), 1))
      }
    }
    let empty = [UInt8](repeating: 0, count: w * h)
    return RenderedImage(width: w, height: h, pixels: pixels, pneumothoraxMask: empty, fractureMask: empty, chestTubeMask: empty)
  }
}
