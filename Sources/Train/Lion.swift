import Torch

/// The Lion optimizer exactly as lion-pytorch 0.2.5 (its `foreach` variant; the same update
/// as the default one, FORMATS.md):
/// ```
/// p <- p * (1 - lr * wd)                        # decoupled weight decay, only when wd > 0
/// u <- sign(lerp(m, g, 1 - beta1))              # = sign(beta1 m + (1 - beta1) g)
/// p <- p - lr * u
/// m <- lerp(m, g, 1 - beta2)                    # m starts at zero
/// ```
/// Parameters are grouped by name; with `noDecayForNormsAndBiases` every 1-D tensor (norm
/// weights and biases, biases of convs and linears, layer-scale `gamma`) and every name ending
/// in `.gamma` gets weight decay 0. State (`exp_avg`) is kept by parameter name, so it saves
/// and restores independently of object identity.
public final class Lion {
  public struct Group {
    public let names: [String]
    public let params: [Parameter]
    public let weightDecay: Double
  }
  public var lr: Double
  public let beta1: Double, beta2: Double
  public let groups: [Group]
  /// `exp_avg` per parameter name; created at a parameter's first step, as in lion-pytorch.
  public private(set) var expAvg: [String: Tensor] = [:]

  public init(_ named: [(String, Parameter)], lr: Double, betas: (Double, Double) = (0.9, 0.99),
              weightDecay: Double = 0, noDecayForNormsAndBiases: Bool = false) throws {
    guard lr > 0 else { throw TrainError("lion: lr is \(lr); it must be > 0") }
    guard (0...1).contains(betas.0), (0...1).contains(betas.1) else {
      throw TrainError("lion: betas are (\(betas.0), \(betas.1)); each must lie in [0, 1]")
    }
    self.lr = lr; beta1 = betas.0; beta2 = betas.1
    var decay: [(String, Parameter)] = [], noDecay: [(String, Parameter)] = []
    for (name, p) in named {
      if noDecayForNormsAndBiases && Lion.isNoDecay(name: name, shape: p.value.shape) { noDecay.append((name, p)) }
      else { decay.append((name, p)) }
    }
    var gs = [Group(names: decay.map { $0.0 }, params: decay.map { $0.1 }, weightDecay: weightDecay)]
    if !noDecay.isEmpty { gs.append(Group(names: noDecay.map { $0.0 }, params: noDecay.map { $0.1 }, weightDecay: 0)) }
    groups = gs
  }

  /// Norm weights, biases and layer scales: 1-D tensors and names ending in `.gamma`.
  public static func isNoDecay(name: String, shape: [Int]) -> Bool {
    shape.count <= 1 || name.hasSuffix(".gamma") || name == "gamma"
  }

  /// One update of every parameter that has a gradient.
  public func step() throws {
    try withNoGrad {
      for g in groups {
        var ps: [Tensor] = [], grads: [Tensor] = [], ms: [Tensor] = []
        for (name, p) in zip(g.names, g.params) {
          guard let grad = p.value.grad else { continue }
          let m: Tensor
          if let e = expAvg[name] { m = e } else {
            // zeros like the parameter: same dtype, device and memory format (channels_last)
            m = try p.value.detach().clone(); try m.zero_(); expAvg[name] = m
          }
          ps.append(p.value); grads.append(grad); ms.append(m)
        }
        guard !ps.isEmpty else { continue }
        if g.weightDecay > 0 { try Foreach.mul_(ps, 1 - lr * g.weightDecay) }
        let updates = try Foreach.clone(ms)
        try Foreach.lerp_(updates, grads, weight: 1 - beta1)
        try Foreach.sign_(updates)
        try Foreach.add_(ps, updates, alpha: -lr)
        try Foreach.lerp_(ms, grads, weight: 1 - beta2)
      }
    }
  }

  /// `exp_avg` tensors keyed `<param name>` (for the training-state file).
  public func stateDict() -> StateDict {
    var sd = StateDict()
    for g in groups { for n in g.names { if let m = expAvg[n] { sd[n] = m } } }
    return sd
  }

  /// Restores `exp_avg` by name; unknown names or wrong shapes are errors naming the key.
  public func load(_ sd: StateDict) throws {
    let shapes = Dictionary(uniqueKeysWithValues: groups.flatMap { g in zip(g.names, g.params.map { $0.value }) })
    var restored: [String: Tensor] = [:]
    for (name, t) in sd {
      guard let p = shapes[name] else { throw TrainError("optimizer state has '\(name)', which the model does not have") }
      guard p.shape == t.shape else { throw TrainError("optimizer state for '\(name)' has shape \(t.shape), the model \(p.shape)") }
      restored[name] = try t.to(p.device, dtype: p.dtype).clone()
    }
    expAvg = restored
  }
}
