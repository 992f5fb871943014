import Foundation
import Torch

/// Grad-CAM (Selvaraju et al. 2017) on the last ConvNeXt stage (`stages.3`), as
/// pytorch-grad-cam's `GradCAM` with `ClassifierOutputTarget(k)` computes it:
///
///     A      = model.features(x)                       [B, C, h, w]  (stages.3's output)
///     z      = model.head(A)[:, k]                     the logit of finding k (not the sigmoid)
///     w_c    = mean_{i,j} dz/dA_{c,i,j}                one weight per channel
///     cam    = relu(sum_c w_c * A_c)                   [B, h, w]
///     up     = bilinear(cam, to H x W, align_corners=False)
///     norm   = (up - min up) / (max up - min up), or 0 everywhere when max == min
///
/// The model runs in eval mode (no dropout, no drop path) and in the weights' dtype: on CUDA there
/// is no autocast for this pass (cxr predicts under bf16 autocast there), so the backward and the
/// map are float32; the probabilities it reports are those of that float32 pass.
///
/// Gradients go to `A` alone: the features are computed without recording a graph and `A` is
/// made a leaf that requires grad, and the head's parameters are switched to no-grad for the
/// backward (and back after), so no parameter's `.grad` is created or changed and the weights
/// are never touched. The model's training flag is restored afterwards.
public struct GradCAM {
  /// The layer the maps are taken at, in timm's names.
  public static let layer = "stages.3"

  /// One map of one image for one finding.
  public struct Map: Equatable, Sendable {
    /// Index of the finding (the model's output).
    public var finding: Int
    public var logit: Double
    public var probability: Double
    /// relu(sum_c w_c A_c) at the feature map's size, row-major [height, width].
    public var raw: [Float]
    public var height: Int
    public var width: Int
    /// `raw` upsampled bilinearly to the input size, row-major [inputHeight, inputWidth].
    public var upsampled: [Float]
    public var inputHeight: Int
    public var inputWidth: Int
    /// `upsampled` scaled to [0, 1]; all 0 when the map is flat.
    public var normalized: [Float]
    /// Channel weights w_c (the spatial mean of the gradient).
    public var weights: [Float]

    /// Where the upsampled map is largest, in input pixels; nil when it is flat. Ties go to the
    /// pixel nearest the input's centre: bilinear upsampling (align_corners=False) holds a border
    /// cell's value flat from the cell's centre out to the image edge, and that plateau's inner
    /// corner is the cell's centre, where an interior cell's maximum lies too.
    public var peak: (x: Int, y: Int)? {
      guard let hi = upsampled.max(), let lo = upsampled.min(), hi > lo else { return nil }
      let cx = Double(inputWidth - 1) / 2, cy = Double(inputHeight - 1) / 2
      var best = 0, bestDistance = Double.infinity
      for (i, v) in upsampled.enumerated() where v == hi {
        let dx = Double(i % inputWidth) - cx, dy = Double(i / inputWidth) - cy
        if dx * dx + dy * dy < bestDistance { best = i; bestDistance = dx * dx + dy * dy }
      }
      return (best % inputWidth, best / inputWidth)
    }

    public static func == (a: Map, b: Map) -> Bool {
      a.finding == b.finding && a.logit == b.logit && a.raw == b.raw && a.upsampled == b.upsampled && a.weights == b.weights
    }
  }

  public let model: ConvNeXt

  public init(model: ConvNeXt) { self.model = model }

  /// Maps of every image of `batch` [B, C or 1, H, W] (preprocessed, on any device) for each
  /// finding index in `findings` (default: every output). Result [image][finding].
  public func maps(_ batch: Tensor, findings: [Int]? = nil) throws -> [[Map]] {
    let shape = batch.shape
    let want = model.config.inChannels
    guard shape.count == 4, shape[1] == want || (shape[1] == 1 && want == 3) else {
      throw ModelError("Grad-CAM takes a batch of images [batch, \(want), height, width]; got \(shape)")
    }
    guard shape[2] >= 32, shape[3] >= 32 else {
      throw ModelError("images must be at least 32x32 pixels (ConvNeXt downsamples by 32), got \(shape[2])x\(shape[3])")
    }
    let ks = findings ?? Array(0..<model.config.numClasses)
    for k in ks where !(0..<model.config.numClasses).contains(k) {
      throw ModelError("finding index \(k) is outside the model's \(model.config.numClasses) outputs")
    }
    let weight = model.stemConv.weight.value
    let device = weight.device
    var x = try batch.to(device, dtype: batch.dtype == weight.dtype ? nil : weight.dtype)
    if shape[1] != want { x = try x.expand([shape[0], want, shape[2], shape[3]]) }
    if weight.isContiguous(.channelsLast) && !weight.isContiguous() { x = try x.contiguous(.channelsLast) }

    let wasTraining = model.isTraining
    model.setTraining(false)
    defer { model.setTraining(wasTraining) }
    // Autocast off explicitly: a caller inside an autocast scope must not get a bf16 backward.
    return try withAutocast(device, enabled: false) {
      let features = try withNoGrad { try model.features(x) }.detach()
      let head = [model.headNorm.weight, model.headNorm.bias, model.headFC.weight, model.headFC.bias]
      let had = head.map { $0.value.requiresGrad }
      for p in head { _ = try p.value.requiresGrad(false) }
      defer { for (p, on) in zip(head, had) { _ = try? p.value.requiresGrad(on) } }

      let (b, c, h, w) = (shape[0], features.shape[1], features.shape[2], features.shape[3])
      var out = [[Map]](repeating: [], count: b)
      for k in ks {
        // A fresh leaf per finding, so one finding's gradient never adds to another's.
        let a = try features.detach().requiresGrad(true)
        let (logits, cam, chw) = try withGrad { () -> (Tensor, Tensor, Tensor) in
          let logits = try model.head(a)
          try logits.select(dim: 1, k).sum().backward()
          guard let g = a.grad else { throw ModelError("Grad-CAM: no gradient reached the features") }
          return try withNoGrad {
            let weights = try g.mean(dims: [2, 3], keepDim: true)                    // [B, C, 1, 1]
            let cam = try (weights * a.detach()).sum(dims: [1], keepDim: true).relu() // [B, 1, h, w]
            return (try logits.detach(), cam, weights)
          }
        }
        let up = try withNoGrad { try F.interpolate(cam, size: (shape[2], shape[3]), mode: .bilinear, alignCorners: false) }
        let z = try logits.to(.cpu, dtype: .float64).toArray(Double.self)
        let rawAll = try cam.to(.cpu, dtype: .float32).contiguous().toArray(Float.self)
        let upAll = try up.to(.cpu, dtype: .float32).contiguous().toArray(Float.self)
        let wAll = try chw.to(.cpu, dtype: .float32).contiguous().toArray(Float.self)
        let n = shape[2] * shape[3], nc = model.config.numClasses
        for i in 0..<b {
          let upsampled = Array(upAll[(i * n)..<(i * n + n)])
          let logit = z[i * nc + k]
          out[i].append(Map(finding: k, logit: logit, probability: 1 / (1 + Foundation.exp(-logit)),
                            raw: Array(rawAll[(i * h * w)..<((i + 1) * h * w)]), height: h, width: w,
                            upsampled: upsampled, inputHeight: shape[2], inputWidth: shape[3],
                            normalized: Self.normalize(upsampled), weights: Array(wAll[(i * c)..<((i + 1) * c)])))
        }
      }
      return out
    }
  }

  /// (v - min) / (max - min), or zeros when the map is flat (max == min).
  public static func normalize(_ v: [Float]) -> [Float] {
    guard let lo = v.min(), let hi = v.max(), hi > lo else { return [Float](repeating: 0, count: v.count) }
    let span = hi - lo
    return v.map { ($0 - lo) / span }
  }
}
