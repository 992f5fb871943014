import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error about a file the user gave us: it names the file and says what to do.
public struct FileError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Atomic file replacement: write a sibling temp file, flush it to disk, rename over the target.
public enum AtomicFile {
  public static func write(_ data: Data, to url: URL) throws {
    let dir = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
      throw FileError("cannot create \(tmp.path) (is the folder writable?)")
    }
    do {
      let h = try FileHandle(forWritingTo: tmp)
      try h.write(contentsOf: data)
      try h.synchronize()
      try h.close()
      guard rename(tmp.path, url.path) == 0 else {
        throw FileError("cannot rename \(tmp.path) to \(url.path): \(String(cString: strerror(errno)))")
      }
    } catch {
      try? FileManager.default.removeItem(at: tmp)
      throw error
    }
  }
  public static func write(_ text: String, to url: URL) throws { try write(Data(text.utf8), to: url) }
}
