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
  private static var previous: [Int32: sigaction] = [:]
  private static var depth = 0

  /// Installs the handlers for SIGINT and SIGTERM and remembers the ones they replace. Calls
  /// nest: a command installs them for its whole run, the training loop again inside it, and the
  /// handlers stay until the outermost `uninstall`. A second signal while a stop is pending is not swallowed: the handler restores
  /// the default action and raises it again, so a second Ctrl-C ends the process at once.
  public static func install() {
    installLock.lock(); defer { installLock.unlock() }
    _ = flag
    depth += 1
    guard previous.isEmpty else { return }
    for sig in [SIGINT, SIGTERM] {
      var action = sigaction()
      let handler: @convention(c) (Int32) -> Void = { sig in
        if StopSignal.flag.pointee != 0 {
          signal(sig, SIG_DFL)
          raise(sig)
          return
        }
        StopSignal.flag.pointee = sig
      }
      #if canImport(Glibc)
      action.__sigaction_handler.sa_handler = handler
      #else
      action.__sigaction_u.__sa_handler = handler
      #endif
      sigemptyset(&action.sa_mask)
      action.sa_flags = 0
      var old = sigaction()
      sigaction(sig, &action, &old)
      previous[sig] = old
    }
  }

  /// Puts back the handlers that `install` replaced (the loop calls it when it returns).
  public static func uninstall() {
    installLock.lock(); defer { installLock.unlock() }
    depth = max(0, depth - 1)
    guard depth == 0 else { return }
    for (sig, old) in previous {
      var o = old
      sigaction(sig, &o, nil)
    }
    previous = [:]
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
    case SIGKILL: return "SIGKILL"
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    case SIGBUS: return "SIGBUS"
    default: return "signal \(sig)"
    }
  }
}

/// A command stopped by SIGINT or SIGTERM after saving what it had done: it exits with
/// 128 + the signal number (130, 143), as shells expect, and can be resumed.
public struct Interrupted: Error, CustomStringConvertible {
  public let signal: Int32
  public let message: String
  public init(signal: Int32, message: String) { self.signal = signal; self.message = message }
  public var exitCode: Int32 { 128 + signal }
  public var description: String { message }
}
