import CTorch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error raised by libtorch (its message, without the C++ backtrace) or by this layer.
public struct TorchError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Turns a C status into a thrown error carrying the thread-local message.
@inline(__always)
func check(_ status: Int32) throws {
  if status != 0 { throw TorchError(String(cString: cxt_last_error())) }
}

/// Calls a C function that returns one tensor through an out-parameter.
@inline(__always)
func make(_ body: (UnsafeMutablePointer<cxt_tensor?>) -> Int32) throws -> Tensor {
  var out: cxt_tensor?
  try check(body(&out))
  return Tensor(handle: out!)
}

public enum DType: Sendable, CaseIterable, CustomStringConvertible {
  case float32, bfloat16, float16, uint8, int64, bool, float64, int32

  /// The C ABI's code: the one place a `DType` becomes a `cxt_dtype`.
  var c: cxt_dtype {
    switch self {
    case .float32: return CXT_F32
    case .bfloat16: return CXT_BF16
    case .float16: return CXT_F16
    case .uint8: return CXT_U8
    case .int64: return CXT_I64
    case .bool: return CXT_BOOL
    case .float64: return CXT_F64
    case .int32: return CXT_I32
    }
  }
  /// The one place a `cxt_dtype` from the C ABI becomes a `DType`; nil for a code this layer
  /// does not know (the shim fails before it returns one).
  init?(c: cxt_dtype) {
    guard let d = DType.allCases.first(where: { $0.c == c }) else { return nil }
    self = d
  }

  public var itemSize: Int {
    switch self {
    case .float32, .int32: return 4
    case .bfloat16, .float16: return 2
    case .uint8, .bool: return 1
    case .int64, .float64: return 8
    }
  }
  public var isFloatingPoint: Bool { [.float32, .bfloat16, .float16, .float64].contains(self) }
  /// The safetensors / numpy-style name.
  public var safetensorsName: String {
    switch self {
    case .float32: return "F32"
    case .bfloat16: return "BF16"
    case .float16: return "F16"
    case .uint8: return "U8"
    case .int64: return "I64"
    case .bool: return "BOOL"
    case .float64: return "F64"
    case .int32: return "I32"
    }
  }
  public init?(safetensorsName: String) {
    guard let d = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
    self = d
  }
  public var description: String {
    switch self {
    case .float32: return "float32"
    case .bfloat16: return "bfloat16"
    case .float16: return "float16"
    case .uint8: return "uint8"
    case .int64: return "int64"
    case .bool: return "bool"
    case .float64: return "float64"
    case .int32: return "int32"
    }
  }
  public init?(name: String) {
    guard let d = DType.allCases.first(where: { $0.description == name }) else { return nil }
    self = d
  }
}

public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  /// The C ABI's device type and index: the one place a `Device` becomes a (`cxt_device_type`, index).
  var type: cxt_device_type { if case .cuda = self { return CXT_CUDA } else { return CXT_CPU } }
  var index: Int32 { if case .cuda(let i) = self { return Int32(i) } else { return 0 } }
  /// The one place a (`cxt_device_type`, index) from the C ABI becomes a `Device`.
  init(c type: cxt_device_type, index: Int32) { self = type == CXT_CUDA ? .cuda(Int(index)) : .cpu }
  public var isCUDA: Bool { if case .cuda = self { return true } else { return false } }

  /// Parses `cpu`, `cuda`, `cuda:N`.
  public init(parsing s: String) throws {
    let t = s.lowercased()
    if t == "cpu" { self = .cpu; return }
    if t == "cuda" { self = .cuda(0); return }
    if t.hasPrefix("cuda:"), let i = Int(t.dropFirst(5)), i >= 0 { self = .cuda(i); return }
    throw TorchError("unknown device '\(s)': use cpu, cuda or cuda:N")
  }
  public var description: String {
    switch self {
    case .cpu: return "cpu"
    case .cuda(let i): return "cuda:\(i)"
    }
  }
}

public enum MemoryFormat: Sendable {
  case contiguous, channelsLast

  /// The C ABI's code: the one place a `MemoryFormat` becomes a `cxt_memory_format`.
  var c: cxt_memory_format { self == .contiguous ? CXT_CONTIGUOUS : CXT_CHANNELS_LAST }
}

/// Process-wide facts and settings of libtorch.
public enum Runtime {
  public static var version: String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = cxt_version(&buf, buf.count)
    return String(cString: buf)
  }
  public static var cudaAvailable: Bool {
    var v: Int32 = 0
    return cxt_cuda_is_available(&v) == 0 && v != 0
  }
  public static var cudaDeviceCount: Int {
    var v: Int32 = 0
    return cxt_cuda_device_count(&v) == 0 ? Int(v) : 0
  }
  /// Whether the shim was compiled against a CUDA libtorch (streams, memory stats).
  public static var shimHasCUDA: Bool {
    var v: Int32 = 0
    return cxt_has_cuda_build(&v) == 0 && v != 0
  }
  public static func synchronize(_ device: Device) throws {
    if case .cuda(let i) = device { try check(cxt_cuda_synchronize(Int32(i))) }
  }
  /// cuDNN's autotuner (`torch.backends.cudnn.benchmark`), process-wide: set it through
  /// `applyCuDNNBenchmark(for:requested:)`, the one place that decides it.
  public static func setCuDNNBenchmark(_ on: Bool) throws { try check(cxt_cudnn_set_benchmark(on ? 1 : 0)) }
  public static var cuDNNBenchmarkEnabled: Bool {
    var v: Int32 = 0
    return cxt_cudnn_get_benchmark(&v) == 0 && v != 0
  }
  /// Whether cuDNN's autotuner runs for work on `device`: with CUDA unless `requested` is false,
  /// never on the CPU (it has no cuDNN). The autotuner times the convolution algorithms once per
  /// input shape and keeps the fastest, which pays off where shapes stay the same from batch to
  /// batch, as in training and prediction (PyTorch's `torch.backends.cudnn.benchmark = True`).
  public static func cuDNNBenchmark(for device: Device, requested: Bool = true) -> Bool {
    device.isCUDA && requested
  }
  /// Turns the autotuner on or off for `device` as `cuDNNBenchmark(for:requested:)` decides and
  /// returns the decision: what the training loop, `cxr predict` and the benchmarks that run them
  /// call. On the CPU it changes nothing.
  @discardableResult
  public static func applyCuDNNBenchmark(for device: Device, requested: Bool = true) throws -> Bool {
    let on = cuDNNBenchmark(for: device, requested: requested)
    if device.isCUDA { try setCuDNNBenchmark(on) }
    return on
  }
  public static var threads: Int {
    get { var v: Int32 = 0; _ = cxt_get_num_threads(&v); return Int(v) }
  }
  public static func setThreads(_ n: Int) throws { try check(cxt_set_num_threads(Int32(n))) }
  /// `threads: 0` means all cores. PyPI's wheels start with one thread per physical core, which
  /// is kept; a libtorch that starts with one thread on a machine of several (Debian's package)
  /// gets one per core.
  public static func useAllCoresIfSingleThreaded() throws {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    if threads == 1 && cores > 1 { try setThreads(cores) }
  }
  /// Training and prediction free and reallocate the same large tensors every step. glibc's
  /// malloc hands freed memory at the top of its heap back to the kernel (trim) and takes it
  /// back page by page on the next step; measured on convnext_atto (BENCHMARKS.md, "Training
  /// loop on CPU"), those page faults cost 15 % of a steady epoch. Keeping up to 2 GiB of freed
  /// memory and growing the heap 256 MiB at a time (what MALLOC_TRIM_THRESHOLD_ and
  /// MALLOC_TOP_PAD_ would set) makes a process hold its peak memory until it exits, which a
  /// training run does anyway. Environment settings the user gave win. Called once, before the
  /// first tensor; a no-op where mallopt does not exist (not glibc).
  public static func keepFreedMemoryForReuse() {
    let env = ProcessInfo.processInfo.environment
    guard env["MALLOC_TRIM_THRESHOLD_"] == nil, env["MALLOC_TOP_PAD_"] == nil,
          let symbol = dlsym(nil, "mallopt") else { return }
    // glibc's malloc.h: M_TRIM_THRESHOLD -1, M_TOP_PAD -2. Swift's Glibc module does not export
    // mallopt, hence the lookup.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    _ = mallopt(-1, 2_000_000_000)
    _ = mallopt(-2, 256 << 20)
  }
  public static func manualSeed(_ seed: UInt64) throws { try check(cxt_manual_seed(seed)) }
  /// (current, peak) bytes held by tensors on a CUDA device; zeros on CPU-only builds.
  public static func cudaMemory(_ device: Int = 0) throws -> (allocated: Int64, peak: Int64) {
    var a: Int64 = 0, p: Int64 = 0
    try check(cxt_cuda_memory_stats(Int32(device), &a, &p))
    return (a, p)
  }
}

/// Runs `body` with gradient recording off (thread-local), restoring the previous mode.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
  var prev: Int32 = 0
  _ = cxt_grad_mode_set(0, &prev)
  defer { _ = cxt_grad_mode_set(prev, nil) }
  return try body()
}

/// Runs `body` with gradient recording on, restoring the previous mode.
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
  var prev: Int32 = 0
  _ = cxt_grad_mode_set(1, &prev)
  defer { _ = cxt_grad_mode_set(prev, nil) }
  return try body()
}

public var isGradEnabled: Bool { var v: Int32 = 0; _ = cxt_grad_mode_get(&v); return v != 0 }

/// Runs `body` under autocast for a device type (e.g. bf16 on CUDA), like `torch.autocast`.
public func withAutocast<R>(_ device: Device, dtype: DType = .bfloat16, enabled: Bool = true,
                            _ body: () throws -> R) throws -> R {
  var pe: Int32 = 0, pd = CXT_F32
  try check(cxt_autocast_enter(device.type, enabled ? 1 : 0, dtype.c, &pe, &pd))
  defer { _ = cxt_autocast_exit(device.type, pe, pd) }
  return try body()
}

/// A seeded random-number generator on a device; its state can be saved and restored.
public final class Generator: @unchecked Sendable {
  let handle: cxt_generator
  public let device: Device
  public init(seed: UInt64, device: Device = .cpu) throws {
    var g: cxt_generator?
    try check(cxt_generator_new(seed, device.type, device.index, &g))
    handle = g!
    self.device = device
  }
  init(adopting handle: cxt_generator, device: Device) { self.handle = handle; self.device = device }
  deinit { _ = cxt_generator_free(handle) }
  /// The device's default generator (used by ops that are given none, e.g. dropout), shared,
  /// so that its state can be saved with a checkpoint and restored on resume.
  public static func defaultGenerator(_ device: Device = .cpu) throws -> Generator {
    var g: cxt_generator?
    try check(cxt_generator_default(device.type, device.index, &g))
    return Generator(adopting: g!, device: device)
  }
  /// The generator's full state as a uint8 tensor (what `torch.Generator.get_state` returns).
  public func state() throws -> Tensor { try make { cxt_generator_get_state(handle, $0) } }
  public func setState(_ t: Tensor) throws { try check(cxt_generator_set_state(handle, t.handle)) }
}
