import CCodecs
import Common
import Foundation

/// Reads CSV files that may be gzipped (MIMIC ships `.csv.gz`; users often unpack them).
/// gzip is recognised by its magic bytes, not by the file name.
public enum TableFile {
  /// Reads the whole table; with `columns`, only those cells are kept (see `CSVTable.parse`).
  public static func read(_ url: URL, columns: Set<String>? = nil) throws -> CSVTable {
    let data: Data
    do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
      throw FileError("cannot read \(url.path): \(error.localizedDescription); check the path")
    }
    return try CSVTable.parse(try gunzipIfNeeded(data, source: url.path), source: url.path, columns: columns)
  }

  /// The data itself, or its inflated content when it starts with the gzip magic 1f 8b.
  public static func gunzipIfNeeded(_ data: Data, source: String) throws -> Data {
    guard data.count >= 2, data[data.startIndex] == 0x1F, data[data.startIndex + 1] == 0x8B else { return data }
    var out: UnsafeMutablePointer<UInt8>?
    var outLen = 0
    var err = [CChar](repeating: 0, count: 256)
    let rc = data.withUnsafeBytes { raw in
      ccx_gzip_inflate(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &out, &outLen, &err, err.count)
    }
    guard rc == 0, let out else {
      let message = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      throw FileError("\(source): \(message); download the file again or unpack it with gunzip to check it")
    }
    return Data(bytesNoCopy: out, count: outLen, deallocator: .custom { p, _ in ccx_free(p) })
  }

  /// The first of `names` that exists in `folder` (e.g. `x.csv.gz` then `x.csv`).
  public static func firstExisting(_ names: [String], in folder: URL) -> URL? {
    for n in names {
      let u = folder.appendingPathComponent(n)
      if FileManager.default.fileExists(atPath: u.path) { return u }
    }
    return nil
  }
}
