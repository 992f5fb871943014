import ArgumentParser
import Foundation
import Torch

/// `cxr bench graph`: captures a small static-shape step (40 elementwise kernels) as a CUDA graph,
/// replays it on new inputs, checks the values against the same step run eagerly, and times
/// replay against eager launches. Needs CUDA: on a CPU-only shim it reports why not.
struct BenchGraph: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "graph", abstract: "CUDA graph capture/replay: values checked against eager, replay vs eager time.")
  @Option(help: "cuda or cuda:N.") var device = "cuda"
  @Option(help: "Timed repetitions.") var repeats = 200

  /// out = ((x * w + 1) * w + 1) ... 20 times: 40 small kernels, launch-bound.
  static func step(_ x: Tensor, _ w: Tensor, into out: Tensor) throws {
    var y = x
    for _ in 0..<20 { y = try y * w; try y.add_(1) }
    try out.copy_(y)
  }

  func run() throws {
    let dev = try Device(parsing: device)
    guard case .cuda(let index) = dev else { throw ValidationError("bench graph needs a CUDA device, not \(dev)") }
    let graph = try CUDAGraph()
    let side = try Stream.new(device: index)
    let consumer = try Stream.current(device: index)
    let x = try Tensor.rand([4096], device: dev), w = try Tensor.full([4096], 0.5, device: dev)
    let out = try Tensor.zeros([4096], device: dev)
    // Warm up on the side stream (lazy initialisation must not be captured), then capture.
    try side.wait(for: consumer)
    try side.run(device: index) { for _ in 0..<3 { try BenchGraph.step(x, w, into: out) } }
    try consumer.wait(for: side)
    try graph.capture(on: side, device: index) { try BenchGraph.step(x, w, into: out) }
    try Runtime.synchronize(dev)

    // Replays read x's storage: feed new values by copying into it.
    var worst = 0.0
    for _ in 0..<5 {
      try x.copy_(try Tensor.rand([4096]).to(dev))
      try graph.replay()
      let expected = try Tensor.zeros([4096], device: dev)
      try BenchGraph.step(x, w, into: expected)
      let diff = try (try out - expected).abs().max().item()
      worst = max(worst, diff)
    }
    let ok = worst <= 1e-6

    func time(_ body: () throws -> Void) throws -> Double {
      try Runtime.synchronize(dev)
      let t0 = DispatchTime.now().uptimeNanoseconds
      for _ in 0..<repeats { try body() }
      try Runtime.synchronize(dev)
      return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3 / Double(repeats)
    }
    let replayUs = try time { try graph.replay() }
    let eagerUs = try time { try BenchGraph.step(x, w, into: out) }
    print(#"{"check":"graph","impl":"cxr","device":"\#(dev)","values_ok":\#(ok),"max_abs_err":\#(worst),"#
      + #""replay_us":\#(String(format: "%.1f", replayUs)),"eager_us":\#(String(format: "%.1f", eagerUs))}"#)
    if !ok { throw ValidationError("CUDA graph replay differs from eager by \(worst)") }
  }
}
