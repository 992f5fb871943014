import Common
import Foundation

/// What to do with an image that cannot be read: leave it out and list it (`skip`, the
/// default), or stop with an error naming it (`fail`).
public enum BadFilePolicy: String, Sendable, CaseIterable, Codable {
  case skip, fail
}

/// `bad_files.csv` (columns `path,reason`) in a run or cache folder. Thread-safe; each new
/// file rewrites the CSV atomically, so a crash or interrupt never leaves it half written.
/// Entries already in the file are kept.
public final class BadFilesLog: @unchecked Sendable {
  public let url: URL?
  private let lock = NSLock()
  private var entries: [(path: String, reason: String)] = []
  private var seen: Set<String> = []

  /// `folder` nil keeps the list in memory only.
  public init(folder: URL?) {
    url = folder?.appendingPathComponent("bad_files.csv")
    if let url, let table = try? CSVTable.read(url), let p = table.header.firstIndex(of: "path"),
       let r = table.header.firstIndex(of: "reason") {
      for row in table.rows where row.count > max(p, r) && !seen.contains(row[p]) {
        entries.append((row[p], row[r]))
        seen.insert(row[p])
      }
    }
  }

  public var all: [(path: String, reason: String)] { lock.lock(); defer { lock.unlock() }; return entries }

  public func record(_ error: ImageError) throws {
    lock.lock(); defer { lock.unlock() }
    guard !seen.contains(error.path) else { return }
    seen.insert(error.path)
    entries.append((error.path, "\(error.kind.rawValue): \(error.reason)"))
    guard let url else { return }
    var w = CSVWriter(header: ["path", "reason"])
    for e in entries { w.append([e.path, e.reason]) }
    try w.write(to: url)
  }
}
