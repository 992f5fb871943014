import Common
import Foundation

/// One step of a study (train a schema, predict with it, evaluate, report). It is skipped
/// when its outputs exist and the fingerprint of what made them is unchanged.
public struct Stage {
  public let name: String
  /// Stages whose outputs this one reads; if one of them fails, this one is not run.
  public let dependencies: [String]
  /// Everything that determines the outputs: settings, input files' fingerprints, and (added
  /// by the pipeline) the dependencies' fingerprints. Computed when the stage is reached, so
  /// it can fingerprint files that earlier stages wrote.
  public let inputs: () -> [String]
  /// Files the stage writes; all must exist for the stage to count as done.
  public let outputs: [URL]
  /// Waits for every stage before it and runs alone (e.g. the evaluation, which reads what all
  /// of them wrote). With one lane every stage runs this way.
  public let exclusive: Bool
  /// The work, given the lane (0 ..< lanes: the device) it runs on.
  public let body: (Int) throws -> Void

  public init(name: String, dependencies: [String] = [], inputs: @autoclosure @escaping () -> [String], outputs: [URL],
              exclusive: Bool = false, run: @escaping () throws -> Void) {
    self.init(name: name, dependencies: dependencies, inputs: inputs(), outputs: outputs, exclusive: exclusive) { _ in try run() }
  }

  public init(name: String, dependencies: [String] = [], inputs: @autoclosure @escaping () -> [String], outputs: [URL],
              exclusive: Bool = false, runOnLane: @escaping (Int) throws -> Void) {
    self.name = name
    self.dependencies = dependencies
    self.inputs = inputs
    self.outputs = outputs
    self.exclusive = exclusive
    self.body = runOnLane
  }
}

/// What happened to a stage in one `Pipeline.run`.
public enum StageOutcome: Equatable {
  case ran(seconds: Double)
  case skipped            // up to date
  case failed(String)
  case blocked(String)    // a dependency failed
  case interrupted(String) // stopped by a signal (saved, resumable), or not started after one

  public var succeeded: Bool {
    switch self {
    case .ran, .skipped: return true
    default: return false
    }
  }
}

/// Runs stages in order, recording each finished stage's fingerprint in `<folder>/stages.json`.
public final class Pipeline {
  public let ledgerURL: URL
  private var ledger: [String: LedgerEntry]
  public private(set) var outcomes: [(String, StageOutcome)] = []
  /// The signal that stopped the run, if one did: the stages after it were not started.
  public private(set) var interruption: Interrupted?
  private var fingerprints: [String: String] = [:]
  /// Called before and after each stage (for progress lines).
  public var log: (String) -> Void = { print($0) }

  struct LedgerEntry: Codable, Equatable {
    var fingerprint: String
    var seconds: Double
    var finished: String
  }

  public init(folder: URL) throws {
    ledgerURL = folder.appendingPathComponent("stages.json")
    if let data = try? Data(contentsOf: ledgerURL) {
      do { ledger = try JSONDecoder().decode([String: LedgerEntry].self, from: data) } catch {
        throw FileError("\(ledgerURL.path) is damaged (\(error)); delete it to re-run every stage")
      }
    } else {
      ledger = [:]
    }
  }

  /// Runs `stages`, at most `lanes` at once (one per device): a stage starts when its
  /// dependencies have finished and a lane is free; an `exclusive` stage waits for every stage
  /// before it. With one lane (the default) they run one after the other in the given order.
  /// `force` names stages (or prefixes like `train`) to re-run regardless. Returns the outcomes
  /// in the stages' order; never throws for a failing stage.
  @discardableResult
  public func run(_ stages: [Stage], force: Set<String> = [], lanes: Int = 1) -> [(String, StageOutcome)] {
    let lanes = max(1, lanes)
    var byName: [String: StageOutcome] = [:]
    var order: [String: Int] = [:]
    for (i, s) in stages.enumerated() { order[s.name] = i }
    var pending = Array(stages.indices)
    var running: [Int: (lane: Int, fingerprint: String, started: Date)] = [:]
    var freeLanes = Array((0..<lanes).reversed())
    // What the lanes' threads hand back: stage index, and the outcome of its work.
    let finished = Mailbox()

    func finish(_ i: Int, _ result: Result<Void, Error>) {
      let stage = stages[i]
      let (lane, fp, t0) = running.removeValue(forKey: i)!
      freeLanes.append(lane)
      do {
        try result.get()
        let missing = stage.outputs.filter { !FileManager.default.fileExists(atPath: $0.path) }
        if !missing.isEmpty { throw FileError("finished without writing \(missing.map(\.path).joined(separator: ", "))") }
        let dt = Date().timeIntervalSince(t0)
        ledger[stage.name] = LedgerEntry(fingerprint: fp, seconds: dt, finished: Pipeline.timestamp())
        try? save()
        log("[\(stage.name)] done in \(String(format: "%.1f", dt)) s")
        record(stage.name, .ran(seconds: dt), into: &byName)
      } catch let stop as Interrupted {
        // Saved and resumable, not done: the ledger keeps no entry, the next run continues it.
        ledger[stage.name] = nil
        try? save()
        if interruption == nil { interruption = stop }
        log("[\(stage.name)] interrupted: \(stop.message)")
        record(stage.name, .interrupted(stop.message), into: &byName)
      } catch {
        ledger[stage.name] = nil
        try? save()
        let message = Pipeline.describe(error)
        log("[\(stage.name)] FAILED: \(message)")
        record(stage.name, .failed(message), into: &byName)
      }
      // Dependents see this stage's fingerprint plus when it last finished: a stage that
      // re-ran (forced, or lost outputs) makes everything downstream re-run too.
      fingerprints[stage.name] = fp + "@" + (ledger[stage.name]?.finished ?? "never")
    }

    while !pending.isEmpty || !running.isEmpty {
      for f in finished.take() { finish(f.index, f.result) }
      let pendingBefore = pending.count
      var k = 0
      scan: while k < pending.count {
        let i = pending[k], stage = stages[i]
        if interruption == nil, let sig = StopSignal.requested {
          // Running stages heard the signal too and stop after saving; nothing new starts.
          interruption = Interrupted(signal: sig, message: "stopped by \(StopSignal.name(sig)) between stages")
        }
        if let stop = interruption {
          record(stage.name, .interrupted("not started: \(stop.message)"), into: &byName)
          pending.remove(at: k)
          continue
        }
        let alone = stage.exclusive || lanes == 1
        if alone && (!running.isEmpty || pending[0] != i) { break scan }
        // A stage waits for its dependencies (those of this run) to finish.
        if stage.dependencies.contains(where: { order[$0] != nil && byName[$0] == nil }) { k += 1; continue }
        let depFingerprints = stage.dependencies.map { fingerprints[$0] ?? "missing:\($0)" }
        let fp = Fingerprint.of(stage.inputs() + depFingerprints)
        if let failed = stage.dependencies.first(where: { !(byName[$0]?.succeeded ?? false) }) {
          let why = byName[failed].map { outcome -> String in
            if case .failed(let m) = outcome { return "\(failed) failed: \(m)" }
            return "\(failed) did not run"
          } ?? "\(failed) is not part of this run"
          record(stage.name, .blocked(why), into: &byName)
          fingerprints[stage.name] = fp + "@" + (ledger[stage.name]?.finished ?? "never")
          pending.remove(at: k)
          continue
        }
        let forced = force.contains(stage.name) || force.contains(where: { stage.name.hasPrefix($0 + ":") })
        let upToDate = ledger[stage.name]?.fingerprint == fp && stage.outputs.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }
        if upToDate && !forced {
          log("[\(stage.name)] up to date, skipped")
          record(stage.name, .skipped, into: &byName)
          fingerprints[stage.name] = fp + "@" + (ledger[stage.name]?.finished ?? "never")
          pending.remove(at: k)
          continue
        }
        guard let lane = freeLanes.popLast() else { break scan }
        pending.remove(at: k)
        running[i] = (lane, fp, Date())
        log(lanes == 1 ? "[\(stage.name)] running" : "[\(stage.name)] running (lane \(lane))")
        if lanes == 1 {
          // One lane: on this thread, as a plain sequence of stages.
          finish(i, Result { try stage.body(lane) })
          continue scan
        }
        let thread = Thread { finished.put(i, Result { try stage.body(lane) }) }
        thread.stackSize = 8 << 20
        thread.start()
      }
      if running.isEmpty {
        // Nothing runs and nothing could start: what is left waits on stages after it.
        if !pending.isEmpty && pending.count == pendingBefore {
          for i in pending { record(stages[i].name, .blocked("its dependencies come after it in the stage list"), into: &byName) }
          pending = []
        }
        continue
      }
      finished.wait(seconds: 0.1)
    }
    outcomes.sort { (order[$0.0] ?? 0) < (order[$1.0] ?? 0) }
    return outcomes
  }

  /// The message a user should read: our errors' descriptions, Foundation's localized text.
  static func describe(_ error: Error) -> String {
    if type(of: error) is NSError.Type { return (error as NSError).localizedDescription }
    return "\(error)"
  }

  /// Wall-clock time with microseconds, so two runs within a second still differ.
  static func timestamp() -> String {
    var tv = timeval()
    gettimeofday(&tv, nil)
    return "\(tv.tv_sec).\(String(format: "%06d", Int(tv.tv_usec)))"
  }

  /// Seconds a stage took when it last ran (for the report's timings).
  public func seconds(of stage: String) -> Double? { ledger[stage]?.seconds }

  private func record(_ name: String, _ o: StageOutcome, into byName: inout [String: StageOutcome]) {
    byName[name] = o
    outcomes.append((name, o))
  }

  private func save() throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(try enc.encode(ledger), to: ledgerURL)
  }
}

/// Stage results handed from the lanes' threads to the pipeline's.
final class Mailbox: @unchecked Sendable {
  private let lock = NSCondition()
  private var items: [(index: Int, result: Result<Void, Error>)] = []
  func put(_ index: Int, _ result: Result<Void, Error>) { lock.lock(); items.append((index, result)); lock.signal(); lock.unlock() }
  func take() -> [(index: Int, result: Result<Void, Error>)] { lock.lock(); defer { items = []; lock.unlock() }; return items }
  /// Until something arrives or `seconds` pass.
  func wait(seconds: Double) {
    lock.lock(); defer { lock.unlock() }
    if items.isEmpty { _ = lock.wait(until: Date().addingTimeInterval(seconds)) }
  }
}

/// Change detection: a 128-bit FNV-1a hash of strings, and cheap file fingerprints.
public enum Fingerprint {
  public static func of(_ parts: [String]) -> String {
    var h = Hasher128()
    for p in parts { h.add(p.utf8); h.separate() }
    return h.hex
  }

  struct Hasher128 {
    var h1: UInt64 = 0xcbf2_9ce4_8422_2325, h2: UInt64 = 0x6c62_272e_07bb_0142
    mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
      for b in bytes {
        h1 = (h1 ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        h2 = (h2 ^ UInt64(b)) &* 0x0000_0100_0000_01b3 &+ 0x9e37_79b9
      }
    }
    /// A separator, so ["ab","c"] and ["a","bc"] differ.
    mutating func separate() {
      h1 = (h1 ^ 0xff) &* 0x0000_0100_0000_01b3
      h2 = (h2 ^ 0xfe) &* 0x0000_0100_0000_01b3
    }
    var hex: String { String(format: "%016llx%016llx", h1, h2) }
  }

  /// A file's content hash (files up to 64 MiB; larger ones by size and mtime), or "absent".
  public static func file(_ url: URL) -> String {
    guard let attrs = try? FileManager.default.attributesOfItem(atPath: url.path) else { return "absent:\(url.path)" }
    let size = (attrs[.size] as? NSNumber)?.intValue ?? 0
    if size <= 64 << 20, let data = try? Data(contentsOf: url) {
      var h = Hasher128()
      h.add(data)
      return "\(url.path):\(h.hex)"
    }
    let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    return "\(url.path):\(size):\(mtime)"
  }
}
