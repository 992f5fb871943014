import Foundation

/// Why an image could not be read. `description` names the file and says what to do; the
/// loader writes `kind` and `reason` to bad_files.csv.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
  public enum Kind: String, Sendable {
    case missing          // no such file
    case unreadable       // exists but cannot be read (permissions, I/O)
    case unknownFormat    // not JPEG, PNG or DICOM
    case corrupt          // truncated or damaged data
    case unsupported      // a valid file of a kind we do not handle (CMYK, colour DICOM ...)
    case dicomUnavailable // DICOM support (libcxt_dicom.so / GDCM) is not installed
  }
  public let path: String
  public let kind: Kind
  public let reason: String

  public init(path: String, kind: Kind, reason: String) {
    self.path = path
    self.kind = kind
    self.reason = reason
  }

  public var description: String { "\(path): \(reason)" }
}
