import Foundation
import Torch

/// One batch as a loader hands it over, and as the training loop and prediction consume it.
/// `mask` is 1 where a finding's label counts in the loss and 0 where it is ignored (U-ignore);
/// `targets` hold 0/1 (or soft values after mixing). Images that could not be read are left out
/// (so the batch may be smaller than the batch size, or empty) and named in `skipped`.
public struct Batch {
  /// The batch's place in its epoch (0-based): the sampler position a checkpoint records.
  public var index: Int
  /// Image ids (file names or DICOM ids), named in errors such as a non-finite loss.
  public var ids: [String]
  /// [B, C, H, W] float32.
  public var images: Tensor
  /// [B, K] float32.
  public var targets: Tensor
  /// [B, K] float32, 1 = counted, 0 = ignored.
  public var mask: Tensor
  /// Images the loader dropped while building this batch (unreadable, corrupt), one line each
  /// ("path: why"); the loop lists them in `skipped.txt` and keeps going.
  public var skipped: [String]

  public init(index: Int, ids: [String], images: Tensor, targets: Tensor, mask: Tensor, skipped: [String] = []) {
    self.index = index; self.ids = ids; self.images = images; self.targets = targets; self.mask = mask; self.skipped = skipped
  }
}

/// Hands out batches one at a time; `nil` ends the epoch.
public protocol BatchIterator: AnyObject {
  func next() throws -> Batch?
}

/// A split's batches. The order of an epoch must be a function of (seed, epoch) only, so that
/// a resumed run that starts at `batch` sees exactly the batches an uninterrupted run would.
public protocol BatchSource: AnyObject {
  /// Batches in one epoch (after the loader's own drop-last policy).
  var batchesPerEpoch: Int { get }
  /// Finding names, in the column order of `targets`.
  var findings: [String] { get }
  /// The batches of `epoch` (0-based), starting at batch index `batch` (the sampler position).
  func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator
  /// One rank's share of `epoch`'s batches from global batch index `batch` on (data-parallel
  /// training): the batches whose index `shard.owns`, below `shard.limit(batchesPerEpoch)`.
  func makeIterator(epoch: Int, startingAt batch: Int, shard: Shard) throws -> BatchIterator
}

/// One rank's share of every epoch (`DistributedSampler` at the granularity of batches): all
/// ranks take the same seeded global order of batches; rank r of W takes batches r, r+W, r+2W,
/// ... With `dropRemainder` (training) the last `n mod W` batches of an epoch are left out, so
/// every rank steps equally often (`DistributedSampler(drop_last=True)`); without it (tuning,
/// where nothing steps) every batch is used once.
public struct Shard: Sendable, Equatable {
  public var rank: Int
  public var count: Int
  public var dropRemainder: Bool
  public init(rank: Int, count: Int, dropRemainder: Bool) {
    precondition(count >= 1 && rank >= 0 && rank < count, "rank \(rank) of \(count)")
    self.rank = rank; self.count = count; self.dropRemainder = dropRemainder
  }
  public static let whole = Shard(rank: 0, count: 1, dropRemainder: false)
  /// The global batches of an epoch of `batches` that the ranks use together.
  public func limit(_ batches: Int) -> Int { dropRemainder ? batches / count * count : batches }
  public func owns(_ index: Int) -> Bool { index % count == rank }
  /// The batch indices of this rank from `first` on.
  public func indices(from first: Int, of batches: Int) -> [Int] {
    let start = first + ((rank - first % count) % count + count) % count
    return Array(stride(from: start, to: limit(batches), by: count))
  }
}

extension BatchSource {
  /// Any source: its batches from `batch` on, with the other ranks' passed over (a source that
  /// can skip without decoding, as `DataLoader`, implements this itself).
  public func makeIterator(epoch: Int, startingAt batch: Int, shard: Shard) throws -> BatchIterator {
    if shard == .whole { return try makeIterator(epoch: epoch, startingAt: batch) }
    let inner = try makeIterator(epoch: epoch, startingAt: batch)
    let limit = shard.limit(batchesPerEpoch)
    var next = batch
    return FunctionBatchIterator {
      while let b = try inner.next() {
        let i = b.index >= 0 ? b.index : next
        next = i + 1
        if i >= limit { return nil }
        if shard.owns(i) { return b }
      }
      return nil
    }
  }
}

/// A batch iterator over an array (synthetic data, tests, small tuning sets held in memory).
public final class ArrayBatchIterator: BatchIterator {
  private var batches: ArraySlice<Batch>
  public init(_ batches: ArraySlice<Batch>) { self.batches = batches }
  public func next() throws -> Batch? { batches.popFirst() }
}

/// A batch iterator over a closure (lazy sources).
public final class FunctionBatchIterator: BatchIterator {
  private let body: () throws -> Batch?
  public init(_ body: @escaping () throws -> Batch?) { self.body = body }
  public func next() throws -> Batch? { try body() }
}
