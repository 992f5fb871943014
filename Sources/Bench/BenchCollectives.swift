import ArgumentParser
import Common
import Foundation
import Torch

/// `cxr bench collectives`: a soak test of c10d through cxr's C ABI. For `--seconds`, every rank
/// runs the same seeded stream of collectives (coalesced all-reduces of lists of tensors of
/// mixed dtypes and sizes from one element to `--max-mib`, broadcasts from every root,
/// all-gathers, barriers) on values whose results are exact in every dtype, and checks every
/// element. It exists because the shim compiles c10d's headers against Debian's Gloo, an older
/// snapshot than the one libtorch was built with: if any layout the shim relies on differed,
/// this is where it would show (wrong sums, crashes); run once under ASan (scripts/dist-soak.sh).
/// Launched like torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); rank 0 prints one JSON line.
struct BenchCollectives: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "collectives", abstract: "Soak test: seeded collectives of many sizes and dtypes, every result checked.")
  @Option(help: "Seconds to keep going (every rank stops after the same collective).") var seconds: Double = 10
  @Option(name: .customLong("max-mib"), help: "Largest buffer in MiB.") var maxMiB: Double = 8
  @Option(help: "Seed of the collective stream (the same on every rank).") var seed: UInt64 = 1
  @Option(help: "Seconds a collective may wait for the other ranks.") var timeout: Double = 60

  func run() throws {
    let env = ProcessInfo.processInfo.environment
    guard let world = env["WORLD_SIZE"].flatMap(Int.init), let rank = env["RANK"].flatMap(Int.init),
          let host = env["MASTER_ADDR"], let port = env["MASTER_PORT"].flatMap(Int.init) else {
      throw ValidationError("run under a launcher: torchrun --nproc-per-node 2 --no-python cxr bench collectives (or set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")
    }
    let group = try ProcessGroup(host: host, port: port, isServer: rank == 0 && env["TORCHELASTIC_USE_AGENT_STORE"] != "True",
                                 worldSize: world, rank: rank, storePrefix: "soak/", timeout: timeout)
    var soak = CollectiveSoak(group: group, seed: seed, maxElements: max(1, Int(maxMiB * 262_144)))
    let t0 = Date()
    // Rank 0's clock decides when to stop, so every rank runs the same number of collectives.
    while true {
      let go = try Tensor([Date().timeIntervalSince(t0) < seconds ? 1.0 : 0.0], shape: [1])
      try group.broadcast([go], root: 0).wait()
      guard try go.item() == 1.0 else { break }
      try soak.step()
    }
    try group.barrier().wait()
    if rank == 0 {
      try printJSONLine(CollectivesRecord(world: world, collectives: soak.counts, elementsChecked: soak.checked,
                                          bytesReduced: soak.bytes, mismatches: 0, seconds: Date().timeIntervalSince(t0)))
    }
  }
}

/// The seeded stream of checked collectives behind `cxr bench collectives`. Rank r contributes
/// small integers (exact in bf16 up to 256, and in every other dtype far beyond), so every
/// result has one right answer.
struct CollectiveSoak {
  let group: ProcessGroup
  var rng: SplitMix64
  let maxElements: Int
  var counts: [String: Int] = [:]
  var checked = 0
  var bytes = 0

  init(group: ProcessGroup, seed: UInt64, maxElements: Int) {
    self.group = group; self.rng = SplitMix64(seed: seed); self.maxElements = maxElements
  }

  /// A size spread over orders of magnitude: 1 element up to `maxElements`.
  mutating func size() -> Int {
    let exponent = Double(rng.next() % 1000) / 1000 * log2(Double(maxElements))
    return max(1, Int(pow(2, exponent)) - Int(rng.next() % 3))
  }

  mutating func dtype() -> DType { [DType.float32, .float64, .int64, .int32, .bfloat16][Int(rng.next() % 5)] }

  /// 0, 1, ... 6 repeating, offset by `k`: a pattern that catches shifted or swapped elements.
  func pattern(_ n: Int, _ k: Int, dtype: DType) throws -> Tensor {
    try (Tensor.arange(0, Double(n), dtype: .float64) + Double(k)).remainder(7).to(dtype: dtype)
  }

  func expectEqual(_ got: Tensor, _ want: Tensor, _ what: String) throws -> Int {
    let g = try got.to(dtype: .float64).toArray(Double.self), w = try want.to(dtype: .float64).toArray(Double.self)
    guard g.count == w.count else { throw TorchError("collective soak: \(what): \(g.count) elements, expected \(w.count)") }
    if let i = g.indices.first(where: { g[$0] != w[$0] }) {
      throw TorchError("collective soak: \(what): element \(i) of \(g.count) is \(g[i]), expected \(w[i]) (rank \(group.rank))")
    }
    return g.count
  }

  mutating func step() throws {
    let r = group.rank, w = group.worldSize
    switch rng.next() % 4 {
    case 0:
      // Coalesced all-reduce of 1-6 tensors of one dtype: sum over ranks of (r+1) * pattern.
      let dt = dtype(), n = Int(rng.next() % 6) + 1
      let sizes = (0..<n).map { _ in size() }
      let op: ProcessGroup.ReduceOp = [.sum, .max, .min][Int(rng.next() % 3)]
      let ts = try sizes.enumerated().map { try pattern($0.element, $0.offset, dtype: dt) * Double(r + 1) }
      let ins = try ts.map { try $0.to(dtype: dt) }
      try group.allReduce(ins, op: op).wait()
      let factor: Double = op == .sum ? Double(w * (w + 1) / 2) : op == .max ? Double(w) : 1
      for (i, t) in ins.enumerated() {
        checked += try expectEqual(t, try pattern(sizes[i], i, dtype: .float64) * factor, "all-reduce \(op) of \(sizes[i]) \(dt)")
        bytes += sizes[i] * dt.itemSize
      }
      counts["allreduce", default: 0] += 1
    case 1:
      let dt = dtype(), n = size(), root = Int(rng.next() % UInt64(w))
      let t = try pattern(n, r, dtype: dt)
      try group.broadcast([t], root: root).wait()
      checked += try expectEqual(t, try pattern(n, root, dtype: .float64), "broadcast of \(n) \(dt) from rank \(root)")
      counts["broadcast", default: 0] += 1
    case 2:
      let dt = dtype(), n = size()
      let out = try Tensor.zeros([w * n], dtype: dt)
      try group.allGather(try pattern(n, r, dtype: dt), into: out).wait()
      let want = try Tensor.cat((0..<w).map { try pattern(n, $0, dtype: .float64) })
      checked += try expectEqual(out, want, "all-gather of \(n) \(dt)")
      counts["allgather", default: 0] += 1
    default:
      try group.barrier().wait()
      counts["barrier", default: 0] += 1
    }
  }
}

/// `cxr bench collectives`'s line: collectives run per kind, elements checked, none wrong.
struct CollectivesRecord: Codable {
  var world: Int, collectives: [String: Int], elementsChecked: Int, bytesReduced: Int, mismatches: Int, seconds: Double
  enum CodingKeys: String, CodingKey {
    case world, collectives, elementsChecked = "elements_checked", bytesReduced = "bytes_reduced", mismatches, seconds
  }
}
