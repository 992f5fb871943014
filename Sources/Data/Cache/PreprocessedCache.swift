import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Identity of a source file for cache freshness: path, byte size, modification time.
public struct SourceStamp: Codable, Hashable, Sendable {
  public let path: String
  public let bytes: Int64
  public let mtimeNs: Int64

  /// The stamp now; a missing file gets size and mtime -1 (so it differs from any real one).
  public static func current(_ url: URL) -> SourceStamp {
    of(url) ?? SourceStamp(path: url.path, bytes: -1, mtimeNs: -1)
  }

  /// nil when the file does not exist or cannot be stat'ed.
  public static func of(_ url: URL) -> SourceStamp? {
    var st = stat()
    guard stat(url.path, &st) == 0 else { return nil }
    return SourceStamp(path: url.path, bytes: Int64(st.st_size),
                       mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
  }
}

/// The on-disk index of a cache (`index.json`): settings, and per source its stamp and its
/// slot in `images.u8` (slot -1 and an error when the file could not be read).
struct CacheIndex: Codable {
  static let currentVersion = 1
  var version: Int
  var size: Int
  var equalize: Bool
  var entries: [Entry]
  struct Entry: Codable {
    var source: SourceStamp
    var slot: Int
    var error: String?
  }
  var settings: PreprocessSettings { PreprocessSettings(size: size, equalize: equalize) }
}

/// Every image of a list preprocessed once to size x size uint8 (the [0, 255] image before
/// ScaleIntensityRange), in one memory-mapped file `images.u8` with an index `index.json`.
public final class PreprocessedCache: @unchecked Sendable {
  public static let dataName = "images.u8"
  public static let indexName = "index.json"

  public let folder: URL
  public let settings: PreprocessSettings
  let index: CacheIndex
  private let slotOf: [String: (stamp: SourceStamp, slot: Int)]
  private let base: UnsafeMutableRawPointer?
  private let mappedBytes: Int

  /// Opens the cache in `folder`; nil when there is none. Throws when it exists but is
  /// damaged (the message says to rebuild it).
  public static func open(_ folder: URL) throws -> PreprocessedCache? {
    let indexURL = folder.appendingPathComponent(indexName)
    guard FileManager.default.fileExists(atPath: indexURL.path) else { return nil }
    let index: CacheIndex
    do {
      index = try JSONDecoder().decode(CacheIndex.self, from: Data(contentsOf: indexURL))
    } catch {
      throw CacheError("\(indexURL.path) is not a valid cache index (\(error)); delete the folder or run `cxr cache` again")
    }
    guard index.version == CacheIndex.currentVersion else {
      throw CacheError("\(indexURL.path) has cache version \(index.version), this cxr writes \(CacheIndex.currentVersion); run `cxr cache` again")
    }
    return try PreprocessedCache(folder: folder, index: index)
  }

  /// The cache in `folder` when there is one built with `settings`; nil when there is none
  /// or it was built with other settings (the loader then decodes; `cxr cache` rebuilds).
  /// Entries whose source changed since are skipped per image by `pixels(for:stamp:)`.
  public static func openIfMatching(_ folder: URL, settings: PreprocessSettings) throws -> PreprocessedCache? {
    guard let cache = try open(folder), cache.settings == settings else { return nil }
    return cache
  }

  init(folder: URL, index: CacheIndex) throws {
    self.folder = folder
    self.index = index
    settings = index.settings
    var map: [String: (SourceStamp, Int)] = [:]
    map.reserveCapacity(index.entries.count)
    for e in index.entries where e.slot >= 0 { map[e.source.path] = (e.source, e.slot) }
    slotOf = map
    let slots = (index.entries.map(\.slot).max() ?? -1) + 1
    let need = slots * index.size * index.size
    let dataURL = folder.appendingPathComponent(Self.dataName)
    if need == 0 {
      base = nil
      mappedBytes = 0
      return
    }
    let fd = Glibc.open(dataURL.path, O_RDONLY)
    guard fd >= 0 else { throw CacheError("cannot open \(dataURL.path): \(String(cString: strerror(errno))); run `cxr cache` again") }
    defer { close(fd) }
    var st = stat()
    fstat(fd, &st)
    guard Int(st.st_size) >= need else {
      throw CacheError("\(dataURL.path) holds \(st.st_size) bytes but its index needs \(need) (interrupted build?); run `cxr cache` again")
    }
    guard let p = mmap(nil, need, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
      throw CacheError("cannot map \(dataURL.path): \(String(cString: strerror(errno)))")
    }
    base = p
    mappedBytes = need
  }

  deinit { if let base { munmap(base, mappedBytes) } }

  public var imageCount: Int { slotOf.count }

  /// The cached size x size pixels of `url` when the cache holds it and the file has not
  /// changed since (same size and mtime as recorded); nil otherwise.
  public func pixels(for url: URL, stamp: SourceStamp? = nil) -> UnsafeBufferPointer<UInt8>? {
    guard let base, let hit = slotOf[url.path] else { return nil }
    if let stamp, stamp != hit.stamp { return nil }
    let n = index.size * index.size
    return UnsafeBufferPointer(start: base.advanced(by: hit.slot * n).assumingMemoryBound(to: UInt8.self), count: n)
  }

  /// Whether this cache was built with `settings` from exactly these sources, unchanged.
  public func isFresh(for stamps: [SourceStamp], settings: PreprocessSettings) -> Bool {
    guard settings == self.settings, stamps.count == index.entries.count else { return false }
    return zip(stamps, index.entries).allSatisfy { $0 == $1.source }
  }
}

/// A cache a user can act on (rebuild it, name another folder): the one `UserError`.
public typealias CacheError = UserError
