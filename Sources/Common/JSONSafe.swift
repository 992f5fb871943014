import Foundation

/// JSON has no NaN or infinity, and `JSONSerialization` throws on them: a diverged run's
/// metrics would end the run in a log write. Non-finite numbers become `null` instead.
public enum JSONSafe {
  public static func value(_ v: Any) -> Any {
    switch v {
    case let d as Double: return d.isFinite ? d : NSNull()
    case let f as Float: return f.isFinite ? Double(f) : NSNull()
    case let m as [String: Any]: return m.mapValues(value)
    case let a as [Any]: return a.map(value)
    default: return v
    }
  }
}
