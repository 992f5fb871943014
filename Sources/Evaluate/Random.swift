import Common

/// A small seeded generator (SplitMix64 seeding xoshiro256**), so bootstrap draws are the
/// same on every platform and thread count: each round gets its own stream from (seed, round).
public struct SeededRandom: RandomNumberGenerator {
  private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

  public init(seed: UInt64, stream: UInt64 = 0) {
    var sm = SplitMix64(seed: seed &+ stream &* 0xD1B5_4A32_D192_ED03)
    s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
  }

  @inline(__always)
  public mutating func next() -> UInt64 {
    let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
    let t = s1 << 17
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
    s2 ^= t
    s3 = (s3 << 45) | (s3 >> 19)
    return result
  }

  /// A uniform integer in 0..<bound (Lemire's multiply-shift; the tiny bias for bound << 2^64
  /// is irrelevant here and keeps the draw branch-free).
  @inline(__always)
  public mutating func index(below bound: Int) -> Int {
    Int(UInt64(bound).multipliedFullWidth(by: next()).high)
  }
}
