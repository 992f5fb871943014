import Common
import Foundation

/// The labels of one schema as written in its file, keyed by study (or image), before an
/// uncertainty policy is applied.
public struct LabelTable: Sendable {
  public var schema: String
  public var source: String
  public var findings: [String]
  public var uncertainty: UncertaintyPolicy
  public var join: LabelJoin?
  /// True when keys are `subject/study` (two id columns).
  public var keyedBySubject: Bool
  /// Row-major values, `findings.count` per row.
  public var values: [LabelValue]
  public var rowOfKey: [LabelKey: Int]
  /// Soft labels: P(positive) per value, row-major like `values` (a Dawid-Skene consensus, or a
  /// file of probabilities); nil for hard labels. When set, training targets are these
  /// probabilities and `values` holds the hard labels (p >= 0.5) for counts and reports.
  public var probabilities: [Float]?

  public var rowCount: Int { rowOfKey.count }

  /// The labels for a key, or nil when the file has no row for it.
  public func labels(for key: LabelKey) -> ArraySlice<LabelValue>? {
    guard let r = rowOfKey[key] else { return nil }
    return values[(r * findings.count)..<(r * findings.count + findings.count)]
  }

  public init(schema: String, source: String, findings: [String], uncertainty: UncertaintyPolicy,
              join: LabelJoin?, keyedBySubject: Bool, values: [LabelValue], rowOfKey: [LabelKey: Int],
              probabilities: [Float]? = nil) {
    self.schema = schema
    self.source = source
    self.findings = findings
    self.uncertainty = uncertainty
    self.join = join
    self.keyedBySubject = keyedBySubject
    self.values = values
    self.rowOfKey = rowOfKey
    self.probabilities = probabilities
  }

  /// The keys in row order.
  public var keysInRowOrder: [LabelKey] {
    var keys = [LabelKey?](repeating: nil, count: rowCount)
    for (k, r) in rowOfKey { keys[r] = k }
    return keys.map { $0! }
  }
}

extension LabelTable {
  /// The same table with only `wanted` findings, in that order (e.g. CANDID's mask labels
  /// for the findings a study trains on).
  public func selecting(_ wanted: [String]) throws -> LabelTable {
    let columns = try wanted.map { f -> Int in
      guard let i = findings.firstIndex(of: f) else {
        throw FileError("schema '\(schema)' (\(source)) has no finding '\(f)'; it has \(findings.joined(separator: ", "))")
      }
      return i
    }
    let nf = findings.count
    var picked = [LabelValue]()
    picked.reserveCapacity(rowCount * wanted.count)
    var soft: [Float]? = probabilities.map { _ in [] }
    for r in 0..<(values.count / max(nf, 1)) {
      for c in columns {
        picked.append(values[r * nf + c])
        if let p = probabilities { soft!.append(p[r * nf + c]) }
      }
    }
    var t = self
    t.findings = wanted
    t.values = picked
    t.probabilities = soft
    return t
  }
}

/// What a label row is matched on: a study or image id, with the subject id when the file
/// has two id columns. Ids are compared after removing the decorations different tools add:
/// MIMIC folder prefixes (`p10000032`, `s50414267`) and pandas' float rendering (`50414267.0`).
/// Two short strings rather than one joined string: MIMIC's ids stay inline, with no allocation.
public struct LabelKey: Hashable, Sendable, CustomStringConvertible {
  /// Empty when the file has one id column.
  public let subject: String
  public let id: String

  public init(subject: String?, id: String) {
    self.subject = subject.map { LabelKey.normalize($0) } ?? ""
    self.id = LabelKey.normalize(id)
  }

  public var description: String { subject.isEmpty ? id : subject + "/" + id }

  public static func normalize<S: StringProtocol>(_ raw: S) -> String {
    // Fast path for the common case (MIMIC ids are plain digits).
    if !raw.isEmpty, raw.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return String(raw) }
    var s = Substring(raw)
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    if s.hasSuffix(".0"), s.dropLast(2).allSatisfy(\.isASCIIDigit), s.count > 2 { s = s.dropLast(2) }
    if let f = s.first, f == "s" || f == "p", s.count > 1, s.dropFirst().allSatisfy(\.isASCIIDigit) {
      s = s.dropFirst()
    }
    return String(s)
  }

}

extension Character {
  var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}

extension LabelSchema {
  /// Reads the schema's file for `findings`. Errors name the file, line and column.
  public func read(findings: [String]) throws -> LabelTable {
    try checkIDColumns()
    let wanted = Set(idColumns + findings.flatMap(candidateColumns(for:)))
    return try read(table: TableFile.read(file, columns: wanted), findings: findings)
  }

  private func checkIDColumns() throws {
    guard idColumns.count == 1 || idColumns.count == 2 else {
      throw FileError("schema '\(name)': idColumns must name one column (study or image id) or two (subject id, study id); got \(idColumns.count)")
    }
  }

  /// Reads an already parsed table (the CSV manifest's label columns use this too).
  public func read(table: CSVTable, findings: [String]) throws -> LabelTable {
    try checkIDColumns()
    let idIdx = try idColumns.map { try table.require($0) }
    var findingIdx: [Int] = []
    for f in findings {
      let candidates = candidateColumns(for: f)
      guard let i = candidates.lazy.compactMap({ table.index(of: $0) }).first else {
        throw FileError("\(table.source) has no column for finding '\(f)' (schema '\(name)' tried \(candidates.map { "'\($0)'" }.joined(separator: ", "))); its columns are: \(table.header.joined(separator: ", ")); map the finding to a column in the schema")
      }
      findingIdx.append(i)
    }
    if format == .probability { return try readProbabilities(table: table, idIdx: idIdx, findingIdx: findingIdx, findings: findings) }
    let parse = try valueParser()
    let nf = findings.count
    var values = [LabelValue]()
    values.reserveCapacity(table.count * nf)
    var rowOfKey = [LabelKey: Int](minimumCapacity: table.count)
    var lineOfRow = [Int]()
    lineOfRow.reserveCapacity(table.count)
    var row = [LabelValue](repeating: .blank, count: nf)
    for (r, fields) in table.rows.enumerated() {
      let line = table.lines[r]
      for (k, ci) in idIdx.enumerated() where fields[ci].allSatisfy({ $0 == " " }) {
        throw FileError("\(table.source):\(line): column '\(idColumns[k])' is blank; every label row needs its id")
      }
      let key = LabelKey(subject: idIdx.count == 2 ? fields[idIdx[0]] : nil, id: fields[idIdx.last!])
      for (k, ci) in findingIdx.enumerated() {
        guard let v = parse(fields[ci]) else {
          throw FileError(unknownValueMessage(table.source, line, table.header[ci], fields[ci]))
        }
        row[k] = v
      }
      if let previous = rowOfKey[key] {
        // A repeated row is harmless when it agrees; when it disagrees nobody can tell which is right.
        if Array(values[(previous * nf)..<(previous * nf + nf)]) != row {
          throw FileError("\(table.source):\(line): id \(key) already has a row at line \(lineOfRow[previous]) with different labels; keep one row per id")
        }
        continue
      }
      rowOfKey[key] = lineOfRow.count
      lineOfRow.append(line)
      values.append(contentsOf: row)
    }
    return LabelTable(schema: name, source: table.source, findings: findings, uncertainty: uncertainty,
                      join: join, keyedBySubject: idIdx.count == 2, values: values, rowOfKey: rowOfKey)
  }

  /// A file of probabilities: each cell a number in [0, 1] (blank: 0, not mentioned).
  private func readProbabilities(table: CSVTable, idIdx: [Int], findingIdx: [Int], findings: [String]) throws -> LabelTable {
    let nf = findings.count
    var values = [LabelValue](), soft = [Float]()
    values.reserveCapacity(table.count * nf)
    soft.reserveCapacity(table.count * nf)
    var rowOfKey = [LabelKey: Int](minimumCapacity: table.count)
    var lineOfRow = [Int]()
    var row = [Float](repeating: 0, count: nf)
    for (r, fields) in table.rows.enumerated() {
      let line = table.lines[r]
      for (k, ci) in idIdx.enumerated() where fields[ci].allSatisfy({ $0 == " " }) {
        throw FileError("\(table.source):\(line): column '\(idColumns[k])' is blank; every label row needs its id")
      }
      let key = LabelKey(subject: idIdx.count == 2 ? fields[idIdx[0]] : nil, id: fields[idIdx.last!])
      for (k, ci) in findingIdx.enumerated() {
        let cell = fields[ci].trimmingCharacters(in: .whitespaces)
        if cell.isEmpty { row[k] = 0; continue }
        guard let p = Double(cell), p >= 0, p <= 1 else {
          throw FileError("\(table.source):\(line): column '\(table.header[ci])' has value '\(fields[ci])'; schema '\(name)' (format probability) needs a probability in [0, 1]")
        }
        row[k] = Float(p)
      }
      if let previous = rowOfKey[key] {
        if Array(soft[(previous * nf)..<(previous * nf + nf)]) != row {
          throw FileError("\(table.source):\(line): id \(key) already has a row at line \(lineOfRow[previous]) with different labels; keep one row per id")
        }
        continue
      }
      rowOfKey[key] = lineOfRow.count
      lineOfRow.append(line)
      soft.append(contentsOf: row)
      values.append(contentsOf: row.map { $0 >= 0.5 ? .positive : .negative })
    }
    return LabelTable(schema: name, source: table.source, findings: findings, uncertainty: uncertainty, join: join,
                      keyedBySubject: idIdx.count == 2, values: values, rowOfKey: rowOfKey, probabilities: soft)
  }

  private func unknownValueMessage(_ source: String, _ line: Int, _ column: String, _ value: String) -> String {
    switch format {
    case .chexpert:
      return "\(source):\(line): column '\(column)' has value '\(value)'; CheXpert-format labels are 1.0, 0.0, -1.0 or blank"
    case .mapped, .probability:
      return "\(source):\(line): column '\(column)' has value '\(value)', which schema '\(name)' does not map (it maps \(values.keys.sorted().joined(separator: ", "))); add it to the schema's value map"
    }
  }

  /// A function from a cell to a label, nil for an unknown value.
  private func valueParser() throws -> (String) -> LabelValue? {
    switch format {
    case .chexpert, .probability:
      return { cell in
        switch cell {
        case "": return .blank
        case "1.0", "1": return .positive
        case "0.0", "0": return .negative
        case "-1.0", "-1": return .uncertain
        default:
          let t = cell.trimmingCharacters(in: .whitespaces)
          if t.isEmpty { return .blank }
          switch Double(t) {
          case 1: return .positive
          case 0: return .negative
          case -1: return .uncertain
          default: return nil
          }
        }
      }
    case .mapped:
      let exact = values
      var folded: [String: LabelValue] = [:]
      for (k, v) in values.sorted(by: { $0.key < $1.key }) {
        let f = k.trimmingCharacters(in: .whitespaces).lowercased()
        if let other = folded[f], other != v {
          throw FileError("schema '\(name)': value map lists '\(k)' twice (ignoring case) with different labels")
        }
        folded[f] = v
      }
      return { cell in
        if let v = exact[cell] { return v }
        let t = cell.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return .blank }
        return folded[t.lowercased()]
      }
    }
  }
}
