import Common
import Evaluate
import Foundation

/// The reports chosen for annotation and who reads each.
public struct SamplePlan: Sendable {
  public struct Report: Sendable, Equatable {
    public var id: String
    public var text: String
    /// The stratum the report was drawn from, e.g. `Pneumothorax=1;Fracture=0` (or `all`).
    public var stratum: String
  }
  public struct Assignment: Sendable, Equatable {
    /// Index into `reports`.
    public var report: Int
    public var annotator: String
    /// 1 or 2: the report's first or second reader.
    public var slot: Int
    /// Order of the item in the annotator's own list (0-based).
    public var position: Int
  }
  public var reports: [Report]
  public var assignments: [Assignment]
  public var annotators: [String]
  /// stratum -> (available, drawn).
  public var strata: [(stratum: String, available: Int, drawn: Int)]
}

public enum Sampling {
  /// Reads `id`/`text` columns of a reports CSV. An empty id, a repeated id or an empty text is
  /// an error naming the row: a reference standard should not silently drop reports.
  public static func readReports(_ url: URL, idColumn: String, textColumn: String) throws -> [(id: String, text: String)] {
    let table = try CSVTable.read(url)
    guard let idIdx = table.index(of: idColumn) else {
      throw FileError("\(url.path) has no id column '\(idColumn)' (its columns are: \(table.header.joined(separator: ", "))); name it with --id-column")
    }
    guard let textIdx = table.index(of: textColumn) else {
      throw FileError("\(url.path) has no report text column '\(textColumn)' (its columns are: \(table.header.joined(separator: ", "))); name it with --text-column")
    }
    var seen = Set<String>()
    var out: [(String, String)] = []
    for (r, row) in table.rows.enumerated() {
      let id = row[idIdx].trimmingCharacters(in: .whitespaces)
      guard !id.isEmpty else { throw FileError("\(url.path):\(table.lines[r]): empty '\(idColumn)'; every report needs an id") }
      guard seen.insert(id).inserted else {
        throw FileError("\(url.path):\(table.lines[r]): id '\(id)' appears twice; keep one row per report")
      }
      let text = row[textIdx].trimmingCharacters(in: .whitespacesAndNewlines)
      guard !text.isEmpty else { throw FileError("\(url.path):\(table.lines[r]): report '\(id)' has an empty '\(textColumn)'; remove that row or fill it") }
      out.append((id, text))
    }
    guard !out.isEmpty else { throw FileError("\(url.path) holds no reports") }
    return out
  }

  /// The stratum of each id from a schema's label file: the label of each finding as
  /// 1 (positive), -1 (uncertain) or 0 (negative or not mentioned).
  public static func readStrata(_ url: URL, findings: [String], idColumn: String) throws -> [String: String] {
    let table = try CSVTable.read(url)
    let idName = table.index(of: idColumn) != nil ? idColumn : "id"
    guard let idIdx = table.index(of: idName) else {
      throw FileError("\(url.path) has no id column '\(idColumn)' (its columns are: \(table.header.joined(separator: ", "))); the label file must use the reports' ids")
    }
    var cols: [Int] = []
    for f in findings {
      guard let c = table.index(of: f) else {
        throw FileError("\(url.path) has no column '\(f)' to stratify by (its columns are: \(table.header.joined(separator: ", "))); check --findings")
      }
      cols.append(c)
    }
    var strata: [String: String] = [:]
    for (r, row) in table.rows.enumerated() {
      var parts: [String] = []
      for (f, c) in zip(findings, cols) {
        let v = row[c].trimmingCharacters(in: .whitespaces).lowercased()
        let k: String
        switch v {
        case "1", "1.0", "present", "positive", "yes", "true": k = "1"
        case "-1", "-1.0", "uncertain": k = "-1"
        case "", "0", "0.0", "absent", "negative", "no", "false": k = "0"
        default:
          throw FileError("\(url.path):\(table.lines[r]): column '\(f)' holds '\(row[c])'; expected 1, 0, -1 or blank")
        }
        parts.append("\(f)=\(k)")
      }
      strata[row[idIdx].trimmingCharacters(in: .whitespaces)] = parts.joined(separator: ";")
    }
    return strata
  }

  /// Draws `sample` reports, proportionally from each stratum (largest remainders; ties to the
  /// stratum that sorts first), shuffles them, and gives each report two of `annotators`,
  /// cycling through every pair so that each annotator reads 2N/m reports and each pair about
  /// the same number. Deterministic for `seed`.
  public static func plan(reports: [(id: String, text: String)], strata: [String: String]?, sample: Int,
                          annotators: [String], seed: UInt64, reportsSource: String, labelSource: String?) throws -> SamplePlan {
    guard annotators.count >= 2 else {
      throw FileError("--annotators needs at least two names (each report is read by two), got \(annotators.count)")
    }
    var names = Set<String>()
    for a in annotators {
      guard !a.isEmpty else { throw FileError("--annotators holds an empty name; give names like a,b,c") }
      guard names.insert(a).inserted else { throw FileError("--annotators names '\(a)' twice; each annotator once") }
    }
    guard sample > 0 else { throw FileError("--sample must be at least 1, got \(sample)") }
    guard sample <= reports.count else {
      throw FileError("--sample \(sample) is larger than the \(reports.count) reports in \(reportsSource); ask for at most \(reports.count)")
    }
    var byStratum: [String: [Int]] = [:]
    var stratumOf: [Int: String] = [:]
    if let strata {
      var missing: [String] = []
      for (i, r) in reports.enumerated() {
        guard let s = strata[r.id] else { missing.append(r.id); continue }
        byStratum[s, default: []].append(i)
        stratumOf[i] = s
      }
      if !missing.isEmpty {
        throw FileError("\(missing.count) report id(s) of \(reportsSource) are not in the label file \(labelSource ?? ""), e.g. '\(missing[0])'; stratify with a label file covering every report")
      }
    } else {
      byStratum["all"] = Array(reports.indices)
    }
    let keys = byStratum.keys.sorted()
    let total = reports.count
    var quota: [Int] = [], remainders: [(Double, Int)] = []
    for (k, key) in keys.enumerated() {
      let exact = Double(sample) * Double(byStratum[key]!.count) / Double(total)
      quota.append(Int(exact.rounded(.down)))
      remainders.append((exact - exact.rounded(.down), k))
    }
    var left = sample - quota.reduce(0, +)
    for (_, k) in remainders.sorted(by: { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }) where left > 0 {
      quota[k] += 1; left -= 1
    }
    var rng = SeededRandom(seed: seed, stream: 0x616e6e6f)  // "anno"
    var chosen: [Int] = []
    var summary: [(String, Int, Int)] = []
    for (k, key) in keys.enumerated() {
      var pool = byStratum[key]!
      shuffle(&pool, &rng)
      chosen += pool.prefix(quota[k])
      summary.append((key, pool.count, quota[k]))
    }
    shuffle(&chosen, &rng)
    var pairs: [(Int, Int)] = []
    for i in 0..<annotators.count { for j in (i + 1)..<annotators.count { pairs.append((i, j)) } }
    var nextPosition = [Int](repeating: 0, count: annotators.count)
    var plan = SamplePlan(reports: [], assignments: [], annotators: annotators, strata: summary)
    for (n, idx) in chosen.enumerated() {
      plan.reports.append(.init(id: reports[idx].id, text: reports[idx].text, stratum: stratumOf[idx] ?? "all"))
      let pair = pairs[n % pairs.count]
      // Alternate who is the first reader, so slot 1 is not always the earlier name.
      let (first, second) = (n / pairs.count) % 2 == 0 ? pair : (pair.1, pair.0)
      for (slot, a) in [(1, first), (2, second)] {
        plan.assignments.append(.init(report: n, annotator: annotators[a], slot: slot, position: nextPosition[a]))
        nextPosition[a] += 1
      }
    }
    return plan
  }

  static func shuffle(_ a: inout [Int], _ rng: inout SeededRandom) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
      let j = rng.index(below: i + 1)
      a.swapAt(i, j)
    }
  }
}
