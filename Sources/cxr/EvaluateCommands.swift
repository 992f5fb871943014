import ArgumentParser
import Evaluate
import Foundation

extension UncertainPolicy: ExpressibleByArgument {}

struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "AUROC and AUPRC with bootstrap CIs of every model against every reference, with DeLong's test between models.",
    discussion: """
      Prediction files: id,<finding>... (other columns such as path are ignored). Reference files: id and one \
      column per finding holding 1/0, or CheXpert's 1.0/0.0/-1.0/blank (blank = not mentioned = negative; \
      -1.0 follows --uncertain). Writes DIR/metrics.csv, comparisons.csv, metrics.json, report.md, report.html.
      """)

  @Option(name: .customLong("predictions"), help: "NAME=preds.csv (repeat for each model).")
  var predictions: [String] = []
  @Option(name: .customLong("reference"), help: "NAME=labels.csv (repeat for each reference).")
  var references: [String] = []
  @Option(help: "Comma-separated findings (default: the columns all files share).")
  var findings: String?
  @Option(help: "Bootstrap rounds for the 95 % CIs (0: none).")
  var bootstrap = 1000
  @Option(help: "Bootstrap seed.")
  var seed: UInt64 = 0
  @Option(help: "What a reference's uncertain label (-1) becomes: ones, zeros or ignore.")
  var uncertain: UncertainPolicy = .ones
  @Option(help: "Output folder.")
  var out: String

  func run() throws {
    let list = findings.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let result = try Jobs.evaluate(predictions: predictions, references: references, findings: list, uncertain: uncertain,
                                   rounds: bootstrap, seed: seed, out: URL(fileURLWithPath: out))
    for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    print("wrote \(result.rows.count) metric rows and \(result.comparisons.count) comparisons to \(out)/ (metrics.csv, comparisons.csv, metrics.json, report.md, report.html)")
  }
}

struct AgreeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agree",
    abstract: "Each label schema against human annotations: accuracy, sensitivity, specificity, PPV, NPV, F1 with bootstrap CIs; Gwet's AC1 between annotators.",
    discussion: """
      Human file: id and one column per finding holding 1/0 (or present/absent); equivocal cases (-1, 'equivocal', \
      'uncertain' or blank) are left out for that finding. Schema files: as references of `cxr evaluate`. \
      --annotators names two columns of the human file; {finding} in a name stands for each finding. \
      Writes DIR/agreement.csv, confusion.csv, agreement.json, report.md, report.html.
      """)

  @Option(help: "The human annotations CSV.")
  var human: String
  @Option(name: .customLong("schema"), help: "NAME=labels.csv (repeat for each schema).")
  var schemas: [String] = []
  @Option(help: "Comma-separated findings (default: the columns all files share).")
  var findings: String?
  @Option(help: "Two annotator columns for Gwet's AC1, e.g. {finding}_r1,{finding}_r2.")
  var annotators: String?
  @Option(help: "Bootstrap rounds for the 95 % CIs (0: none).")
  var bootstrap = 1000
  @Option(help: "Bootstrap seed.")
  var seed: UInt64 = 0
  @Option(help: "What a schema's uncertain label (-1) becomes: ones, zeros or ignore.")
  var uncertain: UncertainPolicy = .ones
  @Option(help: "Output folder.")
  var out: String

  func run() throws {
    let list = findings.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let result = try Jobs.agree(human: human, schemas: schemas, findings: list, annotators: annotators, uncertain: uncertain,
                                rounds: bootstrap, seed: seed, out: URL(fileURLWithPath: out))
    for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    print("wrote \(result.rows.count) metric rows to \(out)/ (agreement.csv, confusion.csv, agreement.json, report.md, report.html)")
  }
}
