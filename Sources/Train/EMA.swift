import Torch

/// Exponential moving average of the weights (timm `ModelEmaV3`), float32, on the model's
/// device, matched by parameter name: `e <- lerp(e, w, 1 - decay_t)`.
///
/// `decay_t` follows `ModelEmaV3.get_decay(step)` with `update_after_step` 0: with
/// `t = step - 1`, it is 0 when `t <= 0` (the first update copies the weights), otherwise
/// `decay`, or with warmup `min(decay, 1 - (1 + t/gamma)^-power)`.
public final class EMA {
  public struct Warmup: Equatable, Sendable {
    public var gamma = 1.0, power = 2.0 / 3.0
    public init(gamma: Double = 1.0, power: Double = 2.0 / 3.0) { self.gamma = gamma; self.power = power }
  }
  public let decay: Double
  public let warmup: Warmup?
  public let names: [String]
  /// The averaged tensors, in `names` order.
  public private(set) var values: [Tensor]

  public init(_ model: Module, decay: Double = 0.9999, warmup: Warmup? = nil) throws {
    guard (0...1).contains(decay) else { throw TrainError("ema: decay is \(decay); it must lie in [0, 1]") }
    self.decay = decay; self.warmup = warmup
    let named = model.namedParameters()
    names = named.map { $0.0 }
    values = try withNoGrad { try named.map { try $0.1.value.detach().to(dtype: .float32).clone() } }
  }

  /// The decay used at optimizer step `step` (1-based, counted after the step).
  public func decay(atStep step: Int) -> Double {
    let t = max(0, step - 1)
    if t <= 0 { return 0 }
    guard let w = warmup else { return decay }
    return max(min(1 - Foundation.pow(1 + Double(t) / w.gamma, -w.power), decay), 0)
  }

  public func update(_ model: Module, step: Int) throws {
    let named = model.namedParameters()
    guard named.map({ $0.0 }) == names else {
      throw TrainError("ema: the model's parameter names differ from those the EMA was made from")
    }
    let weight = 1 - decay(atStep: step)
    try withNoGrad {
      let ws = named.map { $0.1.value }
      if ws.allSatisfy({ $0.dtype == .float32 }) {
        try Foreach.lerp_(values, ws, weight: weight)
      } else {
        // Mixed dtypes: add promotes in-kernel, as timm does.
        try Foreach.mul_(values, 1 - weight)
        try Foreach.add_(values, ws, alpha: weight)
      }
    }
  }

  public func stateDict() -> StateDict { StateDict(Array(zip(names, values))) }

  /// Restores every tensor by name; a missing, extra or wrongly shaped key is an error.
  public func load(_ sd: StateDict) throws {
    let own = Set(names)
    if let extra = sd.keys.first(where: { !own.contains($0) }) { throw TrainError("ema state has '\(extra)', which the model does not have") }
    values = try zip(names, values).map { name, cur in
      guard let t = sd[name] else { throw TrainError("ema state lacks '\(name)'") }
      guard t.shape == cur.shape else { throw TrainError("ema state for '\(name)' has shape \(t.shape), the model \(cur.shape)") }
      return try t.to(cur.device, dtype: .float32).clone()
    }
  }
}
import Foundation
