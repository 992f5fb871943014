import Common
import Foundation

/// What to do with an image that cannot be read: leave it out and list it (`skip`, the
/// default), or stop with an error naming it (`fail`).
public enum BadFilePolicy: String, Sendable, CaseIterable, Codable {
  case skip, fail
}

/// `bad_files.csv` (columns `path,split,reason`, sorted by split then path) in a run or cache
/// folder. Each loader of a run folder (train, tune, test) has its own `split`, and every write
/// keeps the rows of the other splits that are in the file, so the file lists every loader's bad
/// files. Thread-safe; each new file rewrites the CSV atomically, so a crash or interrupt never
/// leaves it half written. Entries already in the file are kept.
public final class BadFilesLog: @unchecked Sendable {
  public let url: URL?
  public let split: String
  private let lock = NSLock()
  private var entries: [(path: String, reason: String)] = []
  private var seen: Set<String> = []

  /// `folder` nil keeps the list in memory only.
  public init(folder: URL?, split: String = "") {
    url = folder?.appendingPathComponent("bad_files.csv")
    self.split = split
    for row in Self.rows(url) where row.split == split && !seen.contains(row.path) {
      entries.append((row.path, row.reason))
      seen.insert(row.path)
    }
  }

  /// The file's rows; a file of the older `path,reason` layout reads with an empty split.
  static func rows(_ url: URL?) -> [(path: String, split: String, reason: String)] {
    guard let url, let table = try? CSVTable.read(url), let p = table.header.firstIndex(of: "path"),
          let r = table.header.firstIndex(of: "reason") else { return [] }
    let sp = table.header.firstIndex(of: "split")
    return table.rows.filter { $0.count > max(p, r, sp ?? 0) }.map { row in (row[p], sp.map { row[$0] } ?? "", row[r]) }
  }

  public var all: [(path: String, reason: String)] { lock.lock(); defer { lock.unlock() }; return entries }
  public var count: Int { lock.lock(); defer { lock.unlock() }; return entries.count }

  public func record(_ error: ImageError) throws {
    lock.lock(); defer { lock.unlock() }
    guard !seen.contains(error.path) else { return }
    seen.insert(error.path)
    entries.append((error.path, "\(error.kind.rawValue): \(error.reason)"))
    guard let url else { return }
    // Sorted: workers find bad files in any order, the file must not depend on it.
    var rows = Self.rows(url).filter { $0.split != split }
    rows += entries.map { ($0.path, split, $0.reason) }
    var w = CSVWriter(header: ["path", "split", "reason"])
    for e in rows.sorted(by: { ($0.split, $0.path) < ($1.split, $1.path) }) { w.append([e.path, e.split, e.reason]) }
    try w.write(to: url)
  }
}
