import Common
import Foundation
import Torch

/// One training/prediction example: an image file and its labels. `mask` is 1 where the
/// finding counts in the loss and 0 where it is ignored (U-ignore, missing).
public struct LoaderItem: Sendable, Hashable {
  public let id: String
  public let path: URL
  public let targets: [Float]
  public let mask: [Float]

  public init(id: String, path: URL, targets: [Float], mask: [Float]? = nil) {
    self.id = id
    self.path = path
    self.targets = targets
    self.mask = mask ?? [Float](repeating: 1, count: targets.count)
  }
}

public struct LoaderOptions: Sendable {
  public var batchSize: Int
  public var preprocess: PreprocessSettings
  /// Decoding threads: every one of them decodes batches at the same time.
  public var workers: Int
  /// Batches decoded ahead of the consumer per worker, as PyTorch's `prefetch_factor`: at most
  /// `workers * prefetch` batches are being decoded or wait, decoded, to be consumed (memory
  /// stays bounded by that). 1 keeps every worker busy; 2 (the default) also lets a worker go
  /// on while the batch it finished waits its turn.
  public var prefetch: Int
  public var shuffle: Bool
  public var seed: UInt64
  public var dropLast: Bool
  public var badFilePolicy: BadFilePolicy
  /// Where `bad_files.csv` goes (the run folder); nil keeps the list in memory.
  public var badFilesFolder: URL?
  /// The split this loader reads (`train`, `tune`, `test`), named in `bad_files.csv`.
  public var split: String
  /// An epoch stops with an error once more than this share of the items cannot be read (a run
  /// on mostly unreadable data is not a result); 1 = never.
  public var maxBadFraction: Double
  /// Pinned host memory for faster host-to-GPU copies; nil = when CUDA is available.
  public var pinMemory: Bool?

  public init(batchSize: Int = 32, preprocess: PreprocessSettings = PreprocessSettings(), workers: Int = 4,
              prefetch: Int = 2, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false,
              badFilePolicy: BadFilePolicy = .skip, badFilesFolder: URL? = nil, split: String = "",
              maxBadFraction: Double = 1, pinMemory: Bool? = nil) {
    self.batchSize = batchSize
    self.preprocess = preprocess
    self.workers = workers
    self.prefetch = prefetch
    self.shuffle = shuffle
    self.seed = seed
    self.dropLast = dropLast
    self.badFilePolicy = badFilePolicy
    self.badFilesFolder = badFilesFolder
    self.split = split
    self.maxBadFraction = maxBadFraction
    self.pinMemory = pinMemory
  }

  /// Decoding threads as configs and command lines give them: 0 (or less) means all cores.
  public static func workers(_ requested: Int) -> Int {
    requested > 0 ? requested : ProcessInfo.processInfo.activeProcessorCount
  }

  /// The most batches decoded or being decoded ahead of the consumer: `workers * prefetch`.
  public var runAhead: Int {
    let (n, overflow) = workers.multipliedReportingOverflow(by: prefetch)
    return overflow ? Int.max : n
  }
}

/// A loader error a user can act on (a bad batch size, too many unreadable images): the one `UserError`.
public typealias LoaderError = UserError

/// Parallel, deterministic batch loader. The order of an epoch depends only on the seed
/// and the epoch number; `workers` threads decode batches at once, ahead of the consumer (at
/// most `workers * prefetch` batches), and the consumer receives them in order. It is the
/// training loop's `BatchSource`.
public final class DataLoader: BatchSource, @unchecked Sendable {
  public let items: [LoaderItem]
  /// Finding names, in the column order of the items' targets.
  public let findings: [String]
  public let options: LoaderOptions
  public let cache: PreprocessedCache?
  public let badFiles: BadFilesLog
  let findingCount: Int
  let pin: Bool
  /// Per item, the cache stamp to check (the file as it is now); nil without a cache.
  let stamps: [SourceStamp]?
  /// How an image file is read (tests replace it to simulate a machine without GDCM).
  var decode: @Sendable (URL, Int) throws -> SourceImage = { try ImageDecoder.load($0, targetLongestSide: $1) }

  public init(items: [LoaderItem], options: LoaderOptions, cache: PreprocessedCache? = nil, findings: [String]? = nil) throws {
    guard options.batchSize > 0 else { throw LoaderError("batch size must be at least 1 (got \(options.batchSize))") }
    guard options.workers > 0 else { throw LoaderError("workers must be at least 1 (got \(options.workers))") }
    guard options.prefetch > 0 else { throw LoaderError("prefetch must be at least 1 (got \(options.prefetch))") }
    let f = items.first?.targets.count ?? 0
    for it in items where it.targets.count != f || it.mask.count != f {
      throw LoaderError("item \(it.id) has \(it.targets.count) targets and \(it.mask.count) mask values; every item needs \(f)")
    }
    if let cache, cache.settings != options.preprocess {
      throw LoaderError("the cache in \(cache.folder.path) was built with \(cache.settings), the loader wants \(options.preprocess); rebuild it with `cxr cache`")
    }
    self.items = items
    self.options = options
    self.cache = cache
    self.findingCount = f
    self.findings = findings ?? (0..<f).map { "finding\($0)" }
    guard self.findings.count == f else {
      throw LoaderError("\(self.findings.count) finding names for items with \(f) targets")
    }
    badFiles = BadFilesLog(folder: options.badFilesFolder, split: options.split)
    pin = options.pinMemory ?? Runtime.cudaAvailable
    stamps = cache == nil ? nil : items.map { SourceStamp.current($0.path) }
  }

  /// The item order of an epoch: an unbiased Fisher-Yates shuffle (`SplitMix64.shuffle`, a
  /// rejection draw) from the seed's `loader-order` stream of that epoch, or 0..<n.
  public func order(epoch: Int) -> [Int] {
    var idx = Array(0..<items.count)
    guard options.shuffle else { return idx }
    var rng = SplitMix64(seed: Seeds(options.seed).seed(.loaderOrder, index: epoch))
    rng.shuffle(&idx)
    return idx
  }

  public var batchesPerEpoch: Int { batchCount() }

  public func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator { self.epoch(epoch, startingAt: batch) }

  /// Only this rank's batches are decoded.
  public func makeIterator(epoch: Int, startingAt batch: Int, shard: Shard) throws -> BatchIterator {
    self.epoch(epoch, startingAt: batch, shard: shard)
  }

  public func batchCount() -> Int {
    let n = items.count, b = options.batchSize
    return options.dropLast ? n / b : (n + b - 1) / b
  }

  /// Starts the workers for an epoch. Iterate with `next()`; dropping the iterator stops them.
  /// `startingAt` skips the first batches without decoding them (a resumed run's position).
  /// With a `shard`, only that rank's batches (the global batch indices stay).
  public func epoch(_ epoch: Int, startingAt first: Int = 0, shard: Shard = .whole) -> EpochIterator {
    let order = order(epoch: epoch)
    let b = options.batchSize
    var batches: [[Int]] = []
    for s in stride(from: 0, to: order.count, by: b) where !options.dropLast || s + b <= order.count {
      batches.append(Array(order[s..<min(s + b, order.count)]))
    }
    let mine = shard.indices(from: first, of: batches.count)
    return EpochIterator(loader: self, batches: mine.map { batches[$0] }, indices: mine)
  }

  /// One image as the model sees it (size*size floats in [-1, 1]), from the cache when fresh.
  public func modelInput(_ i: Int, into out: UnsafeMutableBufferPointer<Float>) throws {
    let item = items[i]
    if let cache, let px = cache.pixels(for: item.path, stamp: stamps?[i]) {
      for k in 0..<px.count { out[k] = Float(px[k]) / 255 * 2 - 1 }
      return
    }
    let src = try decode(item.path, options.preprocess.size)
    let pre = Preprocess.apply(src, options.preprocess)
    pre.withUnsafeBufferPointer { Preprocess.scaleToModelRange($0, into: out) }
  }

  /// Batch `index` of the epoch; images that cannot be read are left out and named in `skipped`
  /// (an all-unreadable batch is empty, not missing, so the consumer's position stays right).
  func makeBatch(_ index: Int, _ members: [Int]) throws -> Batch {
    let n = options.preprocess.size * options.preprocess.size
    var pixels = [Float](repeating: 0, count: members.count * n)
    var kept: [Int] = []
    var skipped: [String] = []
    try pixels.withUnsafeMutableBufferPointer { buf in
      for i in members {
        let slot = UnsafeMutableBufferPointer(rebasing: buf[(kept.count * n)..<((kept.count + 1) * n)])
        do {
          try modelInput(i, into: slot)
          kept.append(i)
        } catch let e as ImageError where e.kind == .dicomUnavailable {
          // Not a bad file but a missing library: skipping would silently drop every DICOM.
          throw LoaderError("\(e.path): \(e.reason)")
        } catch let e as ImageError {
          try badFiles.record(e)
          skipped.append("\(e.path): \(e.kind.rawValue): \(e.reason)")
          if options.badFilePolicy == .fail {
            throw LoaderError("\(e.description) (bad-file policy is 'fail'; use 'skip' to leave such images out: they are listed in bad_files.csv)")
          }
        }
      }
    }
    let b = kept.count
    pixels.removeLast((members.count - b) * n)
    var t = [Float](), m = [Float]()
    t.reserveCapacity(b * findingCount)
    m.reserveCapacity(b * findingCount)
    for i in kept { t += items[i].targets; m += items[i].mask }
    var images = try Tensor(pixels, shape: [b, 1, options.preprocess.size, options.preprocess.size])
    var targets = try Tensor(t, shape: [b, findingCount])
    var mask = try Tensor(m, shape: [b, findingCount])
    if pin {
      images = try images.pinMemory()
      targets = try targets.pinMemory()
      mask = try mask.pinMemory()
    }
    return Batch(index: index, ids: kept.map { items[$0].id }, images: images, targets: targets, mask: mask, skipped: skipped)
  }
}

/// Batches of one epoch, in order. `workers` threads (fewer when the epoch has fewer batches)
/// decode batches concurrently, at most `workers * prefetch` batches ahead of the consumer.
public final class EpochIterator: BatchIterator, @unchecked Sendable {
  final class Shared: @unchecked Sendable {
    let cond = NSCondition()
    var nextToStart = 0
    var consumed = 0
    var ready: [Int: Result<Batch, Error>] = [:]
    var cancelled = false
    var inFlight = 0
    /// Largest number of batches decoded or being decoded but not yet consumed.
    var peakAhead = 0
  }
  let loader: DataLoader
  let batches: [[Int]]
  let shared = Shared()
  private var threads: [Thread] = []

  /// The epoch's batch index of each of `batches` (a resumed epoch starts later; a rank of a
  /// data-parallel run takes every W-th).
  let indices: [Int]

  init(loader: DataLoader, batches: [[Int]], indices: [Int]) {
    self.loader = loader
    self.batches = batches
    self.indices = indices
    let shared = self.shared, total = batches.count, ahead = loader.options.runAhead
    for _ in 0..<min(loader.options.workers, max(1, total)) {
      let t = Thread { [loader, batches, indices] in
        while true {
          shared.cond.lock()
          while !shared.cancelled && shared.nextToStart < total && shared.nextToStart - shared.consumed >= ahead {
            shared.cond.wait()
          }
          if shared.cancelled || shared.nextToStart >= total { shared.cond.unlock(); return }
          let b = shared.nextToStart
          shared.nextToStart += 1
          shared.inFlight += 1
          shared.peakAhead = max(shared.peakAhead, shared.ready.count + shared.inFlight)
          shared.cond.unlock()
          let result = Result { try loader.makeBatch(indices[b], batches[b]) }
          shared.cond.lock()
          shared.inFlight -= 1
          shared.ready[b] = result
          shared.cond.broadcast()
          shared.cond.unlock()
        }
      }
      t.name = "cxr-loader"
      threads.append(t)
      t.start()
    }
  }

  deinit { cancel() }

  /// Stops the workers after their current batch.
  public func cancel() {
    shared.cond.lock()
    shared.cancelled = true
    shared.cond.broadcast()
    shared.cond.unlock()
  }

  /// The most batches that were ever decoded or being decoded ahead of the consumer
  /// (<= workers * prefetch).
  public var peakAhead: Int { shared.cond.lock(); defer { shared.cond.unlock() }; return shared.peakAhead }

  /// The next batch (empty when every image of it was unreadable), nil at the end of the epoch.
  /// Throws under policy `fail` when an image cannot be read, when more than `maxBadFraction` of
  /// the items could not be read, and for errors creating tensors.
  public func next() throws -> Batch? {
    shared.cond.lock()
    let c = shared.consumed
    if c >= batches.count { shared.cond.unlock(); return nil }
    while shared.ready[c] == nil { shared.cond.wait() }
    let r = shared.ready.removeValue(forKey: c)!
    shared.consumed += 1
    shared.cond.broadcast()
    shared.cond.unlock()
    switch r {
    case .success(let batch):
      // Counted per batch without copying the list; the list is read only to say what failed.
      let limit = loader.options.maxBadFraction
      if limit < 1, Double(loader.badFiles.count) > limit * Double(loader.items.count) {
        let bad = loader.badFiles.all
        cancel()
        let split = loader.options.split.isEmpty ? "" : " of the \(loader.options.split) split"
        throw LoaderError("\(bad.count) of the \(loader.items.count) images\(split) cannot be read (more than loader.max_bad_fraction = \(limit)); they are listed in bad_files.csv (e.g. \(bad[0].path): \(bad[0].reason)). Fix the data or raise loader.max_bad_fraction, then continue with --resume")
      }
      return batch
    case .failure(let e): cancel(); throw e
    }
  }
}
