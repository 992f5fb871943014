import Common
import Data
import Foundation
import Torch

/// Augmentation settings. Every random transform has its own probability; the defaults below
/// are written down because MONAI's are silent (`prob=0.1` for every `Rand*` transform).
///
/// Defaults, and why:
/// - `horizontalFlip` 0.5, `verticalFlip` 0.5: the study lists both flips without a
///   probability; 0.5 is the usual choice (MONAI would silently use 0.1).
/// - `noise` 0.1 with `noiseStd` 0.1: MONAI `RandGaussianNoise` defaults (std drawn from U(0, 0.1)
///   per image, on images scaled to [-1, 1]).
/// - `affine` 0.5: rotation ±25°, scale 0.9-1.1, translation ±10 % of the side (the study's
///   ranges), bilinear, reflection padding (MONAI `RandAffine`'s default padding).
/// - `mix` 0.5: probability that a batch is mixed; then CutMix with probability
///   `cutmixShare` 0.5, else mixup; `mixupAlpha` = `cutmixAlpha` = 1.0 (MONAI `MixUp`/`CutMix`
///   default: weights uniform on [0, 1]), one weight per image, partner from a random permutation.
public struct AugmentOptions: Codable, Equatable, Sendable {
  public var horizontalFlip = 0.5
  public var verticalFlip = 0.5
  public var noise = 0.1
  public var noiseStd = 0.1
  public var affine = 0.5
  public var rotationDegrees = 25.0
  /// Scale drawn from 1 + U(-scaleRange, scaleRange).
  public var scaleRange = 0.1
  /// Translation drawn from U(-t, t) times the image side.
  public var translateFraction = 0.1
  public var mix = 0.5
  public var cutmixShare = 0.5
  public var mixupAlpha = 1.0
  public var cutmixAlpha = 1.0

  enum CodingKeys: String, CodingKey {
    case horizontalFlip = "horizontal_flip"
    case verticalFlip = "vertical_flip"
    case noise
    case noiseStd = "noise_std"
    case affine
    case rotationDegrees = "rotation_degrees"
    case scaleRange = "scale_range"
    case translateFraction = "translate_fraction"
    case mix
    case cutmixShare = "cutmix_share"
    case mixupAlpha = "mixup_alpha"
    case cutmixAlpha = "cutmix_alpha"
  }

  public init() {}
  /// No augmentation at all (evaluation, tests).
  public static var none: AugmentOptions {
    var o = AugmentOptions()
    o.horizontalFlip = 0; o.verticalFlip = 0; o.noise = 0; o.affine = 0; o.mix = 0
    return o
  }

  /// Checks ranges; `key` prefixes the names in messages (e.g. "train.augment").
  public func validate(key: String = "augment") throws {
    for (name, p) in [("horizontal_flip", horizontalFlip), ("vertical_flip", verticalFlip), ("noise", noise),
                      ("affine", affine), ("mix", mix), ("cutmix_share", cutmixShare)] where !(0...1).contains(p) {
      throw TrainError("\(key).\(name) is \(p); a probability must lie in [0, 1]", key: "\(key).\(name)")
    }
    for (name, a) in [("mixup_alpha", mixupAlpha), ("cutmix_alpha", cutmixAlpha)] where !(a > 0) {
      throw TrainError("\(key).\(name) is \(a); Beta(alpha, alpha) needs alpha > 0", key: "\(key).\(name)")
    }
    if noiseStd < 0 { throw TrainError("\(key).noise_std is \(noiseStd); it must be >= 0", key: "\(key).noise_std") }
    if !(0..<1).contains(scaleRange) { throw TrainError("\(key).scale_range is \(scaleRange); use a value in [0, 1)", key: "\(key).scale_range") }
  }
}

/// Random draws: small per-image parameters come from a CPU generator (so they can be read on
/// the host without a device sync); pixel noise comes from a generator on the training device.
public final class AugmentRandom {
  public let host: Generator
  public let device: Generator
  let seeds: Seeds
  public init(seed: UInt64, device: Device) throws {
    // Two named streams of the run's seed (never the stream the model was initialized from).
    seeds = Seeds(seed)
    host = try Generator(seed: seeds.seed(.augmentHost), device: .cpu)
    self.device = try Generator(seed: seeds.seed(.augmentDevice), device: device)
  }

  /// Puts both generators at the start of batch `batch` of `epoch`: the training loop does so
  /// before every batch, so a batch's draws are the same whichever rank of a data-parallel run
  /// (or which resumed process) trains it.
  public func start(epoch: Int, batch: Int) throws {
    try host.setState(Generator(seed: seeds.seed(.augmentHost, epoch: epoch, batch: batch), device: .cpu).state())
    try device.setState(Generator(seed: seeds.seed(.augmentDevice, epoch: epoch, batch: batch), device: device.device).state())
  }
  func uniform(_ n: Int, _ lo: Double, _ hi: Double) throws -> [Double] {
    try Tensor.rand([n], dtype: .float64, generator: host).toArray(Double.self).map { lo + (hi - lo) * $0 }
  }
  func coin(_ n: Int, _ p: Double) throws -> [Bool] {
    try Tensor.rand([n], dtype: .float64, generator: host).toArray(Double.self).map { $0 < p }
  }
  func beta(_ n: Int, _ alpha: Double) throws -> [Double] {
    try Tensor.beta(alpha, alpha, shape: [n], generator: host).toArray(Float.self).map(Double.init)
  }
  func permutation(_ n: Int) throws -> [Int] {
    try Tensor.randperm(n, generator: host).toArray(Int64.self).map(Int.init)
  }
  func integers(_ n: Int, below hi: Int) throws -> [Int] {
    try Tensor.randint(0, hi, [n], generator: host).toArray(Int64.self).map(Int.init)
  }
}

/// A [B] selection as a [B,1,1,1] boolean tensor on `device`.
func selectionMask(_ on: [Bool], device: Device) throws -> Tensor {
  try Tensor(on.map { $0 ? UInt8(1) : 0 }, shape: [on.count, 1, 1, 1]).to(device, dtype: .bool)
}

/// Left-right (`dim` 3) or up-down (`dim` 2) flip of the chosen images.
public struct Flip {
  public enum Axis { case horizontal, vertical }
  public let axis: Axis
  public let probability: Double
  public init(_ axis: Axis, probability: Double) { self.axis = axis; self.probability = probability }

  public func draw(batch n: Int, _ r: AugmentRandom) throws -> [Bool] { try r.coin(n, probability) }

  public func apply(_ chosen: [Bool], to x: Tensor) throws -> Tensor {
    guard chosen.contains(true) else { return x }
    let flipped = try x.flip([axis == .horizontal ? 3 : 2])
    if !chosen.contains(false) { return flipped }
    return try Tensor.where(selectionMask(chosen, device: x.device), flipped, x)
  }
}

/// MONAI `RandGaussianNoise` (mean 0, std drawn from U(0, std) per image).
public struct GaussianNoise {
  public struct Params { public var chosen: [Bool]; public var std: [Double] }
  public let probability: Double, std: Double
  public init(probability: Double, std: Double) { self.probability = probability; self.std = std }

  public func draw(batch n: Int, _ r: AugmentRandom) throws -> Params {
    Params(chosen: try r.coin(n, probability), std: try r.uniform(n, 0, std))
  }

  /// Draws the unit noise from the device generator only when some image is chosen.
  public func apply(_ p: Params, to x: Tensor, _ r: AugmentRandom) throws -> Tensor {
    guard p.chosen.contains(true) else { return x }
    let scale = zip(p.chosen, p.std).map { Float($0 ? $1 : 0) }
    let s = try Tensor(scale, shape: [scale.count, 1, 1, 1]).to(x.device, dtype: x.dtype)
    let unit = try Tensor.randn(x.shape, dtype: x.dtype, device: x.device, generator: r.device)
    return try x + unit * s
  }
}

/// Rotation, scale and translation per image through `affine_grid` + `grid_sample`
/// (bilinear, reflection padding). `align_corners` is false in both calls: then the identity
/// matrix samples every pixel at its own centre, so identity parameters return the input
/// (up to float rounding), and normalised coordinates span the whole image, not pixel centres.
public struct RandomAffine {
  public struct Params {
    public var chosen: [Bool]
    public var radians: [Double], scale: [Double], translateX: [Double], translateY: [Double]
  }
  public let probability: Double, degrees: Double, scaleRange: Double, translate: Double
  public init(probability: Double, degrees: Double, scaleRange: Double, translate: Double) {
    self.probability = probability; self.degrees = degrees; self.scaleRange = scaleRange; self.translate = translate
  }

  public func draw(batch n: Int, _ r: AugmentRandom) throws -> Params {
    let rad = degrees * .pi / 180
    return Params(chosen: try r.coin(n, probability), radians: try r.uniform(n, -rad, rad),
                  scale: try r.uniform(n, 1 - scaleRange, 1 + scaleRange),
                  translateX: try r.uniform(n, -translate, translate), translateY: try r.uniform(n, -translate, translate))
  }

  /// The [B,2,3] matrices mapping output to input normalised coordinates. The image is rotated
  /// by the angle and zoomed by the scale about its centre, then shifted by the translation
  /// (a fraction of the side; normalised coordinates span 2 per side). Aspect ratio is honoured.
  /// A positive angle turns the image counter-clockwise as displayed (90° = `torch.rot90(k=1)`).
  public static func theta(_ p: Params, height h: Int, width w: Int) -> [Float] {
    var out: [Float] = []
    let aspect = Double(h) / Double(w)
    for i in p.chosen.indices {
      guard p.chosen[i] else { out += [1, 0, 0, 0, 1, 0]; continue }
      let c = cos(p.radians[i]) / p.scale[i], s = sin(p.radians[i]) / p.scale[i]
      out += [Float(c), Float(-s * aspect), Float(2 * p.translateX[i]),
              Float(s / aspect), Float(c), Float(2 * p.translateY[i])]
    }
    return out
  }

  public func apply(_ p: Params, to x: Tensor) throws -> Tensor {
    guard p.chosen.contains(true) else { return x }
    let shape = x.shape
    let theta = try Tensor(Self.theta(p, height: shape[2], width: shape[3]), shape: [shape[0], 2, 3])
      .to(x.device, dtype: x.dtype)
    let grid = try F.affineGrid(theta, size: shape, alignCorners: false)
    let warped = try F.gridSample(x, grid: grid, mode: .bilinear, padding: .reflection, alignCorners: false)
    return try Tensor.where(selectionMask(p.chosen, device: x.device), warped, x)
  }
}

/// Mixup and CutMix with one weight per image and a partner from a random permutation (as
/// MONAI's `MixUp`/`CutMix`). Targets become the same convex combination as the pixels: the
/// mixup weight, or for CutMix the share of the image's own pixels left outside the box.
///
/// The U-ignore mask: a mixed image's finding counts only if it counts for both images that
/// contributed to it (an ignored label is unknown, so a blend containing it is unknown too);
/// an image that took nothing from its partner (weight 1) keeps its own mask.
public struct Mix {
  public enum Kind: String, Sendable { case mixup, cutmix }
  public struct Params {
    public var kind: Kind?
    public var partner: [Int]
    /// Per image: the mixup weight of the image itself.
    public var weight: [Double]
    /// CutMix boxes (rows y0..<y1, columns x0..<x1), taken from the partner.
    public var boxes: [(y0: Int, y1: Int, x0: Int, x1: Int)]
  }
  public let probability: Double, cutmixShare: Double, mixupAlpha: Double, cutmixAlpha: Double
  public init(probability: Double, cutmixShare: Double, mixupAlpha: Double, cutmixAlpha: Double) {
    self.probability = probability; self.cutmixShare = cutmixShare; self.mixupAlpha = mixupAlpha; self.cutmixAlpha = cutmixAlpha
  }

  public func draw(batch n: Int, height h: Int, width w: Int, _ r: AugmentRandom) throws -> Params {
    guard probability > 0, try r.coin(1, probability)[0] else { return Params(kind: nil, partner: [], weight: [], boxes: []) }
    let kind: Kind = try r.coin(1, cutmixShare)[0] ? .cutmix : .mixup
    let partner = try r.permutation(n)
    var weight = try r.beta(n, kind == .cutmix ? cutmixAlpha : mixupAlpha)
    var boxes: [(Int, Int, Int, Int)] = []
    if kind == .cutmix {
      let ys = try r.integers(n, below: h), xs = try r.integers(n, below: w)
      for i in 0..<n {
        let side = (1 - weight[i]).squareRoot()
        let y1 = min(Int((Double(ys[i]) + Double(h) * side).rounded(.up)), h)
        let x1 = min(Int((Double(xs[i]) + Double(w) * side).rounded(.up)), w)
        boxes.append((ys[i], y1, xs[i], x1))
        // The label weight is the pixel share the image keeps: the box is clipped at the border.
        weight[i] = 1 - Double((y1 - ys[i]) * (x1 - xs[i])) / Double(h * w)
      }
    }
    return Params(kind: kind, partner: partner, weight: weight, boxes: boxes)
  }

  /// Mixes images, targets and masks; returns them unchanged when the batch was not chosen.
  public func apply(_ p: Params, images x: Tensor, targets y: Tensor, mask m: Tensor) throws
    -> (images: Tensor, targets: Tensor, mask: Tensor) {
    guard let kind = p.kind else { return (x, y, m) }
    let dev = x.device, n = p.partner.count
    let perm = try Tensor(p.partner.map(Int64.init)).to(dev)
    let xp = try x.indexSelect(dim: 0, perm), yp = try y.indexSelect(dim: 0, perm), mp = try m.indexSelect(dim: 0, perm)
    let wk = try Tensor(p.weight.map(Float.init), shape: [n, 1]).to(dev, dtype: y.dtype)
    let images: Tensor
    switch kind {
    case .mixup:
      let wi = try wk.reshape([n, 1, 1, 1]).to(dtype: x.dtype)
      images = try xp + (x - xp) * wi
    case .cutmix:
      let s = x.shape
      let rows = try Tensor.arange(0, Double(s[2]), device: dev).reshape([1, s[2], 1])
      let cols = try Tensor.arange(0, Double(s[3]), device: dev).reshape([1, 1, s[3]])
      func col(_ f: ((y0: Int, y1: Int, x0: Int, x1: Int)) -> Int) throws -> Tensor {
        try Tensor(p.boxes.map { Float(f($0)) }, shape: [n, 1, 1]).to(dev)
      }
      let y0 = try col { $0.y0 }, y1 = try col { $0.y1 }, x0 = try col { $0.x0 }, x1 = try col { $0.x1 }
      let inRows = try rows.lt(y0).logicalNot().logicalAnd(rows.lt(y1))
      let inCols = try cols.lt(x0).logicalNot().logicalAnd(cols.lt(x1))
      let box = try inRows.logicalAnd(inCols).unsqueeze(1)
      images = try Tensor.where(box, xp, x)
    }
    let targets = try yp + (y - yp) * wk
    // counts = (own mask or weight 0) and (partner mask or weight 1)
    let keepsNothing = try wk.eq(0).to(dtype: m.dtype), takesNothing = try wk.eq(1).to(dtype: m.dtype)
    let mask = try m.maximum(keepsNothing) * mp.maximum(takesNothing)
    return (images, targets, mask)
  }
}

/// The training-time pipeline on batch tensors: flips, affine, noise, then mixup/CutMix.
/// Parameters are drawn first (all of them, in a fixed order), then applied, so the random
/// stream does not depend on which transforms fire.
public struct Augmenter {
  public let options: AugmentOptions
  public init(_ options: AugmentOptions) { self.options = options }

  public func callAsFunction(_ b: Batch, _ r: AugmentRandom) throws -> Batch {
    let s = b.images.shape
    precondition(s.count == 4, "images must be [B,C,H,W]")
    let n = s[0]
    let hflip = Flip(.horizontal, probability: options.horizontalFlip)
    let vflip = Flip(.vertical, probability: options.verticalFlip)
    let affine = RandomAffine(probability: options.affine, degrees: options.rotationDegrees,
                              scaleRange: options.scaleRange, translate: options.translateFraction)
    let noise = GaussianNoise(probability: options.noise, std: options.noiseStd)
    let mix = Mix(probability: options.mix, cutmixShare: options.cutmixShare,
                  mixupAlpha: options.mixupAlpha, cutmixAlpha: options.cutmixAlpha)
    let ph = try hflip.draw(batch: n, r), pv = try vflip.draw(batch: n, r)
    let pa = try affine.draw(batch: n, r), pn = try noise.draw(batch: n, r)
    let pm = try mix.draw(batch: n, height: s[2], width: s[3], r)

    var x = try hflip.apply(ph, to: b.images)
    x = try vflip.apply(pv, to: x)
    x = try affine.apply(pa, to: x)
    x = try noise.apply(pn, to: x, r)
    let mixed = try mix.apply(pm, images: x, targets: b.targets, mask: b.mask)
    return Batch(index: b.index, ids: b.ids, images: mixed.images, targets: mixed.targets, mask: mixed.mask, skipped: b.skipped)
  }
}
