import Common
import Data
import Foundation
import Torch

/// One rank of a data-parallel training (PyTorch DDP's semantics over c10d):
/// - rank 0's initial weights are broadcast to every rank;
/// - each rank trains on its `Shard` of every epoch's seeded global batch order;
/// - the gradients of the last micro-step of each optimizer step are averaged over the ranks
///   in buckets by DDP's own Reducer while backward runs (`no_sync` before);
/// - Lion, EMA and the schedule then step identically everywhere, checked every
///   `checkEverySteps` steps by a checksum of the weights;
/// - the tuning split is evaluated in shards and gathered in batch order, so its metrics are
///   the ones one process computes;
/// - rank 0 alone writes checkpoints, `metrics.jsonl`, `config.yaml` and prints progress.
/// N ranks with micro-batch B and accumulation A give the training of one process with
/// micro-batch B and accumulation N*A (same samples, same augmentation draws per batch, same
/// steps), up to the order of the floating-point sums of the all-reduce.
public final class DataParallel {
  public let group: ProcessGroup
  public let bucketBytes: Int
  public let checkEverySteps: Int
  /// The rank's index on its node (its GPU: cuda:localRank).
  public let localRank: Int?
  var reducer: GradientReducer?

  public init(group: ProcessGroup, localRank: Int? = nil, bucketBytes: Int = 25 << 20, checkEverySteps: Int = 100) {
    self.group = group; self.localRank = localRank; self.bucketBytes = bucketBytes; self.checkEverySteps = max(1, checkEverySteps)
  }

  public var rank: Int { group.rank }
  public var worldSize: Int { group.worldSize }
  public var isLeader: Bool { group.rank == 0 }
  public func shard(dropRemainder: Bool) -> Shard { Shard(rank: rank, count: worldSize, dropRemainder: dropRemainder) }

  /// Every rank takes rank 0's tensors (by dtype and device, one buffer each).
  func broadcast(_ tensors: [Tensor]) throws {
    var groups: [String: [Tensor]] = [:], order: [String] = []
    for t in tensors {
      let k = "\(t.dtype)@\(t.device)"
      if groups[k] == nil { order.append(k) }
      groups[k, default: []].append(t)
    }
    try withNoGrad { for k in order { try group.broadcast(groups[k]!, root: 0).wait() } }
  }

  /// Elementwise sums of a few numbers over the ranks (flags, losses, counts).
  func sum(_ values: [Double]) throws -> [Double] {
    let t = try Tensor(values, shape: [values.count])
    try group.allReduce([t]).wait()
    return try t.toArray(Double.self)
  }

  /// Every rank's `values` (all of the same length), rank by rank.
  func gather(_ values: [Double]) throws -> [[Double]] {
    let t = try Tensor(values, shape: [values.count])
    let out = try Tensor.zeros([worldSize * values.count], dtype: .float64)
    try group.allGather(t, into: out).wait()
    let all = try out.toArray(Double.self)
    return (0..<worldSize).map { Array(all[($0 * values.count)..<(($0 + 1) * values.count)]) }
  }

  /// Every rank's list of numbers, whatever its length.
  func gatherRagged(_ values: [Double]) throws -> [[Double]] {
    let lengths = try gather([Double(values.count)]).map { Int($0[0]) }
    let width = max(1, lengths.max() ?? 1)
    let rows = try gather(values + [Double](repeating: 0, count: width - values.count))
    return zip(rows, lengths).map { Array($0.0.prefix($0.1)) }
  }

  /// Stops every rank before the first step when the ranks were not started alike: the
  /// fingerprint (cxr's build, the resolved configuration, the loop's options, the data's
  /// shape) of each is compared with rank 0's.
  func checkSameStart(_ fingerprint: String) throws {
    let digest = SHA256.digest(Array(fingerprint.utf8))
    let mine = digest.map(Double.init)
    let all = try gather(mine)
    let differ = all.enumerated().filter { $0.element != all[0] }.map(\.offset)
    guard differ.isEmpty else {
      throw TrainError("rank(s) \(differ.map(String.init).joined(separator: ", ")) of \(worldSize) were started with another cxr build, configuration or data than rank 0 (their fingerprints differ); start every rank with the same cxr binary, config file and --set values")
    }
  }

  /// The weights' checksum (sum and sum of squares, in float64) compared across ranks.
  func checkInStep(_ parameters: [Tensor], step: Int) throws {
    var s = 0.0, q = 0.0
    try withNoGrad {
      for p in parameters {
        let d = try p.to(dtype: .float64)
        s += try d.sum().item(); q += try (d * d).sum().item()
      }
    }
    let all = try gather([s, q])
    if let r = all.firstIndex(where: { $0 != all[0] }) {
      throw TrainError("the weights of rank \(r) drifted from rank 0's at step \(step) (checksum \(all[r][0]) vs \(all[0][0])): the ranks no longer train the same model (a non-deterministic kernel, or different data or code); the last checkpoint is still good")
    }
  }

  /// What a rank says when a collective failed: its own error, then which ranks did not
  /// report (dead, killed, or stuck) with their host and process id as they registered them.
  func explain(_ error: Error, during what: String) -> TrainError {
    let me = "rank \(rank)"
    try? group.set("failed/\(rank)", "\(error)")
    var silent: [String] = []
    let deadline = Date().addingTimeInterval(3)
    var pending = Set((0..<worldSize).filter { $0 != rank })
    while !pending.isEmpty && Date() < deadline {
      for r in pending where (try? group.has("failed/\(r)")) == true { pending.remove(r) }
      if !pending.isEmpty { usleep(100_000) }
    }
    for r in pending.sorted() {
      let who = (try? group.get("rank/\(r)", timeout: 0.5)) ?? "unknown host"
      silent.append("rank \(r) (\(who))")
    }
    let storeGone = (try? group.has("rank/0")) == nil
    var msg = "\(me): \(what) failed: \(error)"
    if storeGone {
      msg += "; rank 0 (which holds the rendezvous) is gone"
    } else if !silent.isEmpty {
      msg += "; no answer from \(silent.joined(separator: ", ")): it died or stopped responding"
    }
    return TrainError(msg + ". Every rank stops; continue from the last checkpoint with --resume (any number of processes)")
  }

  /// Runs a collective step; a failure becomes an error naming the ranks that went silent.
  func guarded<R>(_ what: String, _ body: () throws -> R) throws -> R {
    do { return try body() } catch let e as TorchError { throw explain(e, during: what) }
  }
}

/// The tuning split's raw material on one rank: per batch, its index, summed loss and counted
/// labels, and per image the scores, targets and mask of each finding.
struct TuningShard {
  var batches: [(index: Int, lossSum: Double, counted: Double, p: [Float], t: [Float], m: [Float], n: Int)] = []

  var flattened: [Double] {
    var out: [Double] = []
    for b in batches {
      out += [Double(b.index), b.lossSum, b.counted, Double(b.n), Double(b.p.count)]
      out += b.p.map(Double.init); out += b.t.map(Double.init); out += b.m.map(Double.init)
    }
    return out
  }

  static func unflatten(_ v: [Double]) -> TuningShard {
    var s = TuningShard(), i = 0
    while i < v.count {
      let index = Int(v[i]), loss = v[i + 1], counted = v[i + 2], n = Int(v[i + 3]), k = Int(v[i + 4])
      i += 5
      let p = v[i..<(i + k)].map { Float($0) }; i += k
      let t = v[i..<(i + k)].map { Float($0) }; i += k
      let m = v[i..<(i + k)].map { Float($0) }; i += k
      s.batches.append((index, loss, counted, p, t, m, n))
    }
    return s
  }
}
