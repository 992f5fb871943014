/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator defined by integer arithmetic
/// only, so a seed gives the same stream on every platform and in any language.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public private(set) var state: UInt64
  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in 0..<bound by rejection (no modulo bias), so the draw is fully specified.
  public mutating func below(_ bound: UInt64) -> UInt64 {
    precondition(bound > 0)
    let limit = UInt64.max - (UInt64.max % bound)
    while true {
      let x = next()
      if x < limit { return x % bound }
    }
  }

  /// Fisher-Yates, from the last element down, swapping i with below(i + 1).
  public mutating func shuffle<T>(_ a: inout [T]) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
      let j = Int(below(UInt64(i + 1)))
      a.swapAt(i, j)
    }
  }
}
