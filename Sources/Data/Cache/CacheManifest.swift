import Common
import Foundation

/// The image list of `cxr cache MANIFEST`: a CSV with a `path` column; relative paths are
/// taken from the CSV's folder. (The experiment config will hand lists directly later.)
public enum CacheManifest {
  public static func read(_ url: URL) throws -> [URL] {
    let table = try CSVTable.read(url)
    guard let col = table.header.firstIndex(of: "path") else {
      throw FileError("\(url.path) has no `path` column (columns: \(table.header.joined(separator: ", "))); add one with the image paths")
    }
    let base = url.deletingLastPathComponent()
    return try zip(table.rows, table.lines).map { row, line in
      guard col < row.count, !row[col].isEmpty else {
        throw FileError("\(url.path):\(line): empty path; every row needs an image path")
      }
      let p = row[col]
      return p.hasPrefix("/") ? URL(fileURLWithPath: p) : base.appendingPathComponent(p)
    }
  }
}
