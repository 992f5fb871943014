import Common
import Foundation
import Torch
import Train

/// Where this process stands in a data-parallel launch, read from the environment the way
/// torch.distributed's `env://` reads it: torchrun (and `cxr train --nproc`) set `RANK`,
/// `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`; Slurm's `srun`
/// sets `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, `SLURM_NTASKS_PER_NODE` and
/// `SLURM_JOB_NODELIST` (whose first host is the rendezvous unless `MASTER_ADDR` says otherwise).
public struct LaunchEnvironment: Equatable, Sendable {
  public init(rank: Int, worldSize: Int, localRank: Int, localWorldSize: Int, masterAddress: String, masterPort: Int,
              agentHostsStore: Bool, launcher: String) {
    self.rank = rank; self.worldSize = worldSize; self.localRank = localRank; self.localWorldSize = localWorldSize
    self.masterAddress = masterAddress; self.masterPort = masterPort; self.agentHostsStore = agentHostsStore; self.launcher = launcher
  }
  public var rank: Int
  public var worldSize: Int
  public var localRank: Int
  public var localWorldSize: Int
  public var masterAddress: String
  public var masterPort: Int
  /// torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True): every rank, rank 0
  /// included, joins it as a client.
  public var agentHostsStore: Bool
  /// Which launcher set it (for messages): "torchrun", "slurm".
  public var launcher: String

  /// nil when no launcher variables are set (one process).
  public static func detect(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> LaunchEnvironment? {
    func int(_ key: String) throws -> Int? {
      guard let v = env[key], !v.isEmpty else { return nil }
      guard let i = Int(v.trimmingCharacters(in: .whitespaces)), i >= 0 else {
        throw ConfigError("environment: \(key)=\(v) is not a non-negative integer (set by the launcher; check the job script)")
      }
      return i
    }
    let port = try int("MASTER_PORT") ?? 29500
    if let world = try int("WORLD_SIZE") {
      guard let rank = try int("RANK") else {
        throw ConfigError("environment: WORLD_SIZE=\(world) is set but RANK is not: a data-parallel launch sets both (torchrun does); set RANK or unset WORLD_SIZE")
      }
      guard rank < world, world >= 1 else { throw ConfigError("environment: RANK=\(rank) is not below WORLD_SIZE=\(world)") }
      guard let addr = env["MASTER_ADDR"], !addr.isEmpty else {
        throw ConfigError("environment: WORLD_SIZE=\(world) is set but MASTER_ADDR is not: set it to rank 0's host (torchrun does)")
      }
      return LaunchEnvironment(rank: rank, worldSize: world, localRank: try int("LOCAL_RANK") ?? 0,
                               localWorldSize: try int("LOCAL_WORLD_SIZE") ?? 1, masterAddress: addr, masterPort: port,
                               agentHostsStore: env["TORCHELASTIC_USE_AGENT_STORE"] == "True", launcher: env["TORCHELASTIC_RUN_ID"] != nil ? "torchrun" : "environment")
    }
    if let world = try int("SLURM_NTASKS"), let rank = try int("SLURM_PROCID") {
      guard world > 1 else { return nil }
      let addr: String
      if let a = env["MASTER_ADDR"], !a.isEmpty { addr = a } else {
        guard let list = env["SLURM_JOB_NODELIST"] ?? env["SLURM_NODELIST"], let first = SlurmNodeList.firstHost(list) else {
          throw ConfigError("environment: a Slurm job step of \(world) tasks without SLURM_JOB_NODELIST or MASTER_ADDR: set MASTER_ADDR to the first node")
        }
        addr = first
      }
      let perNode = (env["SLURM_NTASKS_PER_NODE"] ?? env["SLURM_TASKS_PER_NODE"]).flatMap { Int($0.prefix { $0.isNumber }) } ?? 1
      return LaunchEnvironment(rank: rank, worldSize: world, localRank: try int("SLURM_LOCALID") ?? 0, localWorldSize: perNode,
                               masterAddress: addr, masterPort: port, agentHostsStore: false, launcher: "slurm")
    }
    return nil
  }

  /// The process group of this rank (Gloo on the CPU, NCCL for CUDA training).
  public func join(backend: ProcessGroup.Backend, timeout: Double) throws -> ProcessGroup {
    do {
      return try ProcessGroup(host: masterAddress, port: masterPort, isServer: rank == 0 && !agentHostsStore, worldSize: worldSize,
                              rank: rank, backend: backend, glooInterface: ProcessInfo.processInfo.environment["GLOO_SOCKET_IFNAME"],
                              storePrefix: "cxr/", timeout: timeout)
    } catch {
      throw TrainError("rank \(rank) of \(worldSize): cannot join the rendezvous at \(masterAddress):\(masterPort) (\(error)); check that every rank started, that MASTER_ADDR/MASTER_PORT name rank 0's host and a free port, and the firewall")
    }
  }
}

/// Slurm's compressed host lists ("gpu[01-04,07],cpu3").
public enum SlurmNodeList {
  public static func firstHost(_ list: String) -> String? {
    let s = list.trimmingCharacters(in: .whitespaces)
    guard !s.isEmpty else { return nil }
    // The first item: up to a comma outside brackets.
    var depth = 0, end = s.endIndex
    for i in s.indices {
      if s[i] == "[" { depth += 1 } else if s[i] == "]" { depth -= 1 } else if s[i] == ",", depth == 0 { end = i; break }
    }
    let item = s[..<end]
    guard let open = item.firstIndex(of: "[") else { return String(item) }
    let prefix = item[..<open]
    let inner = item[item.index(after: open)...].prefix { $0 != "]" }
    let firstRange = inner.split(separator: ",").first.map(String.init) ?? ""
    let first = firstRange.split(separator: "-").first.map(String.init) ?? ""
    let suffix = item.firstIndex(of: "]").map { String(item[item.index(after: $0)...]) } ?? ""
    return prefix + first + suffix
  }
}

/// `cxr train --nproc N`: one node, N worker processes of this same binary (like `torchrun
/// --standalone --nproc-per-node N`), each told its rank through the environment. A worker that
/// fails stops the others (SIGTERM, then SIGKILL after `grace` seconds); a signal to the
/// launcher goes to every worker, which stop after rank 0 wrote its checkpoint. The exit status
/// is the first failing worker's (128 + signal for one killed by a signal), 0 when all succeed.
public struct LocalLauncher {
  public var processes: Int
  public var arguments: [String]
  public var grace: Double = 30
  public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

  public init(processes: Int, arguments: [String]) { self.processes = processes; self.arguments = arguments }

  /// A TCP port nobody listens on now (the rendezvous picks it up right after).
  static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FileError("cannot open a socket to find a free port: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw FileError("cannot find a free TCP port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: addr.sin_port))
  }

  public func run() throws -> Int32 {
    let port = try Self.freePort()
    let exe = ChildProcess.currentExecutable
    var base = ProcessInfo.processInfo.environment
    base["MASTER_ADDR"] = "127.0.0.1"; base["MASTER_PORT"] = String(port)
    base["WORLD_SIZE"] = String(processes); base["LOCAL_WORLD_SIZE"] = String(processes)
    base.removeValue(forKey: "TORCHELASTIC_USE_AGENT_STORE")
    StopSignal.install()
    defer { StopSignal.uninstall() }
    var pids: [pid_t] = []
    for r in 0..<processes {
      var env = base
      env["RANK"] = String(r); env["LOCAL_RANK"] = String(r)
      do { pids.append(try ChildProcess.spawn(exe, arguments, environment: env).pid) } catch {
        for p in pids { kill(p, SIGKILL) }
        throw FileError("cannot start worker \(r) (\(exe)): \(error)")
      }
    }
    var status = [Int32?](repeating: nil, count: processes)
    var firstFailure: (rank: Int, code: Int32)?
    var stopSentAt: Date?, forwarded = false
    while status.contains(where: { $0 == nil }) {
      for (r, pid) in pids.enumerated() where status[r] == nil {
        var st: Int32 = 0
        let w = waitpid(pid, &st, WNOHANG)
        guard w == pid else { continue }
        let code = ChildProcess.exitCode(st)
        status[r] = code
        if code != 0 && firstFailure == nil && !forwarded {
          firstFailure = (r, code)
          let how = (st & 0x7f) == 0 ? "exited with status \(code)" : "was killed by \(StopSignal.name(st & 0x7f))"
          log("cxr --nproc: worker \(r) (pid \(pid)) \(how); stopping the other workers")
        }
      }
      if let sig = StopSignal.requested, !forwarded {
        forwarded = true
        for (r, pid) in pids.enumerated() where status[r] == nil { kill(pid, sig) }
      }
      if firstFailure != nil && stopSentAt == nil {
        stopSentAt = Date()
        for (r, pid) in pids.enumerated() where status[r] == nil { kill(pid, SIGTERM) }
      }
      if let t = stopSentAt, Date().timeIntervalSince(t) > grace {
        for (r, pid) in pids.enumerated() where status[r] == nil { kill(pid, SIGKILL) }
      }
      usleep(50_000)
    }
    if let f = firstFailure { return f.code }
    return status.compactMap { $0 }.first { $0 != 0 } ?? 0
  }
}

/// Starting this binary again as a child: in a process group of its own, so a Ctrl-C at the
/// terminal reaches only the parent, which passes one signal on (a second signal would end a
/// child at once, before its checkpoint); optionally with its output through a pipe.
public enum ChildProcess {
  /// This program's executable.
  public static var currentExecutable: String { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path }

  /// Spawns `exe` with `arguments` and exactly `environment`; with `captureOutput` its stdout
  /// and stderr go to one pipe whose reading end is returned.
  public static func spawn(_ exe: String, _ arguments: [String], environment: [String: String],
                           captureOutput: Bool = false) throws -> (pid: pid_t, output: FileHandle?) {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attr, 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var fds: [Int32] = [-1, -1]
    if captureOutput {
      guard pipe(&fds) == 0 else { throw FileError("cannot make a pipe: \(String(cString: strerror(errno)))") }
      posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
      posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
      posix_spawn_file_actions_addclose(&actions, fds[0])
      posix_spawn_file_actions_addclose(&actions, fds[1])
    }
    let argv = ([exe] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, exe, &actions, &attr, argv, envp)
    if captureOutput { close(fds[1]) }
    guard rc == 0 else {
      if captureOutput { close(fds[0]) }
      throw FileError(String(cString: strerror(rc)))
    }
    return (pid, captureOutput ? FileHandle(fileDescriptor: fds[0], closeOnDealloc: true) : nil)
  }

  /// The exit status as a shell reports it: the code, or 128 + the signal that ended it.
  public static func exitCode(_ status: Int32) -> Int32 { (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
}

/// A cxr command that `cxr run` runs as a child process (a schema's training or prediction on a
/// device of its own): its output lines are logged with the stage's name, a stop signal to
/// `cxr run` is passed on once, and its exit status becomes the stage's outcome: 0 done,
/// 130/143 interrupted (saved, resumable), anything else a failure carrying its error line.
public struct ChildCommand {
  public var arguments: [String]
  public var environment: [String: String] = [:]
  public var label: String
  public var executable = ChildProcess.currentExecutable
  public var log: (String) -> Void

  public init(arguments: [String], environment: [String: String] = [:], label: String, log: @escaping (String) -> Void) {
    self.arguments = arguments; self.environment = environment; self.label = label; self.log = log
  }

  public func run() throws {
    let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let (pid, output) = try ChildProcess.spawn(executable, arguments, environment: env, captureOutput: true)
    // Lines are read on a thread of their own, so a chatty child never blocks on a full pipe.
    let reader = LineReader(output!, label: label, log: log)
    let thread = Thread { reader.readAll() }
    thread.start()
    var status: Int32 = 0, forwarded = false
    while true {
      let w = waitpid(pid, &status, WNOHANG)
      if w == pid { break }
      if w < 0 && errno != EINTR { throw FileError("\(label): lost track of child \(pid): \(String(cString: strerror(errno)))") }
      if let sig = StopSignal.requested, !forwarded { forwarded = true; kill(pid, sig) }
      usleep(50_000)
    }
    reader.waitForEnd(timeout: 10)
    let code = ChildProcess.exitCode(status)
    if code == 0 { return }
    if code == 128 + SIGINT || code == 128 + SIGTERM {
      throw Interrupted(signal: code - 128, message: "\(label) stopped by \(StopSignal.name(code - 128)) after saving its work")
    }
    let why = reader.lastError ?? "no message"
    throw UserError("cxr \(arguments.prefix(1).joined()) for \(label) exited with status \(code): \(why)")
  }
}

/// Splits a child's output into lines, logs each with a label, remembers the last error line.
final class LineReader: @unchecked Sendable {
  let handle: FileHandle
  let label: String
  let log: (String) -> Void
  private let lock = NSCondition()
  private var ended = false
  private var lastErrorLine: String?

  init(_ handle: FileHandle, label: String, log: @escaping (String) -> Void) { self.handle = handle; self.label = label; self.log = log }

  var lastError: String? { lock.lock(); defer { lock.unlock() }; return lastErrorLine }

  func readAll() {
    var pending = Data()
    while true {
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      pending.append(chunk)
      while let nl = pending.firstIndex(of: 10) {
        emit(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
        pending.removeSubrange(pending.startIndex...nl)
      }
    }
    if !pending.isEmpty { emit(String(decoding: pending, as: UTF8.self)) }
    lock.lock(); ended = true; lock.broadcast(); lock.unlock()
  }

  func emit(_ line: String) {
    // Progress bars redraw with carriage returns; keep the last state of the line.
    let text = line.split(separator: "\r", omittingEmptySubsequences: true).last.map(String.init) ?? ""
    if text.hasPrefix("Error: ") { lock.lock(); lastErrorLine = String(text.dropFirst(7)); lock.unlock() }
    log("[\(label)] \(text)")
  }

  func waitForEnd(timeout: Double) {
    lock.lock(); defer { lock.unlock() }
    let end = Date().addingTimeInterval(timeout)
    while !ended && lock.wait(until: end) {}
  }
}
