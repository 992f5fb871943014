import Foundation

/// A layer or model whose parameters are named by PyTorch `state_dict` keys (dotted paths).
public protocol Module: AnyObject {
  /// Every parameter of this module and its children, in definition order, with `prefix`
  /// prepended to the keys.
  func namedParameters(prefix: String) -> [(String, Parameter)]
  /// Switches training-only behaviour (dropout, drop path) on or off, recursively.
  func setTraining(_ on: Bool)
}

extension Module {
  public func namedParameters() -> [(String, Parameter)] { namedParameters(prefix: "") }
  public var parameters: [Parameter] { namedParameters().map { $0.1 } }
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

  /// Clears every parameter's gradient.
  public func zeroGrad() throws { for p in parameters { try p.value.setGrad(nil) } }

  /// Moves/casts every parameter; `Parameter` boxes keep their identity, so optimizers stay valid.
  @discardableResult
  public func to(_ device: Device? = nil, dtype: DType? = nil) throws -> Self {
    try withNoGrad {
      for p in parameters { try p.replace(with: p.value.to(device, dtype: dtype)) }
    }
    return self
  }

  /// Detached views of the current values, by key.
  public func stateDict() throws -> StateDict {
    try StateDict(namedParameters().map { ($0.0, try $0.1.value.detach()) })
  }

  /// Copies values by name into this module's parameters. With `strict`, any missing,
  /// unexpected or wrongly shaped key is an error that names every such key.
  @discardableResult
  public func load(_ state: StateDict, strict: Bool = true) throws -> LoadReport {
    let own = namedParameters()
    let ownNames = Set(own.map { $0.0 })
    var report = LoadReport()
    report.unexpected = state.keys.filter { !ownNames.contains($0) }
    for (name, p) in own {
      guard let src = state[name] else { report.missing.append(name); continue }
      if src.shape != p.value.shape { report.mismatched.append((name, expected: p.value.shape, found: src.shape)) }
    }
    if strict, !report.isClean { throw TorchError(report.describe()) }
    try withNoGrad {
      for (name, p) in own {
        guard let src = state[name], src.shape == p.value.shape else { continue }
        try p.value.copy_(src)
        report.loaded += 1
      }
    }
    return report
  }
}

/// A trainable tensor slot. Layers hold weights in these so that a whole model can move to
/// another device or dtype while optimizers and EMA keep stable references.
public final class Parameter {
  public private(set) var value: Tensor
  public init(_ t: Tensor, requiresGrad: Bool = true) throws {
    if requiresGrad { try t.requiresGrad(true) }
    value = t
  }
  /// Rebinds the slot to `t` (keeping requires_grad).
  public func replace(with t: Tensor) throws {
    let detached = try t.detach()
    if value.requiresGrad { try detached.requiresGrad(true) }
    value = detached
  }
}

/// What `Module.load` found.
public struct LoadReport: CustomStringConvertible {
  public var missing: [String] = []
  public var unexpected: [String] = []
  public var mismatched: [(String, expected: [Int], found: [Int])] = []
  public var loaded = 0
  public var isClean: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }
  public func describe() -> String {
    var lines: [String] = ["state dict does not match the model:"]
    if !missing.isEmpty { lines.append("  missing keys (\(missing.count)): \(missing.joined(separator: ", "))") }
    if !unexpected.isEmpty { lines.append("  unexpected keys (\(unexpected.count)): \(unexpected.joined(separator: ", "))") }
    for (k, e, f) in mismatched { lines.append("  wrong shape for \(k): model has \(e), file has \(f)") }
    return lines.joined(separator: "\n")
  }
  public var description: String { isClean ? "loaded \(loaded) tensors" : describe() }
}

/// An ordered map from `state_dict` key to tensor.
public struct StateDict: Sequence {
  public private(set) var keys: [String] = []
  private var values: [String: Tensor] = [:]

  public init() {}
  public init(_ pairs: [(String, Tensor)]) { for (k, v) in pairs { self[k] = v } }

  public subscript(key: String) -> Tensor? {
    get { values[key] }
    set {
      if let v = newValue {
        if values.updateValue(v, forKey: key) == nil { keys.append(key) }
      } else if values.removeValue(forKey: key) != nil {
        keys.removeAll { $0 == key }
      }
    }
  }
  public var count: Int { keys.count }
  public func makeIterator() -> AnyIterator<(String, Tensor)> {
    var i = 0
    return AnyIterator {
      guard i < keys.count else { return nil }
      defer { i += 1 }
      return (keys[i], values[keys[i]]!)
    }
  }
}

