import Data
import Foundation

/// The synthetic study draws from the Data layer's SplitMix64 (Steele, Lea & Flood 2014), so
/// the same seed gives the same files on every platform and Swift version; these are the
/// helpers it needs on top.
extension SplitMix64 {
  /// An independent stream for one named purpose and index (e.g. image 17 of the training
  /// set), so that items can be made in any order, or in parallel, with identical results.
  init(seed: UInt64, stream: String, index: Int = 0) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the stream name
    for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    self.init(seed: SplitMix64.mix(seed ^ SplitMix64.mix(h &+ UInt64(bitPattern: Int64(index)) &* 0x9e37_79b9_7f4a_7c15)))
  }

  /// One 64-bit seed for a named purpose and index.
  static func derive(_ seed: UInt64, _ stream: String, _ index: Int) -> UInt64 {
    var rng = SplitMix64(seed: seed, stream: stream, index: index)
    return rng.next()
  }

  static func mix(_ z0: UInt64) -> UInt64 {
    var z = z0
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1) with 53 random bits.
  mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }

  /// Uniform integer in `range` (multiply-shift; the tiny bias is irrelevant here).
  mutating func int(_ range: ClosedRange<Int>) -> Int {
    let span = UInt64(range.upperBound - range.lowerBound + 1)
    return range.lowerBound + Int(next().multipliedFullWidth(by: span).high)
  }

  mutating func chance(_ p: Double) -> Bool { uniform() < p }

  /// Standard normal (Box-Muller; one value per call keeps the stream simple).
  mutating func normal() -> Double {
    let u1 = max(uniform(), 0x1.0p-60)
    let u2 = uniform()
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }
}
