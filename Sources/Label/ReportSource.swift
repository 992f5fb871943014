import Common
import Foundation

/// One report to label. `key` is what the answers file and the resume logic use; `idColumns` are
/// the values of the label file's id columns (`id`, or `subject_id, study_id`).
public struct Report {
  public let key: String
  public let idColumns: [String]
  public let text: String

  public init(key: String, idColumns: [String], text: String) {
    self.key = key
    self.idColumns = idColumns
    self.text = text
  }
}

/// The reports of one input, with what was left out and why.
public struct ReportSet {
  public let idHeader: [String]
  public let reports: [Report]
  /// Reports whose text was empty (after section choice): skipped and counted.
  public let emptySkipped: Int
  /// Rows that repeat an id already seen (CANDID-PTX has one row per mask region).
  public let duplicatesSkipped: Int

  public init(idHeader: [String], reports: [Report], emptySkipped: Int, duplicatesSkipped: Int) {
    self.idHeader = idHeader
    self.reports = reports
    self.emptySkipped = emptySkipped
    self.duplicatesSkipped = duplicatesSkipped
  }

  /// A CSV with an id column and a report text column, e.g. CANDID-PTX's `Pneumothorax_reports.csv`
  /// (`SOPInstanceUID, ..., Report`). A repeated id keeps its first report.
  public static func csv(_ url: URL, idColumn: String, textColumn: String) throws -> ReportSet {
    let table = try CSVTable.read(url)
    let idIdx = try table.require(idColumn)
    let textIdx = try table.require(textColumn)
    var seen = Set<String>()
    var reports: [Report] = []
    var empty = 0, dupes = 0
    for (r, row) in table.rows.enumerated() {
      let id = row[idIdx].trimmingCharacters(in: .whitespaces)
      if id.isEmpty { throw FileError("\(url.path):\(table.lines[r]): empty '\(idColumn)'; every row needs an id") }
      if !seen.insert(id).inserted { dupes += 1; continue }
      let text = row[textIdx].trimmingCharacters(in: .whitespacesAndNewlines)
      if text.isEmpty { empty += 1; continue }
      reports.append(Report(key: id, idColumns: [id], text: text))
    }
    return ReportSet(idHeader: ["id"], reports: reports, emptySkipped: empty, duplicatesSkipped: dupes)
  }

  /// MIMIC-CXR's report tree `files/pXX/pSUBJECT/sSTUDY.txt` (the folder given may be `files` or
  /// its parent); each study's text is its impression, else its findings, else its last section,
  /// the choice MIMIC-CXR-JPG's CheXpert labels were made from.
  public static func mimic(_ root: URL) throws -> ReportSet {
    var base = root
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
      throw FileError("\(root.path) is not a folder; give MIMIC-CXR's report folder (the one holding files/pXX)")
    }
    if fm.fileExists(atPath: root.appendingPathComponent("files").path) { base = root.appendingPathComponent("files") }
    var reports: [Report] = []
    var empty = 0
    let groups = try fm.contentsOfDirectory(atPath: base.path).filter { $0.hasPrefix("p") }.sorted()
    for g in groups {
      let gURL = base.appendingPathComponent(g)
      guard let subjects = try? fm.contentsOfDirectory(atPath: gURL.path) else { continue }
      for subject in subjects.sorted() where subject.hasPrefix("p") {
        let sURL = gURL.appendingPathComponent(subject)
        guard let studies = try? fm.contentsOfDirectory(atPath: sURL.path) else { continue }
        for file in studies.sorted() where file.hasPrefix("s") && file.hasSuffix(".txt") {
          let subjectId = String(subject.dropFirst())
          let studyId = String(file.dropFirst().dropLast(4))
          guard Int(subjectId) != nil, Int(studyId) != nil else { continue }
          let url = sURL.appendingPathComponent(file)
          let raw: String
          do { raw = try String(contentsOf: url, encoding: .utf8) } catch {
            throw FileError("cannot read \(url.path): \(error.localizedDescription)")
          }
          let text = MIMICSections.labelText(raw)
          if text.isEmpty { empty += 1; continue }
          reports.append(Report(key: "\(subjectId)/\(studyId)", idColumns: [subjectId, studyId], text: text))
        }
      }
    }
    if reports.isEmpty && empty == 0 {
      throw FileError("\(root.path) holds no report files files/pXX/pSUBJECT/sSTUDY.txt; check the folder")
    }
    return ReportSet(idHeader: ["subject_id", "study_id"], reports: reports, emptySkipped: empty, duplicatesSkipped: 0)
  }
}

/// Section choice for MIMIC-CXR reports, after MIT-LCP's section_parser: headers are upper-case
/// words ending in a colon at the start of a line; impression wins, then findings, then the last
/// section (the last paragraph when the report has no headers).
public enum MIMICSections {
  public static func sections(_ text: String) -> [(name: String, text: String)] {
    var out: [(String, String)] = []
    var name = "preamble"
    var body: [String] = []
    for line in text.components(separatedBy: "\n") {
      if let (header, rest) = header(line) {
        out.append((name, body.joined(separator: "\n")))
        name = header
        body = rest.isEmpty ? [] : [rest]
      } else {
        body.append(line)
      }
    }
    out.append((name, body.joined(separator: "\n")))
    return out.map { ($0.0, clean($0.1)) }.filter { !$0.1.isEmpty }
  }

  public static func labelText(_ text: String) -> String {
    let secs = sections(text)
    for wanted in ["impression", "findings"] {
      if let s = secs.last(where: { $0.name == wanted }) { return s.text }
    }
    if secs.count == 1 && secs[0].name == "preamble" {
      // No headers: the last paragraph.
      let paragraphs = text.components(separatedBy: "\n").split(whereSeparator: { $0.trimmingCharacters(in: .whitespaces).isEmpty })
      return paragraphs.last.map { clean($0.joined(separator: "\n")) } ?? ""
    }
    return secs.last?.text ?? ""
  }

  /// `IMPRESSION: text` -> ("impression", "text"); also normalises plural and merged headers.
  static func header(_ line: String) -> (String, String)? {
    let t = line.drop(while: { $0 == " " })
    guard let colon = t.firstIndex(of: ":") else { return nil }
    let h = t[..<colon]
    guard h.count >= 3, h.first!.isLetter,
          h.allSatisfy({ ($0.isLetter && $0.isUppercase) || " ()/,-&".contains($0) }) else { return nil }
    var name = h.lowercased().trimmingCharacters(in: .whitespaces)
    switch name {
    case "impressions", "conclusion", "conclusions", "findings and impression", "findings/impression",
         "impression and findings": name = "impression"
    case "finding": name = "findings"
    default: break
    }
    return (name, String(t[t.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
  }

  static func clean(_ s: String) -> String {
    s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
  }
}
