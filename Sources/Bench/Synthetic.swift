import Data
import Foundation
import Train
import Torch

/// An in-memory split of synthetic images for tests and benchmarks: finding k is present with
/// probability 1/2; finding 0 brightens the whole image, finding 1 adds a checkerboard, further
/// findings brighten a centred square of growing size. All three survive flips, so a small
/// net learns them under augmentation. Epoch order is a seeded permutation of (seed, epoch).
public final class SyntheticSplit: BatchSource {
  public let images: Tensor
  public let targets: Tensor
  public let mask: Tensor
  public let ids: [String]
  public let batchSize: Int
  public let shuffle: Bool
  public let seed: UInt64
  public let findings: [String]
  /// Images the "loader" reports as unreadable: left out of their batch and listed in `skipped`.
  public var unreadable: Set<String> = []

  /// `ignoreFraction` of labels get mask 0 (U-ignore).
  public init(count: Int, size: Int = 16, channels: Int = 1, findings: Int = 2, batchSize: Int,
              shuffle: Bool = true, ignoreFraction: Double = 0, signal: Double = 1, seed: UInt64) throws {
    let g = try Generator(seed: seed)
    self.findings = (0..<findings).map { "finding\($0)" }
    let y = try Tensor.rand([count, findings], generator: g).lt(0.5).to(dtype: .float32)
    var x = try Tensor.randn([count, channels, size, size], generator: g) * 0.5
    let yy = try y.toArray(Float.self)
    let checker = try Tensor((0..<(size * size)).map { Float((($0 / size) + ($0 % size)) % 2 == 0 ? 1 : -1) }, shape: [1, 1, size, size])
    for k in 0..<findings {
      let col = try Tensor((0..<count).map { yy[$0 * findings + k] }, shape: [count, 1, 1, 1])
      let pattern: Tensor
      switch k {
      case 0: pattern = try Tensor.ones([1, 1, size, size])
      case 1: pattern = checker
      default:
        let r = min(size / 2, k + 1), lo = size / 2 - r, hi = size / 2 + r
        pattern = try Tensor((0..<(size * size)).map { i -> Float in
          let (a, b) = (i / size, i % size); return (lo..<hi).contains(a) && (lo..<hi).contains(b) ? 1 : 0
        }, shape: [1, 1, size, size])
      }
      x = try x + col * pattern * signal
    }
    images = x
    targets = y
    mask = ignoreFraction > 0 ? try Tensor.rand([count, findings], generator: g).lt(ignoreFraction).logicalNot().to(dtype: .float32)
                              : try Tensor.ones([count, findings])
    ids = (0..<count).map { String(format: "img%05d", $0) }
    self.batchSize = batchSize; self.shuffle = shuffle; self.seed = seed
  }

  public var batchesPerEpoch: Int { ids.count / batchSize }

  public func order(epoch: Int) throws -> [Int] {
    guard shuffle else { return Array(ids.indices) }
    let g = try Generator(seed: seed &+ 1_000_003 &* UInt64(epoch + 1))
    return try Tensor.randperm(ids.count, generator: g).toArray(Int64.self).map(Int.init)
  }

  public func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator {
    let order = try order(epoch: epoch)
    var b = batch
    return FunctionBatchIterator { [self] in
      guard b < batchesPerEpoch else { return nil }
      defer { b += 1 }
      let all = Array(order[(b * batchSize)..<((b + 1) * batchSize)])
      let keep = all.filter { !unreadable.contains(ids[$0]) }
      let skipped = all.filter { unreadable.contains(ids[$0]) }.map { "\(ids[$0]): unreadable (synthetic)" }
      let idx = try Tensor(keep.map(Int64.init))
      return Batch(index: b, ids: keep.map { ids[$0] }, images: try images.indexSelect(dim: 0, idx),
                   targets: try targets.indexSelect(dim: 0, idx), mask: try mask.indexSelect(dim: 0, idx), skipped: skipped)
    }
  }
}
