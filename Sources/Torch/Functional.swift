import CTorch

/// Neural-network primitives, named after `torch.nn.functional`.
public enum F {
  public static func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try make { cxt_matmul(a.handle, b.handle, $0) } }

  public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    try make { cxt_linear(x.handle, weight.handle, bias?.handle, $0) }
  }

  public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1) throws -> Tensor {
    let s = [Int64(stride), Int64(stride)], p = [Int64(padding), Int64(padding)], d = [Int64(dilation), Int64(dilation)]
    return try make { cxt_conv2d(x.handle, weight.handle, bias?.handle, s, p, d, Int64(groups), $0) }
  }

  /// LayerNorm over the trailing `normalizedShape` dims.
  public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?,
                               eps: Double = 1e-5) throws -> Tensor {
    let s = normalizedShape.map(Int64.init)
    return try make { cxt_layer_norm(x.handle, s, Int32(s.count), weight?.handle, bias?.handle, eps, $0) }
  }

  public static func adaptiveAvgPool2d(_ x: Tensor, _ h: Int, _ w: Int) throws -> Tensor {
    try make { cxt_adaptive_avg_pool2d(x.handle, Int64(h), Int64(w), $0) }
  }
  public static func avgPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil) throws -> Tensor {
    let s = stride ?? kernel
    return try make { cxt_avg_pool2d(x.handle, Int64(kernel), Int64(kernel), Int64(s), Int64(s), $0) }
  }
  public static func dropout(_ x: Tensor, p: Double, training: Bool) throws -> Tensor {
    try make { cxt_dropout(x.handle, p, training ? 1 : 0, $0) }
  }
  public static func softmax(_ x: Tensor, dim: Int) throws -> Tensor { try make { cxt_softmax(x.handle, Int64(dim), $0) } }
  public static func gelu(_ x: Tensor) throws -> Tensor { try x.gelu() }
  public static func sigmoid(_ x: Tensor) throws -> Tensor { try x.sigmoid() }

  public enum Reduction: Sendable {
    case none, mean, sum
    var c: cxt_loss_reduction {
      switch self {
      case .none: return CXT_REDUCTION_NONE
      case .mean: return CXT_REDUCTION_MEAN
      case .sum: return CXT_REDUCTION_SUM
      }
    }
  }

  /// `binary_cross_entropy_with_logits` with optional per-element weight and per-class pos_weight.
  public static func binaryCrossEntropyWithLogits(_ logits: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                                  posWeight: Tensor? = nil, reduction: Reduction = .mean) throws -> Tensor {
    try make { cxt_bce_with_logits(logits.handle, target.handle, weight?.handle, posWeight?.handle, reduction.c, $0) }
  }

  /// Sampling grid for `theta` [N,2,3] and output size [N,C,H,W].
  public static func affineGrid(_ theta: Tensor, size: [Int], alignCorners: Bool = false) throws -> Tensor {
    let s = size.map(Int64.init)
    return try make { cxt_affine_grid(theta.handle, s, Int32(s.count), alignCorners ? 1 : 0, $0) }
  }

  public enum SampleMode: Sendable {
    case bilinear, nearest, bicubic
    var c: cxt_grid_mode {
      switch self {
      case .bilinear: return CXT_GRID_BILINEAR
      case .nearest: return CXT_GRID_NEAREST
      case .bicubic: return CXT_GRID_BICUBIC
      }
    }
  }
  public enum PaddingMode: Sendable {
    case zeros, border, reflection
    var c: cxt_grid_padding {
      switch self {
      case .zeros: return CXT_GRID_PAD_ZEROS
      case .border: return CXT_GRID_PAD_BORDER
      case .reflection: return CXT_GRID_PAD_REFLECTION
      }
    }
  }

  public static func gridSample(_ x: Tensor, grid: Tensor, mode: SampleMode = .bilinear,
                                padding: PaddingMode = .zeros, alignCorners: Bool = false) throws -> Tensor {
    try make { cxt_grid_sample(x.handle, grid.handle, mode.c, padding.c, alignCorners ? 1 : 0, $0) }
  }

  /// Constant padding; `pads` as in `F.pad`: (left, right, top, bottom, ...) from the last dim.
  public static func pad(_ x: Tensor, _ pads: [Int], value: Double = 0) throws -> Tensor {
    let p = pads.map(Int64.init)
    return try make { cxt_pad(x.handle, p, Int32(p.count), value, $0) }
  }

  public enum InterpolationMode: Sendable {
    case bilinear, nearest, area, bicubic
    var c: cxt_interp_mode {
      switch self {
      case .bilinear: return CXT_INTERP_BILINEAR
      case .nearest: return CXT_INTERP_NEAREST
      case .area: return CXT_INTERP_AREA
      case .bicubic: return CXT_INTERP_BICUBIC
      }
    }
  }

  public static func interpolate(_ x: Tensor, size: (Int, Int), mode: InterpolationMode,
                                 alignCorners: Bool = false, antialias: Bool = false) throws -> Tensor {
    try make { cxt_interpolate(x.handle, Int64(size.0), Int64(size.1), mode.c, alignCorners ? 1 : 0, antialias ? 1 : 0, $0) }
  }
}

/// Multi-tensor in-place operations (`torch._foreach_*`), one kernel launch per group on CUDA.
public enum Foreach {
  static func handles(_ ts: [Tensor]) -> [cxt_tensor?] { ts.map { $0.handle } }

  public static func mul_(_ ts: [Tensor], _ s: Double) throws { try check(cxt_foreach_mul_scalar_(handles(ts), Int32(ts.count), s)) }
  public static func add_(_ ts: [Tensor], _ s: Double) throws { try check(cxt_foreach_add_scalar_(handles(ts), Int32(ts.count), s)) }
  public static func add_(_ ts: [Tensor], _ others: [Tensor], alpha: Double = 1) throws {
    precondition(ts.count == others.count, "foreach lists differ in length")
    try check(cxt_foreach_add_list_(handles(ts), handles(others), Int32(ts.count), alpha))
  }
  public static func mul_(_ ts: [Tensor], _ others: [Tensor]) throws {
    precondition(ts.count == others.count, "foreach lists differ in length")
    try check(cxt_foreach_mul_list_(handles(ts), handles(others), Int32(ts.count)))
  }
  public static func lerp_(_ ts: [Tensor], _ ends: [Tensor], weight: Double) throws {
    precondition(ts.count == ends.count, "foreach lists differ in length")
    try check(cxt_foreach_lerp_scalar_(handles(ts), handles(ends), Int32(ts.count), weight))
  }
  public static func sign_(_ ts: [Tensor]) throws { try check(cxt_foreach_sign_(handles(ts), Int32(ts.count))) }
  public static func copy_(_ dst: [Tensor], _ src: [Tensor]) throws {
    precondition(dst.count == src.count, "foreach lists differ in length")
    try check(cxt_foreach_copy_(handles(dst), handles(src), Int32(dst.count)))
  }
  public static func zero_(_ ts: [Tensor]) throws { try check(cxt_foreach_zero_(handles(ts), Int32(ts.count))) }
  public static func clone(_ ts: [Tensor]) throws -> [Tensor] {
    var outs = [cxt_tensor?](repeating: nil, count: ts.count)
    try check(cxt_foreach_clone(handles(ts), Int32(ts.count), &outs))
    return outs.map { Tensor(handle: $0!) }
  }
  public static func norm(_ ts: [Tensor], ord: Double = 2) throws -> [Tensor] {
    var outs = [cxt_tensor?](repeating: nil, count: ts.count)
    try check(cxt_foreach_norm(handles(ts), Int32(ts.count), ord, &outs))
    return outs.map { Tensor(handle: $0!) }
  }
}

/// A CUDA stream (only with a shim built against a CUDA libtorch).
public final class Stream: @unchecked Sendable {
  let handle: cxt_stream
  init(handle: cxt_stream) { self.handle = handle }
  deinit { _ = cxt_stream_free(handle) }

  /// A stream from the pool of `device`, for side work such as host-to-device copies.
  public static func new(device: Int = 0) throws -> Stream {
    var s: cxt_stream?
    try check(cxt_stream_new(Int32(device), &s))
    return Stream(handle: s!)
  }
  public static func current(device: Int = 0) throws -> Stream {
    var s: cxt_stream?
    try check(cxt_stream_current(Int32(device), &s))
    return Stream(handle: s!)
  }
  /// Runs `body` with this stream current, restoring the previous one.
  public func run<R>(device: Int = 0, _ body: () throws -> R) throws -> R {
    let prev = try Stream.current(device: device)
    try check(cxt_stream_set_current(handle))
    defer { _ = cxt_stream_set_current(prev.handle) }
    return try body()
  }
  public func synchronize() throws { try check(cxt_stream_synchronize(handle)) }
  /// Makes this stream wait for the work queued on `other` so far.
  public func wait(for other: Stream) throws { try check(cxt_stream_wait_stream(handle, other.handle)) }
  /// Marks `t` as used on this stream so the allocator does not reuse it early.
  public func record(_ t: Tensor) throws { try check(cxt_tensor_record_stream(t.handle, handle)) }
}
