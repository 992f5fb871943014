import ArgumentParser
import Foundation
import Torch

/// `cxr bench allreduce`: c10d all-reduce through cxr's C ABI, run under torchrun like its
/// reference (scripts/bench/allreduce_reference.py, torch.distributed with Gloo), so both sides
/// meet at the same kind of rendezvous; rank 0 prints the record.
struct BenchAllReduce: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allreduce", abstract: "All-reduce of float32 buffers across the ranks of a torchrun launch (Gloo).")
  @Option(help: "Buffer sizes in MiB, comma-separated.") var sizes = "1,25,350"
  @Option(help: "Timed all-reduces per size (the median is reported).") var rounds = 5

  func run() throws {
    let env = ProcessInfo.processInfo.environment
    guard let world = env["WORLD_SIZE"].flatMap(Int.init), let rank = env["RANK"].flatMap(Int.init),
          let host = env["MASTER_ADDR"], let port = env["MASTER_PORT"].flatMap(Int.init) else {
      throw ValidationError("run under a launcher: torchrun --nproc-per-node 2 --no-python cxr bench allreduce")
    }
    let group = try ProcessGroup(host: host, port: port, isServer: rank == 0 && env["TORCHELASTIC_USE_AGENT_STORE"] != "True",
                                 worldSize: world, rank: rank, storePrefix: "bench/", timeout: 300)
    var seconds: [String: Double] = [:]
    for mib in sizes.split(separator: ",").compactMap({ Int($0) }) {
      let t = try Tensor.full([mib << 18], 1.0, dtype: .float32)
      try group.allReduce([t]).wait()  // warm-up: connections, buffers
      var times: [Double] = []
      for _ in 0..<rounds {
        try group.barrier().wait()
        let t0 = DispatchTime.now().uptimeNanoseconds
        try group.allReduce([t]).wait()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
      }
      seconds[String(mib)] = times.sorted()[times.count / 2]
    }
    if rank == 0 { try printJSONLine(AllReduceRecord(side: "cxr", world: world, medianSeconds: seconds)) }
  }
}

/// `cxr bench allreduce`'s line: the median seconds of one all-reduce per payload size (MiB).
struct AllReduceRecord: Codable {
  var side: String
  var world: Int
  var medianSeconds: [String: Double]
  enum CodingKeys: String, CodingKey { case side, world, medianSeconds = "median_seconds" }
}
