import CTorch
import Foundation

/// A c10d process group (torch.distributed's engine): the ranks of one training, met at a
/// TCPStore rendezvous; Gloo for CPU tensors, NCCL for CUDA tensors. Every collective is
/// asynchronous (`Work`) and fails, never hangs, when a peer is gone: within `timeout` seconds.
public final class ProcessGroup: @unchecked Sendable {
  public enum Backend: String, Sendable { case gloo, nccl }
  public enum ReduceOp: Sendable { case sum, max, min }

  let handle: cxt_dist_group
  public let rank: Int
  public let worldSize: Int
  public let backend: Backend
  /// Seconds a collective, the rendezvous or a store read may wait for the other ranks.
  public let timeout: Double

  /// Whether this libcxt can make a group with `backend` (Gloo needs the shim built with Gloo's
  /// headers; NCCL a CUDA shim over a libtorch with NCCL).
  public static func isAvailable(_ backend: Backend) -> Bool {
    var out: Int32 = 0
    guard cxt_dist_available(backend.c, &out) == 0 else { return false }
    return out != 0
  }

  /// Why this libcxt cannot make a Gloo group (nil when it can): what `cxr info` and a
  /// data-parallel launch say.
  public static var glooUnavailableReason: String? {
    guard !isAvailable(.gloo) else { return nil }
    return Runtime.version.hasPrefix("1.")
      ? "libtorch \(Runtime.version): the shim's c10d code needs libtorch 2; use the pinned wheel for data-parallel training"
      : "libcxt.so was built without Gloo's headers: apt-get install libgloo-dev, then make shim"
  }

  /// Joins (or, with `isServer`, hosts and waits for) the rendezvous at `host:port`, then builds
  /// the group. `glooInterface` picks Gloo's network interface (as GLOO_SOCKET_IFNAME does).
  public init(host: String, port: Int, isServer: Bool, worldSize: Int, rank: Int, backend: Backend = .gloo,
              glooInterface: String? = nil, storePrefix: String? = nil, timeout: Double) throws {
    var h: cxt_dist_group?
    try check(cxt_dist_init(host, Int32(port), isServer ? 1 : 0, Int32(worldSize), Int32(rank), backend.c,
                            glooInterface, storePrefix, timeout, &h))
    handle = h!
    self.rank = rank; self.worldSize = worldSize; self.backend = backend; self.timeout = timeout
  }

  deinit { _ = cxt_dist_free(handle) }

  /// In place over all ranks; the tensors (one dtype and device) travel as one buffer.
  public func allReduce(_ tensors: [Tensor], op: ReduceOp = .sum) throws -> Work {
    try Work { out in tensors.withHandles { cxt_dist_allreduce(handle, $0, $1, op.c, out) } }
  }

  /// In place: every rank's tensors take `root`'s values.
  public func broadcast(_ tensors: [Tensor], root: Int = 0) throws -> Work {
    try Work { out in tensors.withHandles { cxt_dist_broadcast(handle, $0, $1, Int32(root), out) } }
  }

  /// `output` (world size x numel(input) elements) receives every rank's `input`, rank order.
  public func allGather(_ input: Tensor, into output: Tensor) throws -> Work {
    try Work { cxt_dist_allgather(handle, input.handle, output.handle, $0) }
  }

  public func barrier() throws -> Work { try Work { cxt_dist_barrier(handle, $0) } }

  // MARK: the rendezvous store

  public func set(_ key: String, _ value: String) throws {
    let bytes = Array(value.utf8)
    try check(cxt_dist_store_set(handle, key, bytes, bytes.count))
  }

  /// Waits up to `timeout` seconds (the group's by default) for `key`.
  public func get(_ key: String, timeout: Double? = nil) throws -> String {
    var cap = 4096
    while true {
      var buf = [UInt8](repeating: 0, count: cap), len = 0
      try check(cxt_dist_store_get(handle, key, timeout ?? self.timeout, &buf, cap, &len))
      if len <= cap { return String(decoding: buf[0..<len], as: UTF8.self) }
      cap = len
    }
  }

  public func has(_ key: String) throws -> Bool {
    var out: Int32 = 0
    try check(cxt_dist_store_check(handle, key, &out))
    return out != 0
  }
}

/// One collective in flight; `wait` finishes it (and copies coalesced results back).
public final class Work {
  let handle: cxt_dist_work
  init(_ body: (UnsafeMutablePointer<cxt_dist_work?>) -> Int32) throws {
    var h: cxt_dist_work?
    try check(body(&h))
    handle = h!
  }
  deinit { _ = cxt_dist_work_free(handle) }
  /// Fails with the peer's error, or when nothing arrived within `timeout` seconds (the group's
  /// timeout when nil).
  public func wait(timeout: Double? = nil) throws { try check(cxt_dist_work_wait(handle, timeout ?? 0)) }
}

/// DistributedDataParallel's gradient engine (c10d's Reducer) over a model's parameters: the
/// gradients are averaged over the ranks in buckets (the first 1 MiB, the others `bucketBytes`),
/// each bucket all-reduced by autograd hooks while backward is still running.
public final class GradientReducer {
  let handle: cxt_dist_reducer
  /// Checks that every rank has the same parameter shapes (c10d's own check), then buckets them.
  public init(group: ProcessGroup, parameters: [Tensor], bucketBytes: Int = 25 << 20) throws {
    var h: cxt_dist_reducer?
    try check(parameters.withHandles { cxt_dist_reducer_new(group.handle, $0, $1, Int64(bucketBytes), &h) })
    handle = h!
  }
  deinit { _ = cxt_dist_reducer_free(handle) }
  /// Before each backward: `sync` false is DDP's `no_sync` (accumulation micro-steps: the
  /// gradients stay local); true makes this backward average them over the ranks.
  public func prepare(sync: Bool) throws { try check(cxt_dist_reducer_prepare(handle, sync ? 1 : 0)) }
}

extension ProcessGroup.Backend {
  var c: cxt_dist_backend { self == .gloo ? CXT_DIST_GLOO : CXT_DIST_NCCL }
}

extension ProcessGroup.ReduceOp {
  var c: cxt_dist_op {
    switch self {
    case .sum: return CXT_DIST_SUM
    case .max: return CXT_DIST_MAX
    case .min: return CXT_DIST_MIN
    }
  }
}

extension Array where Element == Tensor {
  /// The handles as a C list (pointer, count) for the duration of `body`.
  func withHandles<R>(_ body: (UnsafePointer<cxt_tensor?>?, Int32) -> R) -> R {
    let hs: [cxt_tensor?] = map { $0.handle }
    return hs.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
  }
}
