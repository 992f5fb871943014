import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Data-parallel training through the real binary and real c10d (Gloo on loopback): N worker
/// processes with micro-batch B and accumulation A train exactly what one process trains with
/// micro-batch B and accumulation N*A (the same batches, the same augmentation and drop-path
/// draws per batch, gradients averaged by DDP's Reducer), on CPU with one thread per rank. Every
/// process is watched with a deadline, and every rank has --dist-timeout 30: nothing can hang.
final class DataParallelCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = try TestEnv.scratch("cxr-ddp")
    let info = try cxr(["info"])
    guard info.out.contains("data-parallel training: gloo") else {
      throw XCTSkip("this libcxt.so has no Gloo (\(info.out)); make setup installs libgloo-dev")
    }
  }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }

  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }
  func start(_ args: [String], env: [String: String] = [:]) throws -> WatchedProcess {
    try WatchedProcess(CXRBinary.url(for: Self.self), args, environment: env)
  }

  /// The tiny study (10 training images: 4 batches, the last of 1), augmentation with mixing and
  /// affine transforms, drop path and head dropout on. N processes equal one process with N-fold
  /// accumulation only when an epoch's batches divide by N: training drops the last `n mod N`
  /// batches (DistributedSampler(drop_last=True)). The tuning fraction keeps the count at 4
  /// batches whatever the synthetic study draws (its chest tubes moved it to 13 images, 5 batches).
  func config(_ out: String, accumulation: Int, epochs: Int = 2, extra: String = "") throws -> String {
    let data = dir.appendingPathComponent("data")
    if !FileManager.default.fileExists(atPath: data.path) {
      let s = try cxr(["synth", data.path, "--size", "tiny", "--seed", "3"])
      XCTAssertEqual(s.status, 0, s.err)
    }
    let text = """
      name: mini
      out: \(dir.appendingPathComponent(out).path)
      seed: 1
      device: cpu
      threads: 1
      findings: [Pneumothorax, Fracture]
      train_data: {kind: mimic, root: \(data.path)/mimic}
      test_data: {kind: candid, root: \(data.path)/candid}
      schemas:
        - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
      split: {tune_fraction: 0.25}
      preprocess: {size: 32}
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0, drop_path_rate: 0.2, head_dropout: 0.2}
      loader: {batch_size: 3, workers: 1}
      train: {epochs: \(epochs), lr: 1.0e-3, accumulation: \(accumulation), progress_interval: 0, checkpoint_every: 1, keep_last: 2, augment: {mix: 0.5, affine: 0.5}\(extra)}
      """
    let url = dir.appendingPathComponent("\(out).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  func folder(_ run: String) -> URL { dir.appendingPathComponent("\(run)/mini/truth") }

  func lastCheckpoint(_ run: String) throws -> URL {
    let c = folder(run).appendingPathComponent("checkpoints")
    let last = try FileManager.default.contentsOfDirectory(atPath: c.path).filter { $0.hasPrefix("step-") }.sorted().last!
    return c.appendingPathComponent(last)
  }

  func weights(_ run: String) throws -> [Data] {
    let c = try lastCheckpoint(run)
    return try ["model.safetensors", "ema.safetensors"].map { try Data(contentsOf: c.appendingPathComponent($0)) }
  }

  /// Per epoch: step, train loss, and the tuning split's loss and AUROCs of both weights.
  func epochRecords(_ run: String) throws -> [String] {
    try String(contentsOf: folder(run).appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      .compactMap { line -> String? in
        guard let d = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], d["type"] as? String == "epoch" else { return nil }
        let kept = d.filter { ["step", "train_loss", "train_images", "raw", "ema", "lr"].contains($0.key) }
        return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
      }
  }

  func steps(_ stderr: String) -> Int {
    stderr.split(separator: "\n").compactMap { line -> Int? in
      guard let r = line.range(of: "  step ") else { return nil }
      return Int(line[r.upperBound...].prefix { $0.isNumber })
    }.max() ?? 0
  }

  func train(_ cfg: String, _ extra: [String] = [], timeout: Double = 300) throws -> WatchedProcess {
    let p = try start(["train", cfg, "--schema", "truth", "--dist-timeout", "30"] + extra)
    XCTAssertEqual(p.wait(timeout: timeout), 0, p.stderr)
    return p
  }

  func testProcessesTimesAccumulationIsOneGlobalBatch() throws {
    // 2 processes x accumulation 1 = 1 process x accumulation 2; 2 x 2 = 1 x 4.
    for (a, world) in [(1, 2), (2, 2)] {
      _ = try train(try config("one-\(a * world)", accumulation: a * world))
      let ddp = try train(try config("ddp-\(a)x\(world)", accumulation: a), ["--nproc", String(world)])
      XCTAssertEqual(try weights("ddp-\(a)x\(world)"), try weights("one-\(a * world)"),
                     "\(world) processes x accumulation \(a): the weights and EMA of one process with accumulation \(a * world)")
      let records = try epochRecords("ddp-\(a)x\(world)")
      XCTAssertEqual(records.count, 2)
      XCTAssertEqual(records, try epochRecords("one-\(a * world)"), "train loss and the tuning metrics gathered from both ranks")
      // Rank 0 alone speaks: one "finished" line, not two.
      XCTAssertEqual(ddp.stderr.components(separatedBy: "finished 2 epoch(s)").count - 1, 1, ddp.stderr)
      XCTAssertTrue(FileManager.default.fileExists(atPath: folder("ddp-\(a)x\(world)").appendingPathComponent("training.json").path))
    }
    // The folder records that 2 processes made it (a global batch twice one process's): one
    // process with the same config is not that training, and says so.
    let again = try cxr(["train", try config("ddp-1x2", accumulation: 1), "--schema", "truth", "--resume"])
    XCTAssertEqual(again.status, 1, again.err)
    XCTAssertTrue(again.err.contains("was trained with other settings: processes: 2 -> 1"), again.err)
  }

  /// SIGTERM to the launcher: every rank stops after the same step, rank 0's checkpoint holds
  /// the world size; continuing with 2 processes, or with 1 (accumulation 2 then, the same
  /// global batch), ends with the weights of the uninterrupted run.
  func testStoppedRunContinuesWithAnyNumberOfProcesses() throws {
    _ = try train(try config("straight", accumulation: 2, epochs: 6))
    let cfg = try config("stopped", accumulation: 1, epochs: 6)
    let p = try start(["train", cfg, "--schema", "truth", "--nproc", "2", "--dist-timeout", "30"])
    XCTAssertTrue(p.waitForStderr(timeout: 120) { self.steps($0) >= 3 }, p.stderr)
    p.signal(SIGTERM)
    XCTAssertEqual(p.wait(timeout: 120), 143, p.stderr)
    XCTAssertTrue(p.stderr.contains("interrupted: stopped by SIGTERM"), p.stderr)
    let state = try String(contentsOf: try lastCheckpoint("stopped").appendingPathComponent("state.safetensors"), encoding: .isoLatin1)
    XCTAssertTrue(state.contains(#"\"worldSize\":2"#) || state.contains(#""worldSize":2"#), "the checkpoint records the world size")
    try FileManager.default.copyItem(at: dir.appendingPathComponent("stopped"), to: dir.appendingPathComponent("stopped-1"))
    let yaml1 = try String(contentsOfFile: cfg, encoding: .utf8).replacingOccurrences(of: "/stopped\n", with: "/stopped-1\n")
    let cfg1 = dir.appendingPathComponent("stopped-1.yaml").path
    try yaml1.write(toFile: cfg1, atomically: true, encoding: .utf8)

    _ = try train(cfg, ["--resume", "--nproc", "2"])
    let one = try train(cfg1, ["--resume"])
    XCTAssertTrue(one.stderr.contains("continue with accumulation 2, the same global batch"), one.stderr)
    XCTAssertEqual(try weights("stopped"), try weights("straight"), "resumed with 2 processes")
    XCTAssertEqual(try weights("stopped-1"), try weights("straight"), "resumed with 1 process")
  }

  /// kill -9 of one rank: the launcher and the other rank stop within the timeout, non-zero,
  /// naming the dead rank; the last checkpoint is good and the run continues from it.
  func testAKilledRankStopsTheOthersWithItsName() throws {
    let cfg = try config("killed", accumulation: 1, epochs: 400)
    let p = try start(["train", cfg, "--schema", "truth", "--nproc", "2", "--dist-timeout", "30"])
    XCTAssertTrue(p.waitForStderr(timeout: 120) { self.steps($0) >= 6 }, p.stderr)
    let launcher = p.process.processIdentifier
    let rank1 = try XCTUnwrap(childWithRank(1, of: launcher), "rank 1's process")
    let killedAt = Date()
    kill(rank1, SIGKILL)
    XCTAssertEqual(p.wait(timeout: 90), 137, p.stderr)
    XCTAssertLessThan(Date().timeIntervalSince(killedAt), 60, "stopped within the timeout")
    XCTAssertTrue(p.stderr.contains("cxr --nproc: worker 1 (pid \(rank1)) was killed by SIGKILL"), p.stderr)
    XCTAssertTrue(p.stderr.contains("Error: rank 0: "), p.stderr)
    XCTAssertTrue(p.stderr.contains("no answer from rank 1 (host \(ProcessInfo.processInfo.hostName), pid \(rank1))"), p.stderr)
    XCTAssertTrue(p.stderr.contains("continue from the last checkpoint with --resume"), p.stderr)
    // The run continues from its last checkpoint (a few more steps are enough to show it).
    let again = try start(["train", cfg, "--schema", "truth", "--nproc", "2", "--dist-timeout", "30", "--resume"])
    XCTAssertTrue(again.waitForStderr(timeout: 120) { $0.contains("resuming from") && self.steps($0) >= 8 }, again.stderr)
    again.signal(SIGINT)
    XCTAssertEqual(again.wait(timeout: 120), 130, again.stderr)
  }

  func childWithRank(_ rank: Int, of parent: pid_t) -> pid_t? {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      guard let pid = Int32(name),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.range(of: ")", options: .backwards) else { continue }
      let fields = stat[close.upperBound...].split(separator: " ")
      guard fields.count > 2, Int32(fields[1]) == parent,
            let env = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")) else { continue }
      if env.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "RANK=\(rank)" }) { return pid }
    }
    return nil
  }

  /// Ranks started with different settings stop before the first step, saying so.
  func testRanksWithDifferentSettingsStopBeforeTheFirstStep() throws {
    let cfg = try config("mismatch", accumulation: 1)
    let port = 20000 + Int(getpid() % 20000)
    let env = ["WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(port)]
    let r0 = try start(["train", cfg, "--schema", "truth", "--dist-timeout", "30"], env: env.merging(["RANK": "0"]) { $1 })
    let r1 = try start(["train", cfg, "--schema", "truth", "--dist-timeout", "30", "--set", "train.lr=0.002"],
                       env: env.merging(["RANK": "1"]) { $1 })
    XCTAssertEqual(r0.wait(timeout: 120), 1, r0.stderr)
    XCTAssertEqual(r1.wait(timeout: 120), 1, r1.stderr)
    XCTAssertTrue(r0.stderr.contains("rank(s) 1 of 2 were started with another cxr build, configuration or data than rank 0"), r0.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder("mismatch").appendingPathComponent("checkpoints").path), "no step was taken")
  }

  /// torchrun (the test venv's torch) launches cxr as it launches PyTorch scripts.
  func testTorchrunLaunchesCxr() throws {
    guard let py = TestEnv.python else { throw XCTSkip("no reference Python (make setup)") }
    let torchrun = py.deletingLastPathComponent().appendingPathComponent("torchrun")
    guard FileManager.default.isExecutableFile(atPath: torchrun.path) else { throw XCTSkip("no torchrun beside \(py.path)") }
    _ = try train(try config("launched-by-cxr", accumulation: 1), ["--nproc", "2"])
    let cfg = try config("launched-by-torchrun", accumulation: 1)
    let port = 30000 + Int(getpid() % 20000)
    let p = try WatchedProcess(torchrun, ["--nproc-per-node", "2", "--master-port", String(port), "--no-python",
                                          try CXRBinary.url(for: Self.self).path, "train", cfg, "--schema", "truth", "--dist-timeout", "30"])
    XCTAssertEqual(p.wait(timeout: 300), 0, p.stderr)
    XCTAssertEqual(try weights("launched-by-torchrun"), try weights("launched-by-cxr"))
  }

  /// A soak of c10d through the C ABI (the shim compiles c10d's headers against Debian's older
  /// Gloo): seeded all-reduces (sum, max, min; coalesced lists), broadcasts from each root,
  /// all-gathers and barriers over sizes from 1 element to 2 MiB and five dtypes, every element
  /// of every result checked on both ranks.
  func testCollectivesOfManySizesAndDtypesAreExact() throws {
    let port = 21000 + Int(getpid() % 20000)
    let env = ["WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(port)]
    let ranks = try (0..<2).map { r in
      try start(["bench", "collectives", "--seconds", "8", "--max-mib", "2", "--timeout", "30"], env: env.merging(["RANK": String(r)]) { $1 })
    }
    for (r, p) in ranks.enumerated() { XCTAssertEqual(p.wait(timeout: 120), 0, "rank \(r): \(p.stderr)") }
    let record = try JSONSerialization.jsonObject(with: Data(ranks[0].stdout.utf8)) as? [String: Any]
    let counts = try XCTUnwrap(record?["collectives"] as? [String: Int], ranks[0].stdout)
    for kind in ["allreduce", "broadcast", "allgather", "barrier"] {
      XCTAssertGreaterThan(counts[kind] ?? 0, 5, "\(kind) ran: \(counts)")
    }
    XCTAssertGreaterThan(record?["elements_checked"] as? Int ?? 0, 1_000_000)
  }

  /// Two hosts: network namespaces joined by a veth pair, one rank in each, the rendezvous on
  /// the first host's address, Gloo on the veth interface; the weights equal one process with
  /// the same global batch (and so the loopback run). Needs root and iproute2, as CI has.
  func testTwoHostsJoinedByAVethPairTrainAsOne() throws {
    let tag = String(getpid() % 100_000)
    let hosts = ["cxra\(tag)", "cxrb\(tag)"], links = ["va\(tag)", "vb\(tag)"]
    let subnet = 1 + Int(getpid() % 250)
    let addresses = ["10.251.\(subnet).1", "10.251.\(subnet).2"]
    func ip(_ args: [String]) throws -> (Int32, String) {
      let p = try WatchedProcess(URL(fileURLWithPath: "/usr/sbin/ip"), args)
      return (p.wait(timeout: 20) ?? -1, p.stderr)
    }
    guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip"), getuid() == 0 else {
      throw XCTSkip("network namespaces need root and iproute2 (/usr/sbin/ip)")
    }
    let made = try ip(["netns", "add", hosts[0]])
    guard made.0 == 0 else { throw XCTSkip("cannot make a network namespace here: \(made.1)") }
    defer { for h in hosts { _ = try? ip(["netns", "delete", h]) } }  // deleting them removes the veth pair too
    var steps: [([String], String)] = [(["netns", "add", hosts[1]], "second namespace")]
    steps.append((["link", "add", links[0], "netns", hosts[0], "type", "veth", "peer", "name", links[1], "netns", hosts[1]], "veth pair"))
    for i in 0..<2 {
      steps.append((["-n", hosts[i], "addr", "add", addresses[i] + "/24", "dev", links[i]], "address \(i)"))
      steps.append((["-n", hosts[i], "link", "set", links[i], "up"], "link \(i) up"))
      steps.append((["-n", hosts[i], "link", "set", "lo", "up"], "loopback \(i) up"))
    }
    for (cmd, what) in steps {
      let r = try ip(cmd)
      XCTAssertEqual(r.0, 0, "\(what): \(r.1)")
      guard r.0 == 0 else { return }
    }
    _ = try train(try config("one-host", accumulation: 2))
    let cfg = try config("two-hosts", accumulation: 1)
    let ranks = try (0..<2).map { r in
      try WatchedProcess(URL(fileURLWithPath: "/usr/sbin/ip"),
                         ["netns", "exec", hosts[r], try CXRBinary.url(for: Self.self).path, "train", cfg, "--schema", "truth", "--dist-timeout", "30"],
                         environment: ["RANK": String(r), "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": addresses[0],
                                       "MASTER_PORT": "29500", "GLOO_SOCKET_IFNAME": links[r]])
    }
    for (r, p) in ranks.enumerated() { XCTAssertEqual(p.wait(timeout: 300), 0, "rank \(r) on \(hosts[r]): \(p.stderr)") }
    XCTAssertEqual(try weights("two-hosts"), try weights("one-host"), "two hosts train what one process with the same global batch trains")
    XCTAssertEqual(try epochRecords("two-hosts"), try epochRecords("one-host"))
  }
}
