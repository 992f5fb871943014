import ArgumentParser
import Foundation
import Torch
import Train

struct BenchTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "epochs",
    abstract: "Time epochs of the training loop on synthetic data (see scripts/bench/train.sh).")

  @Option(help: "Model: small-cnn (convnext_atto once the Models layer is merged).") var model = "small-cnn"
  @Option(help: "Image side in pixels.") var size = 64
  @Option(help: "Images per epoch.") var images = 512
  @Option(help: "Batch size.") var batch = 32
  @Option(help: "Epochs.") var epochs = 3
  @Option(help: "Width of small-cnn.") var width = 32
  @Option(help: "CPU threads for libtorch.") var threads = 2
  @Option(help: "Run folder (default: a temporary one, removed after).") var out: String?

  func run() throws {
    try Runtime.setThreads(threads)
    var s = TrainBenchmark.Settings()
    s.model = model; s.size = size; s.images = images; s.batch = batch; s.epochs = epochs; s.width = width
    let dir = out.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent("cxr-bench-train-\(getpid())")
    defer { if out == nil { try? FileManager.default.removeItem(at: dir) } }
    let record = try TrainBenchmark.run(s, runDirectory: dir)
    try printJSONLine(record)
  }
}
