import Foundation
import Models
import Torch

/// What the loop trains: a module that maps images [B,C,H,W] to logits [B,K].
/// ConvNeXt (Models layer) conforms at merge; tests use small conv nets.
public protocol Classifier: Module {
  func callAsFunction(_ x: Tensor) throws -> Tensor
  /// The generator the model's own randomness (drop path, dropout) draws from, if it has one;
  /// a checkpoint keeps its state so a resumed run draws what an uninterrupted one would.
  var generator: Generator? { get }
}

extension Classifier {
  public var generator: Generator? { nil }
}

/// One batch as the loader hands it over. `mask` is 1 where a finding's label counts in the
/// loss and 0 where it is ignored (U-ignore); `targets` hold 0/1 (or soft values after mixing).
public struct Batch {
  /// Image ids (file names or dicom ids), named in errors such as a non-finite loss.
  public var ids: [String]
  /// [B, C, H, W] float32.
  public var images: Tensor
  /// [B, K] float32.
  public var targets: Tensor
  /// [B, K] float32, 1 = counted, 0 = ignored.
  public var mask: Tensor
  /// Images the loader dropped while building this batch (unreadable, corrupt), one line each
  /// ("id: why"); the loop lists them in `skipped.txt` and keeps going.
  public var skipped: [String]

  public init(ids: [String], images: Tensor, targets: Tensor, mask: Tensor, skipped: [String] = []) {
    self.ids = ids; self.images = images; self.targets = targets; self.mask = mask; self.skipped = skipped
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

/// ConvNeXt (Models layer) is what the loop trains.
extension ConvNeXt: Classifier {}
