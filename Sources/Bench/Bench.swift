import ArgumentParser
import Foundation
import Models
import Torch

/// `cxr bench ...`: the Swift side of side-by-side benchmarks (scripts/bench/* run the
/// reference side in the same call and print ratios).
public struct Bench: ParsableCommand {
  public init() {}
  public static let configuration = CommandConfiguration(
    abstract: "Micro-benchmarks (the Swift side; scripts/bench/*.sh compare with PyTorch).",
    subcommands: [BenchOps.self, BenchDecode.self, BenchTrainStep.self, BenchTrain.self, BenchFeed.self, BenchGraph.self,
                  BenchPredict.self, BenchForward.self, BenchLoader.self, BenchAllReduce.self, BenchCollectives.self])
}

/// Prints a benchmark's record as one JSON line (sorted keys): what scripts/gpu-check.sh and
/// the scripts/bench drivers read. Each record is a Codable struct whose coding keys are the
/// snake_case names those scripts read.
public func printJSONLine<Record: Encodable>(_ record: Record) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
  print(String(decoding: try encoder.encode(record), as: UTF8.self))
}

/// Images per second with two decimals, as the PyTorch side (scripts/bench/gpu_*.py) reports them.
func imagesPerSecond(_ images: Int, _ seconds: Double) -> Double {
  (Double(images) / seconds * 100).rounded() / 100
}

/// Peak GiB held by tensors on a CUDA device since the process started; 0 on the CPU.
func peakMemoryGiB(_ device: Device) throws -> Double {
  guard case .cuda(let i) = device else { return 0 }
  return Double(try Runtime.cudaMemory(i).peak) / Double(1 << 30)
}

/// Seconds taken by `steps` calls of `body` after `warmup` untimed ones. The device is
/// synchronized before each clock read, so queued GPU work is counted (gpu_common.py's `timed`).
func timedSteps(on device: Device, steps: Int, warmup: Int, _ body: () throws -> Void) throws -> Double {
  for _ in 0..<warmup { try body() }
  try Runtime.synchronize(device)
  let t0 = DispatchTime.now().uptimeNanoseconds
  for _ in 0..<steps { try body() }
  try Runtime.synchronize(device)
  return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// The model of the GPU benchmarks, as scripts/bench/gpu_common.py makes it: a ConvNeXt with
/// timm's initialization (seed 0), one input channel, one output per finding of the study.
enum BenchModel {
  static let findings = ["Pneumothorax", "Fracture"]
  static func make(_ arch: String) throws -> ConvNeXt {
    try ConvNeXt(ConvNeXtConfig.named(arch, numClasses: findings.count, inChannels: 1), generator: Generator(seed: 0))
  }
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
