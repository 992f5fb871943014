import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error about a file the user gave us: it names the file and says what to do (the one
/// `UserError`, under the name the file code reads best with).
public typealias FileError = UserError

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

extension AtomicFile {
  /// Flushes a folder's entries (names created, renamed or removed in it) to disk, so that a
  /// rename is durable before anything that relies on it (pruning an older checkpoint) runs.
  public static func syncDirectory(_ url: URL) throws {
    let fd = open(url.path, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { throw FileError("cannot open folder \(url.path) to sync it: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw FileError("cannot sync folder \(url.path): \(String(cString: strerror(errno)))") }
  }

  /// Moves a file or folder out of the way under `<name>.replaced-<UTC time>` beside it (never
  /// deletes it) and returns the new location.
  public static func moveAside(_ url: URL, now: Date = Date()) throws -> URL {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
    let stamp = f.string(from: now)
    var target = url.deletingLastPathComponent().appendingPathComponent("\(url.lastPathComponent).replaced-\(stamp)")
    var n = 1
    while FileManager.default.fileExists(atPath: target.path) {
      n += 1
      target = url.deletingLastPathComponent().appendingPathComponent("\(url.lastPathComponent).replaced-\(stamp)-\(n)")
    }
    guard rename(url.path, target.path) == 0 else {
      throw FileError("cannot move \(url.path) aside to \(target.path): \(String(cString: strerror(errno)))")
    }
    try syncDirectory(url.deletingLastPathComponent())
    return target
  }
}
