import Common
import Foundation

/// Image files under a folder, found by extension.
public enum ImageFiles {
  /// Every regular file under `folder` (recursively) whose extension, lower-cased, is in
  /// `extensions`, sorted by path. Empty when none matches; an error naming the folder when it
  /// does not exist or is not a folder.
  public static func find(under folder: URL, extensions: Set<String>) throws -> [URL] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir) else {
      throw FileError("\(folder.path) does not exist")
    }
    guard isDir.boolValue else { throw FileError("\(folder.path) is not a folder") }
    guard let e = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else {
      throw FileError("cannot list \(folder.path)")
    }
    var out: [URL] = []
    for case let url as URL in e where extensions.contains(url.pathExtension.lowercased()) {
      out.append(url.standardizedFileURL)
    }
    return out.sorted { $0.path < $1.path }
  }
}
