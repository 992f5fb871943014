import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A cheap look at image files before a long run: present, non-empty, and starting like a
/// JPEG, PNG or DICOM. Decoding problems beyond the header are the loader's to report.
public enum FileCheck {
  public enum Problem: String, Sendable {
    case missing = "missing"
    case empty = "empty"
    case unreadable = "unreadable"
    case unknownFormat = "not a JPEG, PNG or DICOM file"
  }

  public struct Finding: Equatable, Sendable {
    public var record: ImageRecord
    public var problem: Problem
  }

  /// The problem with the file at `path`, or nil when it looks like an image.
  public static func check(_ path: String) -> Problem? {
    let fd = open(path, O_RDONLY)
    if fd < 0 { return errno == ENOENT || errno == ENOTDIR ? .missing : .unreadable }
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: 132)
    let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, 132) }
    if n < 0 { return .unreadable }
    if n == 0 { return .empty }
    if n >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return nil }
    if n >= 8, head[0] == 0x89, head[1] == 0x50, head[2] == 0x4E, head[3] == 0x47 { return nil }
    if n >= 132, head[128] == 0x44, head[129] == 0x49, head[130] == 0x43, head[131] == 0x4D { return nil }
    // DICOM without the 128-byte preamble starts with a group 0002 or 0008 tag (little endian).
    if n >= 4, (head[0] == 0x02 || head[0] == 0x08), head[1] == 0x00 { return nil }
    return .unknownFormat
  }

  /// Checks every record's file, in parallel; the result is in record order.
  public static func scan(_ records: [ImageRecord]) -> [Finding] {
    var problems = [Problem?](repeating: nil, count: records.count)
    let chunk = 1024
    let chunks = (records.count + chunk - 1) / chunk
    problems.withUnsafeMutableBufferPointer { out in
      let base = out.baseAddress!
      DispatchQueue.concurrentPerform(iterations: chunks) { c in
        for i in (c * chunk)..<min(records.count, c * chunk + chunk) { base[i] = check(records[i].path) }
      }
    }
    return records.indices.compactMap { i in problems[i].map { Finding(record: records[i], problem: $0) } }
  }

  /// Writes `id,path,problem`, one row per finding, atomically.
  public static func write(_ findings: [Finding], to url: URL) throws {
    var w = CSVWriter(header: ["id", "path", "problem"])
    for f in findings { w.append([f.record.id, f.record.path, f.problem.rawValue]) }
    try w.write(to: url)
  }
}
