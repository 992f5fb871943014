import ArgumentParser
import Foundation
import Torch

/// `cxr bench ...`: the Swift side of side-by-side benchmarks (scripts/bench/* run the
/// reference side in the same call and print ratios).
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Micro-benchmarks (the Swift side; scripts/bench/*.sh compare with PyTorch).",
    subcommands: [BenchOps.self, BenchDecode.self, BenchTrainStep.self, BenchTrain.self, BenchFeed.self, BenchGraph.self])
}

struct BenchOps: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ops", abstract: "Per-op overhead: add of two 8-element float32 tensors through Swift -> C -> libtorch.")
  @Option(help: "Calls per timed round.") var iterations = 200_000
  @Option(help: "Timed rounds (the best is reported).") var rounds = 5
  @Option(help: "libtorch intra-op threads.") var threads = 1

  func run() throws {
    try Runtime.setThreads(threads)
    let a = try Tensor.rand([8]), b = try Tensor.rand([8])
    for _ in 0..<10_000 { _ = try a + b }  // warm up
    var best = Double.infinity
    for _ in 0..<rounds {
      let t0 = DispatchTime.now().uptimeNanoseconds
      for _ in 0..<iterations { _ = try a + b }
      let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(iterations)
      best = min(best, dt)
    }
    // One JSON line, read by scripts/bench/ops.sh.
    print(#"{"bench":"ops","impl":"cxr","ns_per_op":\#(String(format: "%.1f", best)),"iterations":\#(iterations)}"#)
  }
}
