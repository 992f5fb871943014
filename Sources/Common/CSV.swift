import Foundation

/// A CSV table read whole: RFC 4180 quoting (quoted fields may hold commas, quotes as "",
/// and newlines), CRLF or LF, an optional UTF-8 BOM, optional `#` comment lines before
/// the header. Rows keep their 1-based line numbers so errors can name them.
public struct CSVTable {
  public let source: String
  public let header: [String]
  public let rows: [[String]]
  /// The file line on which each row starts (1-based).
  public let lines: [Int]
  /// `#Key: value` comment lines seen before the header.
  public let comments: [String]
  private let columnIndex: [String: Int]

  public init(source: String, header: [String], rows: [[String]], lines: [Int], comments: [String] = []) {
    self.source = source
    self.header = header
    self.rows = rows
    self.lines = lines
    self.comments = comments
    var idx: [String: Int] = [:]
    for (i, h) in header.enumerated() where idx[h] == nil { idx[h] = i }
    columnIndex = idx
  }

  public static func read(_ url: URL, skipComments: Bool = true) throws -> CSVTable {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw FileError("cannot read \(url.path): \(error.localizedDescription); check the path")
    }
    return try parse(data, source: url.path, skipComments: skipComments)
  }

  public static func parse(_ text: String, source: String = "<text>", skipComments: Bool = true) throws -> CSVTable {
    try parse(Data(text.utf8), source: source, skipComments: skipComments)
  }

  public static func parse(_ data: Data, source: String, skipComments: Bool = true) throws -> CSVTable {
    try parse(data, source: source, skipComments: skipComments, columns: nil)
  }

  /// Like `parse`, but only the named `columns` are kept: the other cells of each row read as
  /// "" (rows keep their width, so indices and errors stay the same). Reading 4 of 12 columns
  /// of a 377,110-row file this way skips most of the string building.
  public static func parse(_ data: Data, source: String, skipComments: Bool = true, columns: Set<String>?) throws -> CSVTable {
    var keep: [Bool]? = nil
    var column = 0
    var records: [([String], Int)] = []
    var comments: [String] = []
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
      let b = raw.bindMemory(to: UInt8.self)
      var i = 0
      let n = b.count
      if n >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { i = 3 }
      var line = 1
      var field = [UInt8]()
      var record: [String] = []
      var recordLine = 1
      var atRecordStart = true
      while i < n {
        // Comment lines only before the header (RadPrompter v2 writes `#Key: value` lines there).
        if atRecordStart, skipComments, records.isEmpty, b[i] == UInt8(ascii: "#") {
          var j = i
          while j < n, b[j] != 0x0A { j += 1 }
          var end = j
          if end > i, b[end - 1] == 0x0D { end -= 1 }
          comments.append(String(decoding: UnsafeBufferPointer(rebasing: b[(i + 1)..<end]), as: UTF8.self))
          i = j + 1
          line += 1
          continue
        }
        atRecordStart = false
        let c = b[i]
        if c == UInt8(ascii: "\"") && field.isEmpty {
          // quoted field
          i += 1
          var closed = false
          while i < n {
            let q = b[i]
            if q == UInt8(ascii: "\"") {
              if i + 1 < n, b[i + 1] == UInt8(ascii: "\"") { field.append(q); i += 2; continue }
              i += 1
              closed = true
              break
            }
            if q == 0x0A { line += 1 }
            field.append(q)
            i += 1
          }
          if !closed { throw FileError("\(source):\(recordLine): a quoted field is never closed; fix the quotes on that row") }
          if i < n, b[i] != UInt8(ascii: ","), b[i] != 0x0A, b[i] != 0x0D {
            throw FileError("\(source):\(line): unexpected character after a closing quote")
          }
          continue
        }
        if c == UInt8(ascii: ",") {
          record.append(keepColumn(keep, column) ? String(decoding: field, as: UTF8.self) : "")
          field.removeAll(keepingCapacity: true)
          column += 1
          i += 1
          continue
        }
        if c == 0x0D || c == 0x0A {
          let blankLine = record.isEmpty && field.isEmpty
          record.append(keepColumn(keep, column) ? String(decoding: field, as: UTF8.self) : "")
          field.removeAll(keepingCapacity: true)
          column = 0
          if c == 0x0D, i + 1 < n, b[i + 1] == 0x0A { i += 1 }
          i += 1
          if !blankLine {
            if records.isEmpty, let columns {
              keep = record.map { columns.contains($0.trimmingCharacters(in: .whitespaces)) }
            }
            records.append((record, recordLine))
          }
          record = []
          line += 1
          recordLine = line
          atRecordStart = true
          continue
        }
        field.append(c)
        i += 1
      }
      if !field.isEmpty || !record.isEmpty {
        record.append(keepColumn(keep, column) ? String(decoding: field, as: UTF8.self) : "")
        records.append((record, recordLine))
      }
    }
    guard let first = records.first else { throw FileError("\(source) is empty: expected a header row") }
    let header = first.0.map { $0.trimmingCharacters(in: .whitespaces) }
    var rows: [[String]] = []
    var lines: [Int] = []
    rows.reserveCapacity(records.count - 1)
    lines.reserveCapacity(records.count - 1)
    for (r, l) in records.dropFirst() {
      guard r.count == header.count else {
        throw FileError("\(source):\(l): row has \(r.count) fields but the header has \(header.count); fix or remove that row")
      }
      rows.append(r)
      lines.append(l)
    }
    return CSVTable(source: source, header: header, rows: rows, lines: lines, comments: comments)
  }

  @inline(__always)
  private static func keepColumn(_ keep: [Bool]?, _ column: Int) -> Bool {
    guard let keep else { return true }
    return column >= keep.count || keep[column]
  }

  public func index(of column: String) -> Int? { columnIndex[column] }

  /// The index of a required column, or an error listing the columns the file has.
  public func require(_ column: String) throws -> Int {
    guard let i = columnIndex[column] else {
      throw FileError("\(source) has no column '\(column)'; its columns are: \(header.joined(separator: ", "))")
    }
    return i
  }
  public var count: Int { rows.count }
}

/// Writes CSV with minimal quoting.
public struct CSVWriter {
  public private(set) var text = ""
  public init(header: [String]) { append(header) }
  public static func escape(_ s: String) -> String {
    if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
      return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
  }
  public mutating func append(_ fields: [String]) {
    text += fields.map(CSVWriter.escape).joined(separator: ",") + "\n"
  }
  public func write(to url: URL) throws { try AtomicFile.write(text, to: url) }
}
