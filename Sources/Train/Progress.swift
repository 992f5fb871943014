import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress for people: a live bar on a terminal, plain periodic lines otherwise.
public final class ProgressReporter {
  public let live: Bool
  let interval: Double
  let write: (String) -> Void
  private var lastLine = Date.distantPast
  private var drawn = false

  /// `live` nil: a bar when standard error is a terminal. `write` defaults to standard error.
  public init(live: Bool? = nil, interval: Double = 30, write: ((String) -> Void)? = nil) {
    self.live = live ?? (isatty(STDERR_FILENO) != 0)
    self.interval = interval
    self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
  }

  public struct Status {
    public var epoch: Int, epochs: Int, step: Int, batch: Int, batches: Int
    public var imagesPerSecond: Double, loss: Double, etaSeconds: Double
  }

  static func clock(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "--:--" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
  }

  static func text(_ s: Status) -> String {
    String(format: "epoch %d/%d  batch %d/%d  step %d  %.1f img/s  loss %.4f  eta %@",
           s.epoch + 1, s.epochs, s.batch, s.batches, s.step, s.imagesPerSecond, s.loss, clock(s.etaSeconds))
  }

  public func update(_ s: Status) {
    if live {
      let width = 24, filled = s.batches > 0 ? min(width, width * s.batch / s.batches) : 0
      let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
      write("\r\u{1B}[K[\(bar)] " + Self.text(s))
      drawn = true
    } else if Date().timeIntervalSince(lastLine) >= interval {
      lastLine = Date()
      write(Self.text(s) + "\n")
    }
  }

  /// A message on its own line (ends the live bar's line first).
  public func message(_ text: String) {
    if drawn { write("\n"); drawn = false }
    write(text + "\n")
    lastLine = Date()
  }
}

/// Resident memory of this process from /proc/self/status: (current, peak) in MiB; zeros elsewhere.
public func residentMemoryMiB() -> (current: Double, peak: Double) {
  guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
  func field(_ name: String) -> Double {
    guard let line = s.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
    let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
    return kb / 1024
  }
  return (field("VmRSS"), field("VmHWM"))
}

/// CPU seconds (user + system) this process has used so far.
public func processCPUSeconds() -> Double {
  var u = rusage()
  #if canImport(Glibc)
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
  #else
  getrusage(RUSAGE_SELF, &u)
  #endif
  return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}
