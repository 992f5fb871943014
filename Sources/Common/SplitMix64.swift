import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator defined by integer arithmetic
/// only, so a seed gives the same stream on every platform and in any language. The one
/// SplitMix64 of cxr: the patient split, the loader's epoch order, `Seeds`' named streams, the
/// synthetic study and the bootstrap's stream seeding all draw from it.
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

  /// SplitMix64's output function (the finalizer) on its own.
  public static func mix(_ z0: UInt64) -> UInt64 {
    var z = z0
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  /// An independent stream for one named purpose and index (e.g. image 17 of the training set,
  /// or epoch 3's order): the name's FNV-1a hash and the index are mixed into the seed, so items
  /// can be drawn in any order, or in parallel, with identical results.
  public init(seed: UInt64, stream: String, index: Int = 0) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the stream name
    for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    self.init(seed: SplitMix64.mix(seed ^ SplitMix64.mix(h &+ UInt64(bitPattern: Int64(index)) &* 0x9e37_79b9_7f4a_7c15)))
  }

  /// One 64-bit seed for a named purpose and index.
  public static func derive(_ seed: UInt64, _ stream: String, _ index: Int = 0) -> UInt64 {
    var rng = SplitMix64(seed: seed, stream: stream, index: index)
    return rng.next()
  }

  /// Uniform in [0, 1) with 53 random bits.
  public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }

  /// Uniform integer in `range` (multiply-shift; the tiny bias is irrelevant for the synthetic study).
  public mutating func int(_ range: ClosedRange<Int>) -> Int {
    let span = UInt64(range.upperBound - range.lowerBound + 1)
    return range.lowerBound + Int(next().multipliedFullWidth(by: span).high)
  }

  public mutating func chance(_ p: Double) -> Bool { uniform() < p }

  /// Standard normal (Box-Muller; one value per call keeps the stream simple).
  public mutating func normal() -> Double {
    let u1 = max(uniform(), 0x1.0p-60)
    let u2 = uniform()
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }
}

/// Every random choice of a study from one place: named, independent streams derived from the
/// study seed, so that (unlike a shared `Generator(seed:)`) model initialization and the
/// augmentation never draw the same numbers, and a resumed run can re-create each stream.
public enum SeedStream: String, CaseIterable, Sendable {
  /// The patient-level train/tune split.
  case split
  /// The loader's order of epoch N (index: the epoch).
  case loaderOrder = "loader-order"
  /// Augmentation draws on the host (flips, affine, mixing) and on the device (pixel noise).
  case augmentHost = "augment-host"
  case augmentDevice = "augment-device"
  /// The model's initial weights (and a re-initialized head).
  case modelInit = "model-init"
  /// Drop path and head dropout while training.
  case dropPath = "drop-path"
  /// The bootstrap of the evaluation (its own `evaluate.seed`).
  case bootstrap
  /// The synthetic study (`cxr synth --seed`).
  case synth
}

public struct Seeds: Sendable, Equatable {
  public let root: UInt64
  public init(_ root: UInt64) { self.root = root }

  /// The seed of `stream` (and `index`, e.g. the epoch).
  public func seed(_ stream: SeedStream, index: Int = 0) -> UInt64 { SplitMix64.derive(root, stream.rawValue, index) }

  /// The seed of `stream` for one batch of one epoch: what a batch draws depends on where it
  /// is in the epoch only, not on which process draws it or what was drawn before.
  public func seed(_ stream: SeedStream, epoch: Int, batch: Int) -> UInt64 {
    SplitMix64.derive(seed(stream, index: epoch), "batch", batch)
  }
}
