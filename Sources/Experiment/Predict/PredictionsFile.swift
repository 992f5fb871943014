import Common
import Foundation

/// Writes `id,path,<finding>...` prediction rows in chunks so that an interrupted predict
/// resumes: rows go to `<out>.partial` (flushed and fsynced per chunk); on resume the ids
/// already there are skipped; `finish()` renames the partial file to `<out>`.
///
/// The file starts with `# key: value` lines that say what made it (`cxr predictions`, the
/// weights file, its SHA-256, which weights, the cxr/libtorch/device provenance, the input
/// preprocessing). A partial file is continued only when those lines are the same, so rows of
/// two checkpoints are never mixed; an output that exists is replaced only when it is itself a
/// cxr predictions file, never a folder or another file.
public final class PredictionsFile {
  public static let marker = "cxr predictions"
  public let url: URL
  public let findings: [String]
  public private(set) var done: Set<String> = []
  private let partial: URL
  private let handle: FileHandle
  private var pending = ""

  /// `header`: ordered `key: value` lines (without `# `) that identify what makes the rows.
  public init(url: URL, findings: [String], header: [(String, String)] = []) throws {
    self.url = url
    self.findings = findings
    partial = url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".partial")
    try PredictionsFile.checkReplaceable(url)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let comments = [PredictionsFile.marker] + header.map { "\($0.0): \($0.1)" }
    let columns = ["id", "path"] + findings
    let head = comments.map { "# \($0)\n" }.joined() + columns.map(CSVWriter.escape).joined(separator: ",") + "\n"
    if FileManager.default.fileExists(atPath: partial.path) {
      // A kill mid-write leaves a torn last line: keep only complete lines.
      var data = try Data(contentsOf: partial)
      if let last = data.lastIndex(of: 0x0A), last != data.index(before: data.endIndex) {
        data = data.prefix(through: last)
      }
      let table = try CSVTable.parse(data, source: partial.path)
      guard table.comments.map({ $0.trimmingCharacters(in: .whitespaces) }) == comments else {
        let theirs = PredictionsFile.header(table.comments), ours = PredictionsFile.header(comments)
        let diff = Set(theirs.keys).union(ours.keys).sorted().filter { theirs[$0] != ours[$0] }
          .map { "\($0): \(theirs[$0] ?? "(none)") -> \(ours[$0] ?? "(none)")" }
        throw FileError("\(partial.path) holds rows made by something else (\(diff.isEmpty ? "no cxr header" : diff.joined(separator: "; "))); they are not mixed with these: delete or move it to start over, or predict to another --out")
      }
      guard table.header == columns else {
        throw FileError("\(partial.path) was written for other findings (\(table.header.dropFirst(2).joined(separator: ","))); delete it to start over")
      }
      done = Set(table.rows.map { $0[0] })
      var text = head
      for r in table.rows { text += r.map(CSVWriter.escape).joined(separator: ",") + "\n" }
      try AtomicFile.write(text, to: partial)
    } else {
      try AtomicFile.write(head, to: partial)
    }
    handle = try FileHandle(forWritingTo: partial)
    try handle.seekToEnd()
  }

  deinit { try? handle.close() }

  /// `# key: value` comment lines as a dictionary.
  public static func header(_ comments: [String]) -> [String: String] {
    var out: [String: String] = [:]
    for c in comments {
      let t = c.trimmingCharacters(in: .whitespaces)
      guard let colon = t.range(of: ": ") else { continue }
      out[String(t[..<colon.lowerBound])] = String(t[colon.upperBound...])
    }
    return out
  }

  /// An existing output is replaced only when it is a cxr predictions file (or an older one
  /// of cxr's `id,path,...` layout); a folder or any other file is the user's and is an error.
  static func checkReplaceable(_ url: URL) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return }
    if isDir.boolValue {
      throw FileError("\(url.path) is a folder; predictions are written to a CSV file: give a file path for --out (nothing was changed)")
    }
    let head = (try? FileHandle(forReadingFrom: url).read(upToCount: 256)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
    guard head.hasPrefix("# \(marker)") || head.hasPrefix("id,path,") else {
      throw FileError("\(url.path) exists and is not a cxr predictions file; choose another --out or move it (nothing was changed)")
    }
  }

  /// Queues one row; `probabilities` in `findings` order.
  public func append(id: String, path: String, probabilities: [Double]) throws {
    precondition(probabilities.count == findings.count)
    guard !probabilities.contains(where: { !$0.isFinite }) else {
      throw FileError("the model produced a non-finite probability for \(path); the checkpoint may be damaged")
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

  /// Flushes and moves the finished file into place (one atomic rename).
  public func finish() throws {
    try flush()
    try handle.close()
    guard rename(partial.path, url.path) == 0 else {
      throw FileError("cannot rename \(partial.path) to \(url.path): \(String(cString: strerror(errno)))")
    }
  }
}
