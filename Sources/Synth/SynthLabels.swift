import Common
import Data
import Foundation

/// The 14 CheXpert findings, in the order of MIMIC-CXR's label files.
enum SynthFindings {
  static let all = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
                    "Fracture", "Lung Lesion", "Lung Opacity", "Pleural Effusion", "Pneumonia",
                    "Pneumothorax", "Pleural Other", "Support Devices", "No Finding"]
  /// Findings that exist only in the labels (nothing is drawn for them), with their prevalence.
  static let labelOnly: [(name: String, prevalence: Double)] = [
    ("Atelectasis", 0.18), ("Cardiomegaly", 0.14), ("Consolidation", 0.07), ("Edema", 0.1),
    ("Enlarged Cardiomediastinum", 0.05), ("Lung Lesion", 0.04), ("Lung Opacity", 0.18),
    ("Pleural Effusion", 0.16), ("Pneumonia", 0.07), ("Pleural Other", 0.02), ("Support Devices", 0.2),
  ]
  /// RadPrompter's column for a finding: `<variable>_response` with a snake_case variable.
  static func responseColumn(_ finding: String) -> String {
    finding.lowercased().replacingOccurrences(of: " ", with: "_") + "_response"
  }
}

/// What one report says, truly: the drawn signs and the label-only findings.
struct ReportTruth {
  var pneumothorax: PneumothoraxSign?
  var fracture: FractureSign?
  /// A drawn chest tube (it makes "Support Devices" present).
  var chestTube: ChestTubeSign? = nil
  /// Label-only findings present, by name.
  var present: Set<String>
  /// Negative findings the report mentions explicitly ("no pneumothorax" -> 0.0; else blank).
  var negated: Set<String>

  func isPositive(_ finding: String) -> Bool {
    switch finding {
    case "Pneumothorax": return pneumothorax != nil
    case "Fracture": return fracture != nil
    default: return present.contains(finding)
    }
  }

  /// A small pneumothorax or a two-rib fracture: described in passing, missed more often.
  func isSubtle(_ finding: String) -> Bool {
    switch finding {
    case "Pneumothorax": return pneumothorax?.isSubtle == true
    case "Fracture": return fracture?.isSubtle == true
    default: return false
    }
  }
}

/// One label value as a labeller wrote it.
enum SynthLabel: Equatable {
  case positive, negative, uncertain, blank

  var chexpert: String {
    switch self {
    case .positive: return "1.0"
    case .negative: return "0.0"
    case .uncertain: return "-1.0"
    case .blank: return ""
    }
  }

  /// RadPrompter-style text: an LLM answers every question, so there is no blank.
  var radprompter: String {
    switch self {
    case .positive: return "Present"
    case .uncertain: return "Uncertain"
    case .negative, .blank: return "Absent"
    }
  }
}

/// How often a simulated labeller errs on one finding.
struct ErrorRates: Equatable {
  /// P(a true positive is written negative or blank).
  var miss: Double
  /// Overrides `miss` for subtle cases (a small pneumothorax, a two-rib fracture) when set.
  var subtleMiss: Double?
  /// P(a true negative is written positive).
  var falsePositive: Double
  /// P(any case is written uncertain), drawn first.
  var uncertain: Double
}

/// A simulated labelling schema: its file format and its error model.
public struct SynthSchema: Sendable {
  public enum Format: String, Sendable {
    /// `subject_id, study_id` + the 14 findings; 1.0 / 0.0 / -1.0 / blank.
    case chexpert
    /// RadPrompter: `#Key: value` lines, then `index` + `<finding>_response`, quoted
    /// Present / Absent / Uncertain.
    case radprompter
  }

  public let name: String
  public let format: Format
  public let summary: String
  let pneumothorax: ErrorRates
  let fracture: ErrorRates
  /// P(a label-only finding is flipped).
  let otherFlip: Double

  func rates(_ finding: String) -> ErrorRates? {
    finding == "Pneumothorax" ? pneumothorax : finding == "Fracture" ? fracture : nil
  }

  static let exact = ErrorRates(miss: 0, falsePositive: 0, uncertain: 0)

  public static let all: [SynthSchema] = [
    SynthSchema(name: "truth", format: .chexpert, summary: "the true labels (what was drawn)",
                pneumothorax: exact, fracture: exact, otherFlip: 0),
    SynthSchema(name: "llm", format: .chexpert,
                summary: "an LLM zero-shot labeller: close to the truth",
                pneumothorax: ErrorRates(miss: 0.03, falsePositive: 0.03, uncertain: 0.02),
                fracture: ErrorRates(miss: 0.04, falsePositive: 0.02, uncertain: 0.02), otherFlip: 0.02),
    SynthSchema(name: "rule", format: .chexpert,
                summary: "a rule-based labeller like the CheXpert labeler: misses about half the fractures (most two-rib ones) and most small pneumothoraces, over-calls pneumothorax",
                pneumothorax: ErrorRates(miss: 0.05, subtleMiss: 0.6, falsePositive: 0.15, uncertain: 0.05),
                fracture: ErrorRates(miss: 0.25, subtleMiss: 0.75, falsePositive: 0.01, uncertain: 0.02),
                otherFlip: 0.05),
    SynthSchema(name: "llm_cot", format: .radprompter,
                summary: "an LLM chain-of-thought labeller written as RadPrompter output",
                pneumothorax: ErrorRates(miss: 0.02, falsePositive: 0.02, uncertain: 0.03),
                fracture: ErrorRates(miss: 0.03, falsePositive: 0.02, uncertain: 0.03), otherFlip: 0.02),
  ]

  /// This schema's labels for one report. `rng` is the report's own stream for this schema.
  func label(_ truth: ReportTruth, rng: inout SplitMix64) -> [String: SynthLabel] {
    var out: [String: SynthLabel] = [:]
    for finding in SynthFindings.all where finding != "No Finding" {
      let positive = truth.isPositive(finding)
      let negativeForm: SynthLabel = truth.negated.contains(finding) ? .negative : .blank
      // Every draw is made whatever its outcome, so one finding's errors never shift another's.
      let uUncertain = rng.uniform(), uError = rng.uniform()
      if let r = rates(finding) {
        let miss = truth.isSubtle(finding) ? (r.subtleMiss ?? r.miss) : r.miss
        if uUncertain < r.uncertain {
          out[finding] = .uncertain
        } else if positive {
          out[finding] = uError < miss ? (uError < miss * 0.3 ? .negative : .blank) : .positive
        } else {
          out[finding] = uError < r.falsePositive ? .positive : negativeForm
        }
      } else {
        let flip = uError < otherFlip
        out[finding] = positive != flip ? .positive : negativeForm
      }
    }
    let anyFinding = out.contains { $0.key != "Support Devices" && ($0.value == .positive || $0.value == .uncertain) }
    out["No Finding"] = anyFinding ? .blank : .positive
    return out
  }
}
