import Common
import Foundation

/// How uncertain labels (-1) become training targets.
public enum UncertaintyPolicy: String, Sendable, CaseIterable {
  /// Uncertain counts as positive (U-ones; the study's choice).
  case ones
  /// Uncertain counts as negative (U-zeros).
  case zeros
  /// Uncertain is left out of the loss for that finding only; the image stays (U-ignore).
  case ignore
}

/// The layout of a label file.
public enum LabelFormat: String, Sendable, CaseIterable {
  /// CheXpert / NegBio: one column per finding named after it, values 1.0, 0.0, -1.0 or blank.
  case chexpert
  /// Any CSV with one text column per finding, turned into labels by a value map
  /// (covers RadPrompter: `index`, `<variable>_response`, `#Key: value` comment lines).
  case mapped
  /// Soft labels: one column per finding holding P(positive) in [0, 1] (e.g. the `consensus.csv`
  /// of `cxr labels compare`); training targets are the probabilities. Default id column `id`.
  case probability
}

/// What the id column(s) of a label file name: a study (one report) or a single image.
public enum LabelJoin: String, Sendable {
  case study
  case image
}

/// One labelling schema: a label file and how to read it. Built from plain values (the
/// experiment layer fills it from YAML); nothing here reads global state.
public struct LabelSchema: Sendable {
  public var name: String
  public var file: URL
  public var format: LabelFormat
  /// One column (the study or image id) or two (subject id, then study id).
  /// Defaults: chexpert `subject_id, study_id`; mapped `index`.
  public var idColumns: [String]
  /// Finding -> column. A finding not listed here is looked up by the default names (see
  /// `candidateColumns`).
  public var columns: [String: String]
  /// Text -> label for `mapped` files. Matched exactly, then ignoring case and surrounding
  /// spaces. A blank cell is always `.blank`.
  public var values: [String: LabelValue]
  public var uncertainty: UncertaintyPolicy
  /// What the ids name; nil means the dataset's own choice (MIMIC: study, CANDID: image).
  public var join: LabelJoin?

  public static let defaultValueMap: [String: LabelValue] = [
    "Present": .positive, "Absent": .negative, "Uncertain": .uncertain,
  ]

  public init(name: String, file: URL, format: LabelFormat, idColumns: [String]? = nil,
              columns: [String: String] = [:], values: [String: LabelValue]? = nil,
              uncertainty: UncertaintyPolicy = .ones, join: LabelJoin? = nil) {
    self.name = name
    self.file = file
    self.format = format
    self.idColumns = idColumns ?? (format == .chexpert ? ["subject_id", "study_id"] : format == .probability ? ["id"] : ["index"])
    self.columns = columns
    self.values = values ?? LabelSchema.defaultValueMap
    self.uncertainty = uncertainty
    self.join = join
  }

  /// Column names tried for a finding without an explicit mapping, in order: the finding
  /// itself, then for `mapped` files RadPrompter's `<variable>_response` spellings.
  public func candidateColumns(for finding: String) -> [String] {
    if let c = columns[finding] { return [c] }
    guard format == .mapped else { return [finding] }
    let snake = finding.lowercased().replacingOccurrences(of: " ", with: "_")
    var out = [finding, "\(finding)_response", "\(snake)_response", snake]
    var seen = Set<String>()
    out = out.filter { seen.insert($0).inserted }
    return out
  }

  /// A schema from the command-line form `NAME=FILE[:chexpert|mapped]` (format chexpert when
  /// not given). `values` and `mappedIDColumn` apply to mapped files only.
  public init(spec: String, uncertainty: UncertaintyPolicy, values: [String: LabelValue]? = nil,
              mappedIDColumn: String? = nil) throws {
    guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
      throw FileError("--schema '\(spec)' is not NAME=FILE[:chexpert|mapped]")
    }
    var file = String(spec[spec.index(after: eq)...])
    var format = LabelFormat.chexpert
    if let colon = file.lastIndex(of: ":"), let f = LabelFormat(rawValue: String(file[file.index(after: colon)...])) {
      format = f
      file = String(file[..<colon])
    }
    guard !file.isEmpty else { throw FileError("--schema '\(spec)' names no file") }
    self.init(name: String(spec[..<eq]), file: URL(fileURLWithPath: file), format: format,
              idColumns: format == .mapped ? mappedIDColumn.map { [$0] } : nil,
              values: format == .mapped ? values : nil, uncertainty: uncertainty)
  }

  /// Parses a value map written as `Present->1, Absent->0, Uncertain->-1` (targets 1, 0, -1,
  /// or `blank`).
  public static func parseValueMap(_ text: String) throws -> [String: LabelValue] {
    var map: [String: LabelValue] = [:]
    for entry in text.split(separator: ",") {
      let parts = entry.components(separatedBy: "->")
      guard parts.count == 2 else {
        throw FileError("value map entry '\(entry.trimmingCharacters(in: .whitespaces))' is not TEXT->LABEL (e.g. Present->1)")
      }
      let key = parts[0].trimmingCharacters(in: .whitespaces)
      let label = parts[1].trimmingCharacters(in: .whitespaces)
      switch label {
      case "1", "1.0": map[key] = .positive
      case "0", "0.0": map[key] = .negative
      case "-1", "-1.0": map[key] = .uncertain
      case "blank", "": map[key] = .blank
      default:
        throw FileError("value map entry '\(key)->\(label)': the label must be 1, 0, -1 or blank")
      }
    }
    return map
  }
}

/// Config values that must be one of a few words: the error names where the value came
/// from (e.g. `study.yaml: schemas.llama3.uncertainty`) and lists the accepted words.
public protocol ConfigWord: RawRepresentable, CaseIterable where RawValue == String {}

extension ConfigWord {
  public init(config value: String, context: String) throws {
    guard let v = Self(rawValue: value.trimmingCharacters(in: .whitespaces)) else {
      throw FileError("\(context): '\(value)' is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self = v
  }
}

extension UncertaintyPolicy: ConfigWord {}
extension LabelFormat: ConfigWord {}
