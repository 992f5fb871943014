import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Builds (or reuses) a `PreprocessedCache` for a list of image files.
public enum CacheBuilder {
  public struct Report: Sendable {
    /// False when an up-to-date cache was found and nothing was written.
    public let rebuilt: Bool
    public let images: Int
    /// Images copied from the previous cache because their source and settings were unchanged.
    public let reused: Int
    public let bad: [(path: String, reason: String)]
    public let seconds: Double
  }

  /// Writes `folder/images.u8` + `folder/index.json` (+ `bad_files.csv` when some files
  /// cannot be read) unless the cache there is already fresh for these sources and settings.
  /// Sources whose stamp and settings did not change are copied from the old cache.
  /// `progress(done, total)` is called once per image, serialised (never concurrently).
  @discardableResult
  public static func build(sources: [URL], settings: PreprocessSettings, folder: URL, workers: Int = 1,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Report {
    let t0 = Date()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let stamps = sources.map(SourceStamp.current)
    let old = try? PreprocessedCache.open(folder)
    if let old, old.isFresh(for: stamps, settings: settings) {
      let bad = old.index.entries.filter { $0.slot < 0 }.map { ($0.source.path, $0.error ?? "") }
      return Report(rebuilt: false, images: old.imageCount, reused: old.imageCount, bad: bad,
                    seconds: Date().timeIntervalSince(t0))
    }
    let reusable = old?.settings == settings ? old : nil
    let n = settings.size * settings.size
    let tmpURL = folder.appendingPathComponent(".\(PreprocessedCache.dataName).tmp-\(getpid())")
    let fd = Glibc.open(tmpURL.path, O_CREAT | O_TRUNC | O_WRONLY, 0o644)
    guard fd >= 0 else { throw CacheError("cannot create \(tmpURL.path): \(String(cString: strerror(errno)))") }
    var closed = false
    defer {
      if !closed { close(fd) }
      unlink(tmpURL.path)
    }
    guard ftruncate(fd, off_t(sources.count * n)) == 0 else {
      throw CacheError("cannot size \(tmpURL.path) to \(sources.count * n) bytes: \(String(cString: strerror(errno))) (disk full?)")
    }

    // Workers take the next source index; each writes its slot with pwrite (thread-safe).
    var entries = [CacheIndex.Entry?](repeating: nil, count: sources.count)
    let lock = NSLock()
    var next = 0, done = 0, reused = 0
    var writeError: String?
    let badLog = BadFilesLog(folder: nil)
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, sources.count))) { _ in
      while true {
        lock.lock()
        let i = next
        next += 1
        let stop = writeError != nil
        lock.unlock()
        if i >= sources.count || stop { return }
        var entry = CacheIndex.Entry(source: stamps[i], slot: i, error: nil)
        var pixels: [UInt8]?
        var wasReused = false
        if let reusable, let cached = reusable.pixels(for: sources[i], stamp: stamps[i]) {
          pixels = Array(cached)
          wasReused = true
        } else {
          do {
            let src = try ImageDecoder.load(sources[i], targetLongestSide: settings.size)
            pixels = Preprocess.toUInt8(Preprocess.apply(src, settings))
          } catch let e as ImageError {
            entry.slot = -1
            entry.error = "\(e.kind.rawValue): \(e.reason)"
            try? badLog.record(e)
          } catch {
            entry.slot = -1
            entry.error = "\(error)"
          }
        }
        if let pixels {
          let written = pixels.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(i * n)) }
          if written != n {
            lock.lock(); writeError = String(cString: strerror(errno)); lock.unlock()
          }
        }
        lock.lock()
        entries[i] = entry
        done += 1
        if wasReused { reused += 1 }
        progress?(done, sources.count)  // under the lock: callers need no synchronisation
        lock.unlock()
      }
    }
    if let writeError { throw CacheError("cannot write \(tmpURL.path): \(writeError) (disk full?)") }
    guard fsync(fd) == 0 else { throw CacheError("cannot flush \(tmpURL.path): \(String(cString: strerror(errno)))") }
    close(fd)
    closed = true
    // Drop the old mapping before replacing its file, then publish data first, index last:
    // the index is the commit point, and it is only written after the data it describes.
    let index = CacheIndex(version: CacheIndex.currentVersion, size: settings.size, equalize: settings.equalize,
                           entries: entries.map { $0! })
    try? FileManager.default.removeItem(at: folder.appendingPathComponent(PreprocessedCache.indexName))
    guard rename(tmpURL.path, folder.appendingPathComponent(PreprocessedCache.dataName).path) == 0 else {
      throw CacheError("cannot move the cache data into \(folder.path): \(String(cString: strerror(errno)))")
    }
    let encoder = JSONEncoder()
    try AtomicFile.write(try encoder.encode(index), to: folder.appendingPathComponent(PreprocessedCache.indexName))
    let bad = index.entries.filter { $0.slot < 0 }.map { ($0.source.path, $0.error ?? "") }
    let badURL = folder.appendingPathComponent("bad_files.csv")
    if bad.isEmpty {
      try? FileManager.default.removeItem(at: badURL)
    } else {
      var w = CSVWriter(header: ["path", "reason"])
      for b in bad { w.append([b.0, b.1]) }
      try w.write(to: badURL)
    }
    return Report(rebuilt: true, images: sources.count - bad.count, reused: reused, bad: bad,
                  seconds: Date().timeIntervalSince(t0))
  }
}
