import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT/SIGTERM as a flag the loop polls after each optimizer step: the handler only stores
/// the signal number (async-signal-safe); the loop finishes the step, writes a checkpoint and stops.
public enum StopSignal {
  /// Written by the handler; 0 = no request. A plain C int: the only thing a handler may touch.
  private static let flag: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
  }()
  private static let installLock = NSLock()
  private static var installed = false

  /// Installs the handlers for SIGINT and SIGTERM (idempotent).
  public static func install() {
    installLock.lock(); defer { installLock.unlock() }
    _ = flag
    guard !installed else { return }
    installed = true
    for sig in [SIGINT, SIGTERM] {
      var action = sigaction()
      #if canImport(Glibc)
      action.__sigaction_handler.sa_handler = { StopSignal.flag.pointee = $0 }
      #else
      action.__sigaction_u.__sa_handler = { StopSignal.flag.pointee = $0 }
      #endif
      sigemptyset(&action.sa_mask)
      action.sa_flags = 0
      sigaction(sig, &action, nil)
    }
  }

  /// The signal number that asked to stop, or nil.
  public static var requested: Int32? { let v = flag.pointee; return v == 0 ? nil : v }
  /// Asks the loop to stop as a signal would (tests, embedding programs).
  public static func request(_ signal: Int32 = SIGTERM) { flag.pointee = signal }
  public static func reset() { flag.pointee = 0 }

  public static func name(_ sig: Int32) -> String {
    switch sig {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    default: return "signal \(sig)"
    }
  }
}
