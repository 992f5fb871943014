import Common
import Foundation

/// Writes `id,path,<finding>...` prediction rows in chunks so that an interrupted predict
/// resumes: rows go to `<out>.partial` (flushed and fsynced per chunk); on resume the ids
/// already there are skipped; `finish()` renames the partial file to `<out>`.
public final class PredictionsFile {
  public let url: URL
  public let findings: [String]
  public private(set) var done: Set<String> = []
  private let partial: URL
  private let handle: FileHandle
  private var pending = ""

  public init(url: URL, findings: [String]) throws {
    self.url = url
    self.findings = findings
    partial = url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".partial")
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let header = (["id", "path"] + findings).map(CSVWriter.escape).joined(separator: ",") + "\n"
    if FileManager.default.fileExists(atPath: partial.path) {
      // A kill mid-write leaves a torn last line: keep only complete lines.
      var data = try Data(contentsOf: partial)
      if let last = data.lastIndex(of: 0x0A), last != data.index(before: data.endIndex) {
        data = data.prefix(through: last)
      }
      let table = try CSVTable.parse(data, source: partial.path)
      guard table.header == ["id", "path"] + findings else {
        throw FileError("\(partial.path) was written for other findings (\(table.header.dropFirst(2).joined(separator: ","))); delete it to start over")
      }
      done = Set(table.rows.map { $0[0] })
      var w = CSVWriter(header: ["id", "path"] + findings)
      for r in table.rows { w.append(r) }
      try AtomicFile.write(w.text, to: partial)
    } else {
      try AtomicFile.write(header, to: partial)
    }
    handle = try FileHandle(forWritingTo: partial)
    try handle.seekToEnd()
  }

  deinit { try? handle.close() }

  /// Queues one row; `probabilities` in `findings` order.
  public func append(id: String, path: String, probabilities: [Double]) throws {
    precondition(probabilities.count == findings.count)
    guard !probabilities.contains(where: { $0.isNaN }) else {
      throw FileError("the model produced NaN for \(path); the checkpoint may be damaged")
    }
    pending += ([id, path] + probabilities.map { String(format: "%.6f", $0) }).map(CSVWriter.escape).joined(separator: ",") + "\n"
    done.insert(id)
  }

  /// Writes queued rows to disk (call once per chunk of batches).
  public func flush() throws {
    guard !pending.isEmpty else { return }
    try handle.write(contentsOf: Data(pending.utf8))
    try handle.synchronize()
    pending = ""
  }

  /// Flushes and moves the finished file into place.
  public func finish() throws {
    try flush()
    try handle.close()
    if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
    try FileManager.default.moveItem(at: partial, to: url)
  }
}
