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
  public let run: () throws -> Void

  public init(name: String, dependencies: [String] = [], inputs: @autoclosure @escaping () -> [String], outputs: [URL],
              run: @escaping () throws -> Void) {
    self.name = name
    self.dependencies = dependencies
    self.inputs = inputs
    self.outputs = outputs
    self.run = run
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

  /// Runs `stages` in the given order. `force` names stages (or prefixes like `train`) to
  /// re-run regardless. Returns the outcomes; never throws for a failing stage.
  @discardableResult
  public func run(_ stages: [Stage], force: Set<String> = []) -> [(String, StageOutcome)] {
    var byName: [String: StageOutcome] = [:]
    for stage in stages {
      if interruption == nil, let sig = StopSignal.requested {
        interruption = Interrupted(signal: sig, message: "stopped by \(StopSignal.name(sig)) between stages")
      }
      if let stop = interruption {
        record(stage.name, .interrupted("not started: \(stop.message)"), into: &byName)
        continue
      }
      let depFingerprints = stage.dependencies.map { fingerprints[$0] ?? "missing:\($0)" }
      let fp = Fingerprint.of(stage.inputs() + depFingerprints)
      // Dependents see this stage's fingerprint plus when it last finished: a stage that
      // re-ran (forced, or lost outputs) makes everything downstream re-run too.
      defer { fingerprints[stage.name] = fp + "@" + (ledger[stage.name]?.finished ?? "never") }
      if let failed = stage.dependencies.first(where: { !(byName[$0]?.succeeded ?? false) }) {
        let why = byName[failed].map { outcome -> String in
          if case .failed(let m) = outcome { return "\(failed) failed: \(m)" }
          return "\(failed) did not run"
        } ?? "\(failed) is not part of this run"
        record(stage.name, .blocked(why), into: &byName)
        continue
      }
      let forced = force.contains(stage.name) || force.contains(where: { stage.name.hasPrefix($0 + ":") })
      let done = ledger[stage.name]?.fingerprint == fp && stage.outputs.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }
      if done && !forced {
        log("[\(stage.name)] up to date, skipped")
        record(stage.name, .skipped, into: &byName)
        continue
      }
      log("[\(stage.name)] running")
      let t0 = Date()
      do {
        try stage.run()
        let missing = stage.outputs.filter { !FileManager.default.fileExists(atPath: $0.path) }
        if !missing.isEmpty {
          throw FileError("finished without writing \(missing.map(\.path).joined(separator: ", "))")
        }
        let dt = Date().timeIntervalSince(t0)
        ledger[stage.name] = LedgerEntry(fingerprint: fp, seconds: dt, finished: Pipeline.timestamp())
        try? save()
        log("[\(stage.name)] done in \(String(format: "%.1f", dt)) s")
        record(stage.name, .ran(seconds: dt), into: &byName)
      } catch let stop as Interrupted {
        // Saved and resumable, not done: the ledger keeps no entry, the next run continues it.
        ledger[stage.name] = nil
        try? save()
        interruption = stop
        log("[\(stage.name)] interrupted: \(stop.message)")
        record(stage.name, .interrupted(stop.message), into: &byName)
      } catch {
        ledger[stage.name] = nil
        try? save()
        let message = Pipeline.describe(error)
        log("[\(stage.name)] FAILED: \(message)")
        record(stage.name, .failed(message), into: &byName)
      }
    }
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
