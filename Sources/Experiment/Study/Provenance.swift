import Common
import Foundation
import Torch

/// What made a number: the cxr build, the libtorch it ran on and the device. Written into
/// checkpoints (safetensors metadata), `training.json`, the header of `predictions.csv` and the
/// study report.
public struct Provenance: Codable, Equatable, Sendable {
  public var cxr: String
  public var libtorch: String
  public var device: String

  public init(device: Device) {
    cxr = BuildInfo.version
    libtorch = Runtime.version
    self.device = device.description
  }

  public var description: String { "cxr \(cxr), libtorch \(libtorch), device \(device)" }

  /// Safetensors metadata keys.
  public var metadata: [String: String] { ["cxr_version": cxr, "libtorch_version": libtorch, "device": device] }

  /// UTC time as ISO 8601, for records.
  public static func now() -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date())
  }
}
