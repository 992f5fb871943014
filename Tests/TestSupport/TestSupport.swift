import Foundation

/// Helpers shared by the test targets: the project root, scratch folders, and the
/// test-only Python reference environment (PyTorch, timm, scikit-learn, MONAI, ...).
public enum TestEnv {
  /// The package root (two folders above this file).
  public static let root: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The reference Python: `CXR_PYTHON`, else the project-local venv made by `make setup`.
  public static var python: URL? {
    if let p = ProcessInfo.processInfo.environment["CXR_PYTHON"], FileManager.default.isExecutableFile(atPath: p) {
      return URL(fileURLWithPath: p)
    }
    let local = root.appendingPathComponent(".deps/venv/bin/python")
    return FileManager.default.isExecutableFile(atPath: local.path) ? local : nil
  }

  /// A fresh empty folder under the system temp dir, removed when the test process exits (a CI
  /// machine ran up a thousand of them a day); `CXR_KEEP_SCRATCH=1` keeps them to look at.
  public static func scratch(_ name: String = "cxr-test") throws -> URL {
    let dir = FileManager.default.temporaryDirectory
      .appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    Scratch.remember(dir)
    return dir
  }
}

/// The scratch folders of this process, for removal at exit.
private enum Scratch {
  nonisolated(unsafe) static var folders: [URL] = []
  static let lock = NSLock()
  static let removeAtExit: Void = {
    guard ProcessInfo.processInfo.environment["CXR_KEEP_SCRATCH"] != "1" else { return }
    atexit {
      Scratch.lock.lock()
      for dir in Scratch.folders { try? FileManager.default.removeItem(at: dir) }
      Scratch.lock.unlock()
    }
  }()

  static func remember(_ dir: URL) {
    _ = removeAtExit
    lock.lock(); folders.append(dir); lock.unlock()
  }
}

public struct PythonError: Error, CustomStringConvertible {
  public let description: String
}

/// Runs reference scripts with the project's Python. Parity tests call it; they fail
/// (not skip) when the environment is missing, since `make test` always installs it.
public enum Python {
  /// Prelude that every script gets: the CPU torch wheel plus PyPI's torchvision would die
  /// registering fake kernels for torchvision::nms/qnms; defining their schemas first avoids it.
  public static let prelude = """
    import sys, os, json
    def _cxr_fix_torchvision():
        try:
            import torch
        except ImportError:
            return
        try:
            lib = torch.library.Library('torchvision', 'DEF')
            lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
            lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
            globals()['_cxr_tv_lib'] = lib
        except Exception:
            pass
    _cxr_fix_torchvision()

    """

  /// Runs `script` with `args`; returns stdout. Throws with stderr on a non-zero exit.
  @discardableResult
  public static func run(_ script: String, args: [String] = [], cwd: URL? = nil) throws -> String {
    guard let py = TestEnv.python else {
      throw PythonError(description: "reference Python not found: run `make setup` (it creates .deps/venv)")
    }
    let dir = try TestEnv.scratch("cxr-py")
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("script.py")
    try (prelude + script).write(to: file, atomically: true, encoding: .utf8)
    let p = Process()
    p.executableURL = py
    p.arguments = [file.path] + args
    if let cwd { p.currentDirectoryURL = cwd }
    var env = ProcessInfo.processInfo.environment
    env["OMP_NUM_THREADS"] = env["OMP_NUM_THREADS"] ?? "2"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes before waiting, so a chatty script cannot block on a full pipe.
    var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    let stdout = String(decoding: outData, as: UTF8.self)
    if p.terminationStatus != 0 {
      throw PythonError(description: "python exited \(p.terminationStatus):\n\(String(decoding: errData, as: UTF8.self))")
    }
    return stdout
  }

  /// Runs a script that prints one JSON document on its last stdout line.
  public static func json(_ script: String, args: [String] = []) throws -> Any {
    let out = try run(script, args: args)
    let last = out.split(separator: "\n").last.map(String.init) ?? ""
    return try JSONSerialization.jsonObject(with: Data(last.utf8))
  }
}

/// The built `cxr` binary (swift build puts it beside the test bundle), run as a user would.
public enum CXRBinary {
  public static func url(for testCase: AnyClass) throws -> URL {
    let dirs = [Bundle.main.bundleURL, Bundle(for: testCase).bundleURL.deletingLastPathComponent(),
                URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    for d in dirs where FileManager.default.isExecutableFile(atPath: d.appendingPathComponent("cxr").path) {
      return d.appendingPathComponent("cxr")
    }
    throw MissingBinary(description: "cxr binary not found beside the tests (looked in \(dirs.map(\.path))); run swift build first")
  }

  /// Runs `cxr args...`; returns the exit status, stdout and stderr. A process still running after
  /// `timeout` seconds is killed (status 137), so a hang in the code under test fails the test
  /// instead of stopping the suite.
  public static func run(_ args: [String], for testCase: AnyClass, timeout: Double = 900) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = try url(for: testCase)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let pid = p.processIdentifier
    let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    defer { watchdog.cancel() }
    var e = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { e = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
  }
}

public struct MissingBinary: Error, CustomStringConvertible {
  public let description: String
}

/// A `cxr` process a test watches and signals: its stderr is read as it comes, every wait has
/// a deadline, and a process still running at the end is killed (no test can hang on it).
public final class WatchedProcess {
  public let process = Process()
  private let lock = NSLock()
  private var errText = ""
  private var outText = ""

  /// `environment` entries are added to this process's environment.
  public init(_ executable: URL, _ args: [String], cwd: URL? = nil, environment: [String: String] = [:]) throws {
    process.executableURL = executable
    process.arguments = args
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let cwd { process.currentDirectoryURL = cwd }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    err.fileHandleForReading.readabilityHandler = { [weak self] h in
      let d = h.availableData
      guard let self, !d.isEmpty else { return }
      self.lock.lock(); self.errText += String(decoding: d, as: UTF8.self); self.lock.unlock()
    }
    out.fileHandleForReading.readabilityHandler = { [weak self] h in
      let d = h.availableData
      guard let self, !d.isEmpty else { return }
      self.lock.lock(); self.outText += String(decoding: d, as: UTF8.self); self.lock.unlock()
    }
    try process.run()
  }

  deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

  public var stderr: String { lock.lock(); defer { lock.unlock() }; return errText }
  public var stdout: String { lock.lock(); defer { lock.unlock() }; return outText }

  /// Waits until stderr matches `predicate` (true) or the process ends or the deadline passes (false).
  public func waitForStderr(timeout: Double, _ predicate: (String) -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
      if predicate(stderr) { return true }
      if !process.isRunning { return predicate(stderr) }
      usleep(2_000)
    }
    return false
  }

  /// Waits until stdout matches `predicate` (true) or the process ends or the deadline passes (false).
  public func waitForStdout(timeout: Double, _ predicate: (String) -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
      if predicate(stdout) { return true }
      if !process.isRunning { return predicate(stdout) }
      usleep(2_000)
    }
    return false
  }

  public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

  /// The exit status, or nil when the deadline passed (the process is then killed).
  public func wait(timeout: Double) -> Int32? {
    let end = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < end { usleep(5_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
    process.waitUntilExit()
    usleep(20_000)  // let the pipes' last bytes arrive
    return process.terminationStatus
  }
}
