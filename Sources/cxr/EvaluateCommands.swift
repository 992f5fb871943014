import ArgumentParser
import Evaluate
import Experiment
import Foundation

extension UncertainPolicy: ExpressibleByArgument {}

struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "AUROC and AUPRC with bootstrap CIs of every model against every reference, with DeLong's test between models.",
    discussion: """
      Prediction files: id,<finding>... (other columns such as path are ignored). Reference files: id and one \
      column per finding holding 1/0, or CheXpert's 1.0/0.0/-1.0/blank (blank = not mentioned = negative; \
      -1.0 follows --uncertain). Operating points: thresholds chosen on the tuning split's predictions \
      (--tune-predictions, one per model, with --tune-reference; Youden's J, sensitivity >= 0.90/0.95, specificity >= \
      0.90/0.95) and any --threshold, applied to the test set; sensitivity at specificity 0.90/0.95 read off the test ROC \
      is reported too, flagged as test-chosen. Subgroups (--subgroups FILE): per attribute value, n, prevalence, AUROC and \
      AUPRC with CIs and the difference to the complement with a paired-bootstrap CI (subgroups.csv). Calibration: Brier score and ECE (equal-width and equal-mass bins). \
      Writes DIR/metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv, curve_bands.csv, subgroups.csv, metrics.json, \
      report.md, report.html and every figure as SVG and PDF (figures/). A reference file in CheXpert's layout (subject_id,study_id,...) is keyed by study_id \
      when it has no id column (for CANDID-PTX the study id names the image).
      cxr evaluate --config CONFIG [--out DIR]: the study's evaluation on its own, as cxr run makes it: each \
      schema's predictions.csv against every reference the config gives (the CANDID-PTX masks, each schema's \
      test_file read with its format, column and value maps and uncertainty policy, the extra references).
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
  @Option(name: .customLong("tune-predictions"), help: "NAME=tune_preds.csv: the tuning split's predictions of model NAME, where the operating points' thresholds are chosen (repeat for each model).")
  var tunePredictions: [String] = []
  @Option(name: .customLong("tune-reference"), help: "The tuning split's labels (as a reference file) for --tune-predictions.")
  var tuneReference: String?
  @Option(name: .customLong("threshold"), help: "A fixed threshold in [0, 1] to report the operating point of (repeatable).")
  var thresholds: [Double] = []
  @Option(name: .customLong("calibration-bins"), help: "Bins of the expected calibration error and reliability diagrams.")
  var calibrationBins = 10
  @Option(name: .customLong("curve-band-points"), help: "Grid points of the ROC and PR curves' pointwise bootstrap bands (curve_bands.csv, the shaded bands); 0 = no bands.")
  var curveBandPoints = 101
  @Option(help: "A CSV keyed by image id (id, dicom_id or SOPInstanceUID) whose other columns are per-image attributes (sex, age band, site, chest tube, view): each value becomes a subgroup, reported against its complement in subgroups.csv and the reports.")
  var subgroups: String?
  @Option(name: .customLong("subgroup-columns"), help: "With --subgroups: comma-separated columns to stratify by (default: every column but the id).")
  var subgroupColumns: String?
  @Option(name: .customLong("subgroup-min-cases"), help: "The fewest cases a subgroup and its complement each need to be reported.")
  var subgroupMinCases = Subgroups.defaultMinimumCases
  @Option(help: "A study config: evaluate its schemas' predictions against its references (as cxr run does).")
  var config: String?
  @Option(name: .customLong("set"), help: "With --config: override a key (key.path=value).")
  var overrides: [String] = []
  @Option(help: "Output folder (with --config, default: the run's evaluation folder).")
  var out: String?

  func run() throws {
    if let config {
      guard subgroups == nil, subgroupColumns == nil else {
        throw ValidationError("with --config the subgroups come from the config (evaluate.subgroups.file, evaluate.subgroups.columns); drop --subgroups/--subgroup-columns or set them with --set")
      }
      guard predictions.isEmpty, references.isEmpty else {
        throw ValidationError("--config evaluates the study's own predictions against its references; drop --predictions/--reference, or drop --config")
      }
      let runner = StudyRun(study: try Study(try Config.load(URL(fileURLWithPath: config), overrides: overrides)))
      let folder = out.map(URL.init(fileURLWithPath:)) ?? runner.evaluationFolder
      try runner.evaluate(out: folder)
      print("wrote the study's evaluation to \(folder.path)/ (metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv, curve_bands.csv, subgroups.csv, metrics.json, report.md, report.html, figures/)")
      return
    }
    guard let out else { throw ValidationError("give --out DIR (or --config CONFIG)") }
    let list = findings.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let result = try Jobs.evaluate(predictions: predictions, references: references, findings: list, uncertain: uncertain,
                                   rounds: bootstrap, seed: seed, tunePredictions: tunePredictions, tuneReference: tuneReference,
                                   thresholds: thresholds, calibrationBins: calibrationBins, curveBandPoints: curveBandPoints, subgroups: subgroups,
                                   subgroupColumns: subgroupColumns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
                                   minimumSubgroupCases: subgroupMinCases, out: URL(fileURLWithPath: out))
    for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    print("wrote \(result.rows.count) metric rows, \(result.comparisons.count) comparisons and \(result.operatingPoints.count) operating points to \(out)/ (metrics.csv, comparisons.csv, operating_points.csv, calibration.csv, reliability.csv, curve_bands.csv, subgroups.csv, metrics.json, report.md, report.html, figures/)")
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
