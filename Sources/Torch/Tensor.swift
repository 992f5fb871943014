import CTorch
import Foundation

/// One libtorch tensor. Owns exactly one handle and frees it in `deinit`.
public final class Tensor: @unchecked Sendable {
  let handle: cxt_tensor

  init(handle: cxt_tensor) { self.handle = handle }
  deinit { _ = cxt_tensor_free(handle) }

  // MARK: creation

  /// A CPU tensor holding a copy of `values`.
  public convenience init<T: TensorScalar>(_ values: [T], shape: [Int]? = nil) throws {
    let shp = (shape ?? [values.count]).map(Int64.init)
    let h = try values.withUnsafeBytes { buf -> cxt_tensor in
      var out: cxt_tensor?
      try check(cxt_tensor_from_data(buf.baseAddress, buf.count, shp, Int32(shp.count), T.dtype.c, &out))
      return out!
    }
    self.init(handle: h)
  }

  /// A CPU tensor of `dtype` from raw little-endian bytes (e.g. bf16 from a safetensors file).
  public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws {
    let shp = shape.map(Int64.init)
    var out: cxt_tensor?
    try check(cxt_tensor_from_data(bytes.baseAddress, bytes.count, shp, Int32(shp.count), dtype.c, &out))
    self.init(handle: out!)
  }

  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                           pinned: Bool = false) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_tensor_empty(s, Int32(s.count), dtype.c, device.type, device.index, pinned ? 1 : 0, $0) }
  }
  public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_tensor_full(s, Int32(s.count), value, dtype.c, device.type, device.index, $0) }
  }
  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try full(shape, 0, dtype: dtype, device: device)
  }
  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try full(shape, 1, dtype: dtype, device: device)
  }
  public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType = .float32,
                            device: Device = .cpu) throws -> Tensor {
    try make { cxt_tensor_arange(start, end, step, dtype.c, device.type, device.index, $0) }
  }
  public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                          generator: Generator? = nil) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_rand(s, Int32(s.count), dtype.c, device.type, device.index, generator?.handle, $0) }
  }
  public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                           generator: Generator? = nil) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_randn(s, Int32(s.count), dtype.c, device.type, device.index, generator?.handle, $0) }
  }
  /// Integers uniform in [low, high).
  public static func randint(_ low: Int, _ high: Int, _ shape: [Int], device: Device = .cpu,
                             generator: Generator? = nil) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_randint(Int64(low), Int64(high), s, Int32(s.count), device.type, device.index, generator?.handle, $0) }
  }
  public static func randperm(_ n: Int, device: Device = .cpu, generator: Generator? = nil) throws -> Tensor {
    try make { cxt_randperm(Int64(n), device.type, device.index, generator?.handle, $0) }
  }
  /// Samples of Gamma(alpha, 1), one per element of `alpha`.
  public static func standardGamma(_ alpha: Tensor, generator: Generator? = nil) throws -> Tensor {
    try make { cxt_standard_gamma(alpha.handle, generator?.handle, $0) }
  }
  /// Samples of Beta(a, b) with the given shape, as X/(X+Y), X ~ Gamma(a), Y ~ Gamma(b).
  public static func beta(_ a: Double, _ b: Double, shape: [Int], device: Device = .cpu,
                          generator: Generator? = nil) throws -> Tensor {
    let x = try standardGamma(full(shape, a, device: device), generator: generator)
    let y = try standardGamma(full(shape, b, device: device), generator: generator)
    return try x / (x + y)
  }
  public func bernoulli(generator: Generator? = nil) throws -> Tensor {
    try make { cxt_bernoulli(handle, generator?.handle, $0) }
  }
  public static func cat(_ ts: [Tensor], dim: Int = 0) throws -> Tensor {
    let hs: [cxt_tensor?] = ts.map { $0.handle }
    return try make { cxt_tensor_cat(hs, Int32(hs.count), Int64(dim), $0) }
  }
  public static func stack(_ ts: [Tensor], dim: Int = 0) throws -> Tensor {
    let hs: [cxt_tensor?] = ts.map { $0.handle }
    return try make { cxt_tensor_stack(hs, Int32(hs.count), Int64(dim), $0) }
  }
  public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try make { cxt_tensor_where(cond.handle, a.handle, b.handle, $0) }
  }

  // MARK: properties

  public var shape: [Int] {
    var n: Int32 = 0
    _ = cxt_tensor_ndim(handle, &n)
    var s = [Int64](repeating: 0, count: Int(n))
    _ = cxt_tensor_shape(handle, &s, n)
    return s.map(Int.init)
  }
  public var strides: [Int] {
    var n: Int32 = 0
    _ = cxt_tensor_ndim(handle, &n)
    var s = [Int64](repeating: 0, count: Int(n))
    _ = cxt_tensor_strides(handle, &s, n)
    return s.map(Int.init)
  }
  public var ndim: Int { var n: Int32 = 0; _ = cxt_tensor_ndim(handle, &n); return Int(n) }
  public var count: Int { var n: Int64 = 0; _ = cxt_tensor_numel(handle, &n); return Int(n) }
  public var dtype: DType { var d = CXT_F32; _ = cxt_tensor_dtype(handle, &d); return DType(c: d) ?? .float32 }
  public var device: Device {
    var t = CXT_CPU, i: Int32 = 0
    _ = cxt_tensor_device(handle, &t, &i)
    return Device(c: t, index: i)
  }
  public func isContiguous(_ format: MemoryFormat = .contiguous) -> Bool {
    var v: Int32 = 0; _ = cxt_tensor_is_contiguous(handle, format.c, &v); return v != 0
  }
  public var isPinned: Bool { var v: Int32 = 0; _ = cxt_tensor_is_pinned(handle, &v); return v != 0 }
  public func sharesStorage(with other: Tensor) -> Bool {
    var v: Int32 = 0; _ = cxt_tensor_same_storage(handle, other.handle, &v); return v != 0
  }

  /// The single value of a one-element tensor.
  public func item() throws -> Double { var v = 0.0; try check(cxt_tensor_item(handle, &v)); return v }

  /// Copies the values to a Swift array (converting dtype first when `T` differs).
  public func toArray<T: TensorScalar>(_: T.Type = T.self) throws -> [T] {
    let src = dtype == T.dtype ? self : try to(dtype: T.dtype)
    let n = src.count
    var out = [T](repeating: T.zero, count: n)
    try out.withUnsafeMutableBytes { buf in try check(cxt_tensor_copy_to_buffer(src.handle, buf.baseAddress, buf.count)) }
    return out
  }
  /// The raw bytes (CPU, contiguous) in this tensor's dtype.
  public func bytes() throws -> Data {
    var d = Data(count: count * dtype.itemSize)
    try d.withUnsafeMutableBytes { buf in try check(cxt_tensor_copy_to_buffer(handle, buf.baseAddress, buf.count)) }
    return d
  }
  /// Copies into caller memory; `buffer.count` must equal count * itemSize.
  public func copy(into buffer: UnsafeMutableRawBufferPointer) throws {
    try check(cxt_tensor_copy_to_buffer(handle, buffer.baseAddress, buffer.count))
  }

  // MARK: conversion

  public func to(_ device: Device? = nil, dtype: DType? = nil, nonBlocking: Bool = false) throws -> Tensor {
    try make { cxt_tensor_to(handle, device?.type ?? CXT_DEVICE_KEEP, device?.index ?? 0, dtype?.c ?? CXT_DTYPE_KEEP, nonBlocking ? 1 : 0, $0) }
  }
  public func to(dtype: DType) throws -> Tensor { try to(nil, dtype: dtype) }
  public func contiguous(_ format: MemoryFormat = .contiguous) throws -> Tensor {
    try make { cxt_tensor_contiguous(handle, format.c, $0) }
  }
  public func clone() throws -> Tensor { try make { cxt_tensor_clone(handle, $0) } }
  public func detach() throws -> Tensor { try make { cxt_tensor_detach(handle, $0) } }
  public func pinMemory() throws -> Tensor { try make { cxt_tensor_pin_memory(handle, $0) } }

  // MARK: views and indexing

  public func reshape(_ shape: [Int]) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_tensor_reshape(handle, s, Int32(s.count), $0) }
  }
  public func view(_ shape: [Int]) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_tensor_view(handle, s, Int32(s.count), $0) }
  }
  public func permute(_ dims: [Int]) throws -> Tensor {
    let d = dims.map(Int64.init)
    return try make { cxt_tensor_permute(handle, d, Int32(d.count), $0) }
  }
  public func transpose(_ a: Int, _ b: Int) throws -> Tensor {
    try make { cxt_tensor_transpose(handle, Int64(a), Int64(b), $0) }
  }
  /// Elements start..<end (step) along `dim`; negative indices count from the end.
  public func slice(dim: Int, _ start: Int, _ end: Int, step: Int = 1) throws -> Tensor {
    try make { cxt_tensor_slice(handle, Int64(dim), Int64(start), Int64(end), Int64(step), $0) }
  }
  public func select(dim: Int, _ index: Int) throws -> Tensor {
    try make { cxt_tensor_select(handle, Int64(dim), Int64(index), $0) }
  }
  public func indexSelect(dim: Int, _ index: Tensor) throws -> Tensor {
    try make { cxt_tensor_index_select(handle, Int64(dim), index.handle, $0) }
  }
  public func expand(_ shape: [Int]) throws -> Tensor {
    let s = shape.map(Int64.init)
    return try make { cxt_tensor_expand(handle, s, Int32(s.count), $0) }
  }
  public func unsqueeze(_ dim: Int) throws -> Tensor { try make { cxt_tensor_unsqueeze(handle, Int64(dim), $0) } }
  public func squeeze(_ dim: Int) throws -> Tensor { try make { cxt_tensor_squeeze(handle, Int64(dim), $0) } }
  public func flatten(_ start: Int = 0, _ end: Int = -1) throws -> Tensor {
    try make { cxt_tensor_flatten(handle, Int64(start), Int64(end), $0) }
  }
  public func flip(_ dims: [Int]) throws -> Tensor {
    let d = dims.map(Int64.init)
    return try make { cxt_tensor_flip(handle, d, Int32(d.count), $0) }
  }
  public func roll(_ shift: Int, dim: Int) throws -> Tensor { try make { cxt_tensor_roll(handle, Int64(shift), Int64(dim), $0) } }
  public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
    try make { cxt_tensor_masked_fill(handle, mask.handle, value, $0) }
  }
  public func gather(dim: Int, _ index: Tensor) throws -> Tensor {
    try make { cxt_tensor_gather(handle, Int64(dim), index.handle, $0) }
  }

  // MARK: elementwise

  func unary(_ op: cxt_unary_op) throws -> Tensor { try make { cxt_tensor_unary(handle, op, $0) } }
  func binary(_ other: Tensor, _ op: cxt_binary_op) throws -> Tensor { try make { cxt_tensor_binary(handle, other.handle, op, $0) } }
  func binary(_ s: Double, _ op: cxt_binary_op) throws -> Tensor { try make { cxt_tensor_binary_scalar(handle, s, op, $0) } }

  public func neg() throws -> Tensor { try unary(CXT_NEG) }
  public func abs() throws -> Tensor { try unary(CXT_ABS) }
  public func exp() throws -> Tensor { try unary(CXT_EXP) }
  public func log() throws -> Tensor { try unary(CXT_LOG) }
  public func log1p() throws -> Tensor { try unary(CXT_LOG1P) }
  public func sqrt() throws -> Tensor { try unary(CXT_SQRT) }
  public func rsqrt() throws -> Tensor { try unary(CXT_RSQRT) }
  public func sigmoid() throws -> Tensor { try unary(CXT_SIGMOID) }
  public func logSigmoid() throws -> Tensor { try unary(CXT_LOGSIGMOID) }
  public func tanh() throws -> Tensor { try unary(CXT_TANH) }
  public func sign() throws -> Tensor { try unary(CXT_SIGN) }
  public func relu() throws -> Tensor { try unary(CXT_RELU) }
  /// Exact (erf) GELU, as `nn.GELU()`.
  public func gelu() throws -> Tensor { try unary(CXT_GELU) }
  public func geluTanh() throws -> Tensor { try unary(CXT_GELU_TANH) }
  public func floor() throws -> Tensor { try unary(CXT_FLOOR) }
  public func ceil() throws -> Tensor { try unary(CXT_CEIL) }
  /// Round half to even, as `torch.round`.
  public func round() throws -> Tensor { try unary(CXT_ROUND) }
  public func sin() throws -> Tensor { try unary(CXT_SIN) }
  public func cos() throws -> Tensor { try unary(CXT_COS) }
  public func erf() throws -> Tensor { try unary(CXT_ERF) }
  public func reciprocal() throws -> Tensor { try unary(CXT_RECIPROCAL) }
  public func square() throws -> Tensor { try unary(CXT_SQUARE) }
  public func logicalNot() throws -> Tensor { try unary(CXT_LOGICAL_NOT) }
  public func isnan() throws -> Tensor { try unary(CXT_ISNAN) }
  public func isfinite() throws -> Tensor { try unary(CXT_ISFINITE) }
  public func pow(_ e: Double) throws -> Tensor { try binary(e, CXT_POW) }
  public func pow(_ e: Tensor) throws -> Tensor { try binary(e, CXT_POW) }
  public func maximum(_ o: Tensor) throws -> Tensor { try binary(o, CXT_MAXIMUM) }
  public func minimum(_ o: Tensor) throws -> Tensor { try binary(o, CXT_MINIMUM) }
  public func eq(_ o: Tensor) throws -> Tensor { try binary(o, CXT_EQ) }
  public func eq(_ s: Double) throws -> Tensor { try binary(s, CXT_EQ) }
  public func ne(_ s: Double) throws -> Tensor { try binary(s, CXT_NE) }
  public func lt(_ s: Double) throws -> Tensor { try binary(s, CXT_LT) }
  public func le(_ s: Double) throws -> Tensor { try binary(s, CXT_LE) }
  public func gt(_ s: Double) throws -> Tensor { try binary(s, CXT_GT) }
  public func ge(_ s: Double) throws -> Tensor { try binary(s, CXT_GE) }
  public func lt(_ o: Tensor) throws -> Tensor { try binary(o, CXT_LT) }
  public func gt(_ o: Tensor) throws -> Tensor { try binary(o, CXT_GT) }
  public func logicalAnd(_ o: Tensor) throws -> Tensor { try binary(o, CXT_LOGICAL_AND) }
  public func logicalOr(_ o: Tensor) throws -> Tensor { try binary(o, CXT_LOGICAL_OR) }
  public func remainder(_ s: Double) throws -> Tensor { try binary(s, CXT_REMAINDER) }
  /// Clamp to [lo, hi]; nil leaves that side open.
  public func clamp(min lo: Double? = nil, max hi: Double? = nil) throws -> Tensor {
    try make { cxt_tensor_clamp(handle, lo ?? .nan, hi ?? .nan, $0) }
  }
  public func lerp(_ end: Tensor, _ weight: Double) throws -> Tensor { try make { cxt_tensor_lerp(handle, end.handle, weight, $0) } }
  public func addcmul(_ a: Tensor, _ b: Tensor, value: Double = 1) throws -> Tensor {
    try make { cxt_tensor_addcmul(handle, a.handle, b.handle, value, $0) }
  }

  // MARK: in place (callers hold no-grad where autograd would object)

  public func copy_(_ src: Tensor, nonBlocking: Bool = false) throws { try check(cxt_tensor_copy_(handle, src.handle, nonBlocking ? 1 : 0)) }
  public func fill_(_ v: Double) throws { try check(cxt_tensor_fill_(handle, v)) }
  public func zero_() throws { try fill_(0) }
  public func mul_(_ s: Double) throws { try check(cxt_tensor_mul_scalar_(handle, s)) }
  public func add_(_ other: Tensor, alpha: Double = 1) throws { try check(cxt_tensor_add_(handle, other.handle, alpha)) }
  public func add_(_ s: Double) throws { try check(cxt_tensor_add_scalar_(handle, s)) }
  public func clamp_(min lo: Double? = nil, max hi: Double? = nil) throws { try check(cxt_tensor_clamp_(handle, lo ?? .nan, hi ?? .nan)) }
  public func bernoulli_(_ p: Double, generator: Generator? = nil) throws { try check(cxt_tensor_bernoulli_(handle, p, generator?.handle)) }
  public func uniform_(_ lo: Double, _ hi: Double, generator: Generator? = nil) throws {
    try check(cxt_tensor_uniform_(handle, lo, hi, generator?.handle))
  }
  public func normal_(mean: Double = 0, std: Double = 1, generator: Generator? = nil) throws {
    try check(cxt_tensor_normal_(handle, mean, std, generator?.handle))
  }
  /// timm's `trunc_normal_(std, a, b)` (mean 0).
  public func truncNormal_(std: Double, a: Double = -2, b: Double = 2, generator: Generator? = nil) throws {
    try check(cxt_tensor_trunc_normal_(handle, std, a, b, generator?.handle))
  }

  // MARK: reductions

  func reduce(_ op: cxt_reduce_op, _ dims: [Int], _ keepDim: Bool) throws -> Tensor {
    let d = dims.map(Int64.init)
    return try make { cxt_tensor_reduce(handle, op, d, Int32(d.count), keepDim ? 1 : 0, $0) }
  }
  public func sum(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_SUM, dims, keepDim) }
  public func mean(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_MEAN, dims, keepDim) }
  public func max(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_AMAX, dims, keepDim) }
  public func min(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_AMIN, dims, keepDim) }
  public func prod(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_PROD, dims, keepDim) }
  /// Unbiased variance / standard deviation.
  public func variance(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_VAR, dims, keepDim) }
  public func std(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CXT_STD, dims, keepDim) }
  public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor { try make { cxt_tensor_argmax(handle, Int64(dim), keepDim ? 1 : 0, $0) } }
  public func cumsum(dim: Int) throws -> Tensor { try make { cxt_tensor_cumsum(handle, Int64(dim), $0) } }
  public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = true) throws -> (values: Tensor, indices: Tensor) {
    var v: cxt_tensor?, i: cxt_tensor?
    try check(cxt_tensor_sort(handle, Int64(dim), descending ? 1 : 0, stable ? 1 : 0, &v, &i))
    return (Tensor(handle: v!), Tensor(handle: i!))
  }
  public func histc(bins: Int, min lo: Double, max hi: Double) throws -> Tensor {
    try make { cxt_tensor_histc(handle, Int64(bins), lo, hi, $0) }
  }
  public func allFinite() throws -> Bool { var v: Int32 = 0; try check(cxt_tensor_all_finite(handle, &v)); return v != 0 }
  /// Same shape and exactly equal values.
  public func equal(_ other: Tensor) throws -> Bool { var v: Int32 = 0; try check(cxt_tensor_equal(handle, other.handle, &v)); return v != 0 }

  // MARK: autograd

  public var requiresGrad: Bool {
    get { var v: Int32 = 0; _ = cxt_tensor_requires_grad(handle, &v); return v != 0 }
  }
  @discardableResult
  public func requiresGrad(_ on: Bool) throws -> Tensor { try check(cxt_tensor_set_requires_grad(handle, on ? 1 : 0)); return self }
  public func backward(_ grad: Tensor? = nil, retainGraph: Bool = false) throws {
    try check(cxt_tensor_backward(handle, grad?.handle, retainGraph ? 1 : 0))
  }
  /// The accumulated gradient, or nil.
  public var grad: Tensor? {
    var out: cxt_tensor?
    guard cxt_tensor_grad(handle, &out) == 0, let h = out else { return nil }
    return Tensor(handle: h)
  }
  public func setGrad(_ g: Tensor?) throws { try check(cxt_tensor_set_grad(handle, g?.handle)) }
  /// Whether this tensor was produced by a recorded operation.
  public var hasGradFn: Bool { var v: Int32 = 0; _ = cxt_tensor_has_grad_fn(handle, &v); return v != 0 }
}

/// Swift element types that map to a libtorch dtype.
public protocol TensorScalar: Numeric {
  static var dtype: DType { get }
}
extension Float: TensorScalar { public static var dtype: DType { .float32 } }
extension Double: TensorScalar { public static var dtype: DType { .float64 } }
extension UInt8: TensorScalar { public static var dtype: DType { .uint8 } }
extension Int64: TensorScalar { public static var dtype: DType { .int64 } }
extension Int32: TensorScalar { public static var dtype: DType { .int32 } }

extension Tensor: CustomStringConvertible {
  public var description: String { "Tensor(\(shape), \(dtype), \(device))" }
}

// MARK: operators (they throw: `try a + b * c`)

public func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(b, CXT_ADD) }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(b, CXT_SUB) }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(b, CXT_MUL) }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(b, CXT_DIV) }
public func + (a: Tensor, s: Double) throws -> Tensor { try a.binary(s, CXT_ADD) }
public func - (a: Tensor, s: Double) throws -> Tensor { try a.binary(s, CXT_SUB) }
public func * (a: Tensor, s: Double) throws -> Tensor { try a.binary(s, CXT_MUL) }
public func / (a: Tensor, s: Double) throws -> Tensor { try a.binary(s, CXT_DIV) }
public func + (s: Double, a: Tensor) throws -> Tensor { try a.binary(s, CXT_ADD) }
public func * (s: Double, a: Tensor) throws -> Tensor { try a.binary(s, CXT_MUL) }
public func - (s: Double, a: Tensor) throws -> Tensor { try make { cxt_scalar_binary_tensor(s, a.handle, CXT_SUB, $0) } }
public func / (s: Double, a: Tensor) throws -> Tensor { try make { cxt_scalar_binary_tensor(s, a.handle, CXT_DIV, $0) } }
public prefix func - (a: Tensor) throws -> Tensor { try a.neg() }
