import ArgumentParser
import Evaluate
import Foundation

/// `cxr labels ...`: label files as data (labellers compared with one another).
struct LabelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "labels",
    abstract: "Labellers of the same reports compared with one another, without human labels.",
    subcommands: [LabelsCompare.self])
}

struct LabelsCompare: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Pairwise agreement (raw, Cohen's kappa, Gwet's AC1) and Dawid-Skene estimates of each labeller's sensitivity, specificity and the prevalence, per finding, with bootstrap CIs.",
    discussion: """
      Label files: as references of `cxr evaluate` (an id, dicom_id or study_id column and one column per finding: \
      1/0, or CheXpert's 1.0/0.0/-1.0/blank; blank = negative; -1 follows --uncertain, `ignore` leaves it out as \
      missing). At least 3 labellers. With --human (as `cxr agree` reads it), the sensitivity and specificity measured \
      against the human reading stand next to the estimates. Writes DIR/pairwise.csv, dawid_skene.csv, consensus.csv \
      (each report's posterior probability per finding: a soft-label file), comparison.json and report.md.
      """)

  @Option(name: .customLong("schema"), help: "NAME=labels.csv (repeat for each labeller; at least 3).")
  var schemas: [String] = []
  @Option(help: "Human annotations CSV (id and one column per finding), as cxr agree reads it.")
  var human: String?
  @Option(help: "Comma-separated findings (default: the columns all files share).")
  var findings: String?
  @Option(help: "What an uncertain label (-1) becomes before the fit: ones, zeros or ignore (missing).")
  var uncertain: UncertainPolicy = .ones
  @Option(help: "Bootstrap rounds for the 95 % CIs (0: none).")
  var bootstrap = 1000
  @Option(help: "Bootstrap seed.")
  var seed: UInt64 = 0
  @Option(help: "Output folder.")
  var out: String

  func run() throws {
    let list = findings.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let result = try Jobs.compareLabels(schemas: schemas, human: human, findings: list, uncertain: uncertain, rounds: bootstrap,
                                        seed: seed, out: URL(fileURLWithPath: out))
    for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    print("compared \(result.labellers.count) labellers on \(result.ids.count) reports (\(result.findings.joined(separator: ", "))): \(out)/ (pairwise.csv, dawid_skene.csv, consensus.csv, comparison.json, report.md)")
  }
}
