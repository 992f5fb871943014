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
    Runtime.keepFreedMemoryForReuse()
    try Runtime.setThreads(threads)
    var s = TrainBenchmark.Settings()
    s.model = model; s.size = size; s.images = images; s.batch = batch; s.epochs = epochs; s.width = width
    let dir = out.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent("cxr-bench-train-\(getpid())")
    defer { if out == nil { try? FileManager.default.removeItem(at: dir) } }
    // Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): data-parallel over c10d, as
    // `cxr train` runs it; rank 0 prints the record.
    let env = ProcessInfo.processInfo.environment
    var parallel: DataParallel?
    if let world = env["WORLD_SIZE"].flatMap(Int.init), world > 1, let rank = env["RANK"].flatMap(Int.init),
       let host = env["MASTER_ADDR"], let port = env["MASTER_PORT"].flatMap(Int.init) {
      let group = try ProcessGroup(host: host, port: port, isServer: rank == 0 && env["TORCHELASTIC_USE_AGENT_STORE"] != "True",
                                   worldSize: world, rank: rank, storePrefix: "bench/", timeout: 300)
      parallel = DataParallel(group: group)
    }
    if let record = try TrainBenchmark.run(s, runDirectory: dir, parallel: parallel) { try printJSONLine(record) }
  }
}
