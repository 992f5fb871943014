import CTorch

/// A captured CUDA graph: the kernels of one static-shape step, recorded once and replayed
/// with almost no launch overhead. Inputs are fed by copying into the tensors that the
/// capture used (their storage must stay alive). Errors on a CPU-only shim.
///
/// Bench-only for now (`cxr bench graph`): the training loop does not capture its steps (the
/// optimizer's host-side branches and the varying last batch would need a static-shape step
/// first); DeviceFeed's side-stream copies are what the loop uses on CUDA.
public final class CUDAGraph {
  let handle: cxt_graph
  public init() throws {
    var g: cxt_graph?
    try check(cxt_graph_new(&g))
    handle = g!
  }
  deinit { _ = cxt_graph_free(handle) }

  /// Records the work that `body` queues on `stream` (a side stream, as capture requires;
  /// run `body` on it a few times first so that lazy initialisation is not captured).
  public func capture(on stream: Stream, device: Int = 0, _ body: () throws -> Void) throws {
    try stream.run(device: device) {
      try check(cxt_graph_capture_begin(handle))
      var bodyError: Error?
      do { try body() } catch { bodyError = error }
      // End the capture even when the body failed, so the stream leaves capture mode.
      let endStatus = cxt_graph_capture_end(handle)
      if let bodyError { throw bodyError }
      try check(endStatus)
    }
  }

  /// Launches the captured work on the current stream.
  public func replay() throws { try check(cxt_graph_replay(handle)) }
}
