import Torch

/// Binary cross-entropy with logits per finding, masked for U-ignore.
///
/// `loss = sum(mask * bce(logits, targets; pos_weight)) / max(sum(mask), 1)`: the mean over the
/// counted entries only, so ignored labels neither add loss nor shrink it by padding the mean.
/// A batch with nothing counted gives 0 (and zero gradients).
public struct MaskedBCE {
  /// Optional [K] weight of the positive term per finding (`pos_weight` of PyTorch).
  public var posWeight: Tensor?
  public init(posWeight: Tensor? = nil) { self.posWeight = posWeight }

  public func callAsFunction(_ logits: Tensor, _ targets: Tensor, mask: Tensor) throws -> Tensor {
    guard logits.shape == targets.shape, targets.shape == mask.shape else {
      throw TrainError("loss: logits \(logits.shape), targets \(targets.shape) and mask \(mask.shape) must have one shape [B, K]")
    }
    let logits32 = logits.dtype == .float32 ? logits : try logits.to(dtype: .float32)
    let pw = try posWeight.map { $0.device == logits.device ? $0 : try $0.to(logits.device) }
    let each = try F.binaryCrossEntropyWithLogits(logits32, targets, posWeight: pw, reduction: .none)
    let counted = try mask.sum().clamp(min: 1)
    return try (each * mask).sum() / counted
  }
}
