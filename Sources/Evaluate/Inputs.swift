import Common
import Foundation

/// What an uncertain reference or schema label (CheXpert -1.0, "uncertain") becomes.
public enum UncertainPolicy: String, CaseIterable, Sendable {
  case ones, zeros, ignore
}

/// One label cell as written in a reference, schema or human file.
enum LabelCell: Equatable {
  case positive, negative, uncertain, blank

  /// Accepted spellings (case-insensitive): positive `1`, `1.0`, `present`, `positive`, `yes`,
  /// `true`; negative `0`, `0.0`, `absent`, `negative`, `no`, `false`; uncertain `-1`, `-1.0`,
  /// `uncertain`, `equivocal`; blank. Nil for anything else.
  init?(_ raw: String) {
    // Fast path for the spellings label files use (trimming and lowercasing through Foundation
    // dominated reading 7 label files of 227,827 rows).
    switch raw {
    case "": self = .blank; return
    case "1.0", "1": self = .positive; return
    case "0.0", "0": self = .negative; return
    case "-1.0", "-1": self = .uncertain; return
    default: break
    }
    let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
    switch s {
    case "": self = .blank
    case "1", "1.0", "present", "positive", "yes", "true": self = .positive
    case "0", "0.0", "absent", "negative", "no", "false": self = .negative
    case "-1", "-1.0", "uncertain", "equivocal": self = .uncertain
    default: return nil
    }
  }

  /// A reference or schema label under `policy`; blank (not mentioned) is negative. Nil = left out.
  func label(_ policy: UncertainPolicy) -> Bool? {
    switch self {
    case .positive: return true
    case .negative, .blank: return false
    case .uncertain:
      switch policy {
      case .ones: return true
      case .zeros: return false
      case .ignore: return nil
      }
    }
  }
}

/// A `NAME=path` argument.
public struct NamedPath: Equatable, Sendable {
  public var name: String
  public var path: String
  public init(name: String, path: String) { self.name = name; self.path = path }
  public init(parsing text: String, option: String) throws {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex, text.index(after: eq) != text.endIndex else {
      throw FileError("\(option) expects NAME=path (e.g. \(option) name=file.csv), got '\(text)'")
    }
    name = String(text[..<eq]); path = String(text[text.index(after: eq)...])
  }
}

/// Binary reference labels per finding, as columns aligned with `ids`. A nil label (CheXpert's
/// uncertain under `ignore`) leaves that case out of that finding.
public struct ReferenceLabels: Sendable {
  public let name: String
  /// Where the labels came from (a file path, or a description for a dataset adapter).
  public let source: String
  public let findings: [String]
  /// Every id the reference lists, in file order.
  public let ids: [String]
  /// finding -> label per id (aligned with `ids`).
  public let columns: [String: [Bool?]]
  /// id -> position in `ids`.
  public let row: [String: Int]

  /// The label of `id` for `finding`; nil when the id is absent or left out.
  public func label(_ finding: String, id: String) -> Bool? {
    guard let r = row[id], let column = columns[finding] else { return nil }
    return column[r]
  }

  /// A reference built in code (e.g. from CANDID-PTX masks): id -> finding -> value, with
  /// values 1 / 0 / -1 (uncertain) / nil (not mentioned, negative).
  public init(name: String, source: String, values: [String: [String: Double?]], findings: [String],
              policy: UncertainPolicy = .ones) throws {
    self.name = name; self.source = source; self.findings = findings
    let ids = values.keys.sorted()
    var columns: [String: [Bool?]] = [:]
    for f in findings {
      var column: [Bool?] = []
      column.reserveCapacity(ids.count)
      for id in ids {
        guard let row = values[id], let entry = row.index(forKey: f) else {
          throw FileError("\(source): id '\(id)' has no value for finding '\(f)'; give 1, 0, -1 or nil for every finding")
        }
        let cell: LabelCell
        switch row[entry].value {
        case .none: cell = .blank
        case .some(1): cell = .positive
        case .some(0): cell = .negative
        case .some(-1): cell = .uncertain
        case .some(let x):
          throw FileError("\(source): id '\(id)', finding '\(f)' has value \(x); expected 1, 0, -1 or nil")
        }
        column.append(cell.label(policy))
      }
      columns[f] = column
    }
    self.ids = ids
    self.columns = columns
    self.row = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
  }

  /// Reads `id` + one column per finding (1/0, CheXpert 1.0/0.0/-1.0/blank, or the words of `LabelCell`).
  public static func read(name: String, url: URL, findings: [String], policy: UncertainPolicy) throws -> ReferenceLabels {
    let table = try CSVTable.read(url)
    return try ReferenceLabels(name: name, table: table, findings: findings, policy: policy)
  }

  public init(name: String, table: CSVTable, findings: [String], policy: UncertainPolicy) throws {
    self.name = name; self.source = table.source; self.findings = findings
    // `id`, else CheXpert's layout (subject_id,study_id,...): for CANDID-PTX the study id names the image.
    guard let idCol = table.index(of: "id") ?? table.index(of: "dicom_id") ?? table.index(of: "study_id") else {
      throw FileError("\(table.source) has no id column (id, dicom_id, or study_id of CheXpert's layout); its columns are: \(table.header.joined(separator: ", "))")
    }
    let cols = try findings.map { try table.require($0) }
    var columns: [[Bool?]] = findings.map { _ in [] }
    var ids: [String] = []
    ids.reserveCapacity(table.count)
    var row = [String: Int](minimumCapacity: table.count)
    for k in columns.indices { columns[k].reserveCapacity(table.count) }
    for (r, fields) in table.rows.enumerated() {
      let id = fields[idCol]
      guard row.updateValue(ids.count, forKey: id) == nil else {
        throw FileError("\(table.source):\(table.lines[r]): id '\(id)' appears twice; keep one row per id")
      }
      ids.append(id)
      for (k, c) in cols.enumerated() {
        guard let cell = LabelCell(fields[c]) else {
          throw FileError("\(table.source):\(table.lines[r]): column '\(findings[k])' holds '\(fields[c])'; expected 1, 0, -1, 1.0, 0.0, -1.0 or blank")
        }
        columns[k].append(cell.label(policy))
      }
    }
    self.ids = ids
    self.row = row
    self.columns = Dictionary(uniqueKeysWithValues: zip(findings, columns))
  }
}

/// A model's predicted probabilities: `id,<finding>...` (other columns such as `path` ignored).
public struct Predictions: Sendable {
  public let name: String
  public let source: String
  public let ids: [String]
  /// finding -> score per row (aligned with `ids`).
  public let scores: [String: [Double]]
  /// The file's `# key: value` header lines (cxr predict writes which weights, their SHA-256 and
  /// what made the rows), in order; empty for a file without them.
  public var header: [(key: String, value: String)] = []

  public init(name: String, source: String, ids: [String], scores: [String: [Double]]) {
    self.name = name; self.source = source; self.ids = ids; self.scores = scores
  }

  public func header(_ key: String) -> String? { header.first { $0.key == key }?.value }

  public static func read(name: String, url: URL, findings: [String]) throws -> Predictions {
    try Predictions(name: name, table: try CSVTable.read(url), findings: findings)
  }

  public init(name: String, table: CSVTable, findings: [String]) throws {
    self.name = name; self.source = table.source
    header = table.comments.compactMap { c in
      let t = c.trimmingCharacters(in: .whitespaces)
      guard let colon = t.range(of: ": ") else { return nil }
      return (String(t[..<colon.lowerBound]), String(t[colon.upperBound...]))
    }
    let idCol = try table.require("id")
    let cols = try findings.map { try table.require($0) }
    var scores: [String: [Double]] = [:]
    for f in findings { scores[f] = []; scores[f]!.reserveCapacity(table.count) }
    var ids: [String] = []
    ids.reserveCapacity(table.count)
    var seen = Set<String>()
    for (r, row) in table.rows.enumerated() {
      let id = row[idCol]
      guard seen.insert(id).inserted else {
        throw FileError("\(table.source):\(table.lines[r]): id '\(id)' appears twice; keep one prediction per id")
      }
      ids.append(id)
      for (f, c) in zip(findings, cols) {
        if let v = Double(row[c]), v.isFinite { scores[f]!.append(v); continue }  // fast path: no spaces
        let text = row[c].trimmingCharacters(in: .whitespaces)
        guard let v = Double(text), v.isFinite else {
          let shown = text.isEmpty ? "a blank" : "'\(text)'"
          throw FileError("\(table.source):\(table.lines[r]): column '\(f)' of id '\(id)' holds \(shown), not a probability; re-run the prediction or remove that row")
        }
        scores[f]!.append(v)
      }
    }
    self.ids = ids
    self.scores = scores
  }
}

/// Findings to evaluate: the requested ones, else the prediction columns (other than `id` and
/// `path`) that every prediction and reference file has.
public func commonFindings(predictionTables: [CSVTable], referenceTables: [CSVTable]) throws -> [String] {
  guard let first = predictionTables.first else { throw FileError("give at least one --predictions NAME=file.csv") }
  var found = first.header.filter { $0 != "id" && $0 != "path" && !$0.isEmpty }
  for t in predictionTables.dropFirst() + referenceTables { found = found.filter { t.index(of: $0) != nil } }
  guard !found.isEmpty else {
    let all = (predictionTables + referenceTables).map { "\($0.source) (\($0.header.joined(separator: ", ")))" }
    throw FileError("no finding column is shared by all prediction and reference files; name them with --findings. Columns: \(all.joined(separator: "; "))")
  }
  return found
}
