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
    var header: [String]?
    var keep: [Bool]?
    var rows: [[String]] = []
    var lines: [Int] = []
    var comments: [String] = []
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
      let b = raw.bindMemory(to: UInt8.self)
      let n = b.count
      let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf: UInt8 = 0x0A, cr: UInt8 = 0x0D
      var i = 0
      if n >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { i = 3 }
      var line = 1
      var quoted = [UInt8]()
      var record: [String] = []
      var recordLine = 1
      var blankLine = false

      func finishRecord() throws {
        defer { record = [] }
        if blankLine { return }
        guard let header else {
          header = record.map { $0.trimmingCharacters(in: .whitespaces) }
          if let columns { keep = header!.map { columns.contains($0) } }
          return
        }
        guard record.count == header.count else {
          throw FileError("\(source):\(recordLine): row has \(record.count) fields but the header has \(header.count); fix or remove that row")
        }
        rows.append(record)
        lines.append(recordLine)
      }

      while i < n {
        // Comment lines only before the header (RadPrompter v2 writes `#Key: value` lines there).
        if record.isEmpty, skipComments, header == nil, b[i] == UInt8(ascii: "#") {
          var j = i
          while j < n, b[j] != lf { j += 1 }
          var end = j
          if end > i, b[end - 1] == cr { end -= 1 }
          comments.append(String(decoding: UnsafeBufferPointer(rebasing: b[(i + 1)..<end]), as: UTF8.self))
          i = j + 1
          line += 1
          recordLine = line
          continue
        }
        if record.isEmpty { record.reserveCapacity(header?.count ?? 8) }
        let wanted = keep.map { record.count >= $0.count || $0[record.count] } ?? true
        if b[i] == quote {
          // Quoted: may hold commas, newlines and "" for a quote.
          i += 1
          var closed = false
          quoted.removeAll(keepingCapacity: true)
          while i < n {
            let q = b[i]
            if q == quote {
              if i + 1 < n, b[i + 1] == quote { quoted.append(q); i += 2; continue }
              i += 1
              closed = true
              break
            }
            if q == lf { line += 1 }
            quoted.append(q)
            i += 1
          }
          if !closed { throw FileError("\(source):\(recordLine): a quoted field is never closed; fix the quotes on that row") }
          if i < n, b[i] != comma, b[i] != lf, b[i] != cr {
            throw FileError("\(source):\(line): unexpected character after a closing quote")
          }
          // A line holding only `""` is blank, like an empty line.
          blankLine = record.isEmpty && quoted.isEmpty
          record.append(wanted ? String(decoding: quoted, as: UTF8.self) : "")
        } else {
          // Unquoted: up to the next comma or line end, taken straight from the buffer.
          let start = i
          while i < n {
            let c = b[i]
            if c == comma || c == lf || c == cr { break }
            i += 1
          }
          blankLine = record.isEmpty && start == i
          record.append(wanted ? String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self) : "")
        }
        if i >= n { break }
        if b[i] == comma {
          i += 1
          blankLine = false
          if i == n { record.append("") }  // a trailing comma ends with an empty field
          continue
        }
        // Line end (LF, CRLF or a lone CR).
        if b[i] == cr, i + 1 < n, b[i + 1] == lf { i += 1 }
        i += 1
        try finishRecord()
        line += 1
        recordLine = line
      }
      if !record.isEmpty { try finishRecord() }
    }
    guard let header else { throw FileError("\(source) is empty: expected a header row") }
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
