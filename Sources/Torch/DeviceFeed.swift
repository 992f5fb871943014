import Foundation

/// Moves host batches (a list of CPU tensors: images, targets, ...) to the training device.
///
/// On CUDA, each batch is copied into pinned staging buffers (`depth` sets, reused round-robin:
/// double buffering by default), then from there to the device with `nonBlocking` copies queued
/// on a side copy stream. The consumer stream (the one current when `send` is called, where the
/// training step runs) waits for the copy stream before it touches the batch, and the device
/// tensors are recorded on the consumer stream so the caching allocator does not hand their
/// memory out again while the step still reads them. The copy of batch N+1 thus overlaps the
/// step on batch N. On CPU, `send` is a pass-through: the same tensors, in the same order.
///
/// Not thread-safe: one feed per consumer.
public final class DeviceFeed {
  public let device: Device
  /// Sets of staging buffers (2 = double buffering).
  public let depth: Int
  private var ring: StagingRing
  private let copyStream: Stream?
  /// Slots whose host-to-device copy may still be in flight.
  private var inFlight: Set<Int> = []

  public init(device: Device, depth: Int = 2) throws {
    guard depth >= 1 else { throw TorchError("DeviceFeed: depth must be at least 1, got \(depth)") }
    self.device = device
    self.depth = depth
    switch device {
    case .cpu:
      copyStream = nil
      ring = StagingRing(depth: depth) { shape, dtype in try Tensor.empty(shape, dtype: dtype) }
    case .cuda(let index):
      try DeviceFeed.checkCUDA(device: index)
      copyStream = try Stream.new(device: index)
      ring = StagingRing(depth: depth) { shape, dtype in try Tensor.empty(shape, dtype: dtype, pinned: true) }
    }
  }

  /// Why `cuda:index` cannot be used here, as an error a user can act on; nil when it can.
  static func cudaProblem(device index: Int, shimHasCUDA: Bool, cudaAvailable: Bool, deviceCount: Int) -> String? {
    if !shimHasCUDA {
      return "DeviceFeed: device cuda:\(index) needs libcxt.so built against a CUDA libtorch, and this one is "
        + "CPU-only: rebuild it with TORCH_DIR set to a CUDA PyTorch's torch folder (scripts/gpu-check.sh does), "
        + "or use device cpu"
    }
    if !cudaAvailable {
      return "DeviceFeed: device cuda:\(index) requested but CUDA is not available (no GPU visible, or no driver): "
        + "check nvidia-smi and CUDA_VISIBLE_DEVICES, or use device cpu"
    }
    if index >= deviceCount {
      return "DeviceFeed: device cuda:\(index) does not exist: this machine has \(deviceCount) CUDA device(s), "
        + "cuda:0 to cuda:\(deviceCount - 1)"
    }
    return nil
  }

  static func checkCUDA(device index: Int) throws {
    if let problem = cudaProblem(device: index, shimHasCUDA: Runtime.shimHasCUDA,
                                 cudaAvailable: Runtime.cudaAvailable, deviceCount: Runtime.cudaDeviceCount) {
      throw TorchError(problem)
    }
  }

  /// The batch on the device, ready for work queued on the current stream. Takes host tensors.
  public func send(_ batch: [Tensor]) throws -> [Tensor] {
    for (i, t) in batch.enumerated() where t.device != .cpu {
      throw TorchError("DeviceFeed.send: tensor \(i) of the batch is on \(t.device); send takes host (CPU) tensors")
    }
    guard case .cuda(let index) = device, let copyStream else { return batch }

    let consumer = try Stream.current(device: index)
    let staged = try ring.stage(batch) { slot in
      // The slot's previous copy must be done before its buffers are overwritten. The copy
      // stream holds only copies (a few ms per batch) and never waits for the step, so this
      // waits for little.
      if inFlight.contains(slot) {
        try copyStream.synchronize()
        inFlight.removeAll()
      }
    }
    let onDevice = try copyStream.run(device: index) {
      try staged.tensors.map { try $0.to(device, nonBlocking: true) }
    }
    inFlight.insert(staged.slot)
    try consumer.wait(for: copyStream)
    for t in onDevice { try consumer.record(t) }
    return onDevice
  }

  /// Staging buffers allocated so far (bounded by `depth` x tensors per batch, plus a
  /// reallocation when a batch outgrows its slot).
  public var stagingAllocations: Int { ring.allocations }
}

/// `depth` sets of reusable host buffers handed out round-robin. A batch is copied into the
/// next slot's buffers; a buffer is reused when dtype and trailing dimensions match and its
/// first dimension is at least the batch's (a shorter last batch gets a view of its front).
struct StagingRing {
  let depth: Int
  private(set) var allocations = 0
  private var slots: [[Tensor]]
  private var next = 0
  private let allocate: ([Int], DType) throws -> Tensor

  init(depth: Int, allocate: @escaping ([Int], DType) throws -> Tensor) {
    self.depth = depth
    self.allocate = allocate
    slots = Array(repeating: [], count: depth)
  }

  /// Copies `batch` into the next slot; `beforeReuse(slot)` runs before the slot is written.
  /// Returns the slot and views of its buffers with exactly the batch's shapes.
  mutating func stage(_ batch: [Tensor], beforeReuse: (Int) throws -> Void) throws -> (slot: Int, tensors: [Tensor]) {
    let slot = next
    next = (next + 1) % depth
    try beforeReuse(slot)
    var buffers = slots[slot]
    var views: [Tensor] = []
    views.reserveCapacity(batch.count)
    for (i, t) in batch.enumerated() {
      let shape = t.shape, dtype = t.dtype
      if i >= buffers.count || !StagingRing.fits(buffers[i], shape: shape, dtype: dtype) {
        let buffer = try allocate(shape, dtype)
        allocations += 1
        if i < buffers.count { buffers[i] = buffer } else { buffers.append(buffer) }
      }
      let buffer = buffers[i]
      let view = buffer.shape == shape ? buffer : try buffer.slice(dim: 0, 0, shape[0])
      try view.copy_(t)
      views.append(view)
    }
    slots[slot] = buffers
    return (slot, views)
  }

  static func fits(_ buffer: Tensor, shape: [Int], dtype: DType) -> Bool {
    let have = buffer.shape
    guard buffer.dtype == dtype, have.count == shape.count else { return false }
    if shape.isEmpty { return true }
    return have.dropFirst() == shape.dropFirst() && have[0] >= shape[0]
  }
}
