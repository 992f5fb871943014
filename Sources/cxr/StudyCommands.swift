import ArgumentParser
import Data
import Experiment
import Foundation
import Models
import Torch
import Common

/// Options every config-driven command shares.
struct ConfigOptions: ParsableArguments {
  @Argument(help: "The study config (YAML); see configs/study.yaml and `cxr config defaults`.") var config: String
  @Option(name: .customLong("set"), help: "Override a config key: key.path=value (repeatable; wins over the file).")
  var overrides: [String] = []

  func study() throws -> Study {
    let c = try Config.load(URL(fileURLWithPath: config), overrides: overrides)
    let study = try Study(c)
    let threads = c.settings.threads
    if threads > 0 { try Runtime.setThreads(threads) }
    return study
  }
}

struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train the classifier of one labelling schema (into <out>/<name>/<schema>/).")
  @OptionGroup var options: ConfigOptions
  @Option(help: "The schema (a `schemas` item's name) whose labels train the classifier.") var schema: String
  @Flag(help: "Continue from the last checkpoint in the schema's run folder.") var resume = false
  @Flag(name: .customLong("allow-changes"),
        help: "With --resume: continue although settings changed since the checkpoint; each change is recorded in changes.jsonl.")
  var allowChanges = false

  func run() throws {
    let study = try options.study()
    _ = try study.schemaIndex(schema)
    var scope = Preflight.Scope(schemas: [schema], test: false)
    // --resume checks the folder's settings itself (and --allow-changes records the changes).
    scope.changedFoldersAreProblems = !resume
    try Preflight(study: study).check(scope)
    if allowChanges && !resume { throw ValidationError("--allow-changes goes with --resume") }
    try exitOnInterrupt { try SchemaTraining(study: study, schema: schema).run(resume: resume, allowChanges: allowChanges) }
  }
}

/// Runs `body`; an `Interrupted` ends the process with 128 + the signal number (130 for
/// SIGINT, 143 for SIGTERM), after its message, as a shell expects of an interrupted command.
func exitOnInterrupt(_ body: () throws -> Void) throws {
  do { try body() } catch let stop as Interrupted {
    FileHandle.standardError.write(Data("interrupted: \(stop.message)\n".utf8))
    throw ExitCode(stop.exitCode)
  }
}

struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Run a checkpoint on images: a folder, a CSV with a path column, or a config's test set.",
    discussion: """
      cxr predict --checkpoint W.safetensors --input PATH --out preds.csv [--arch NAME --findings A,B]
      cxr predict --config CONFIG --schema NAME [--out preds.csv]
      Output: id,path,<finding>... with sigmoid probabilities, after `# key: value` lines naming the weights \
      (file, SHA-256, which weights), the build and device. A cxr checkpoint carries its input size and \
      equalization, which are applied; --size/--equalize that contradict it are errors. An interrupted run resumes \
      (only with the same weights and settings).
      """)
  @Option(help: "Model weights (safetensors; ours carry their arch and findings).") var checkpoint: String?
  @Option(help: "A folder of images (PNG, JPEG, DICOM; recursive) or a CSV with a `path` column.") var input: String?
  @Option(help: "A study config: predict its test set with a schema's classifier.") var config: String?
  @Option(help: "With --config: the schema whose classifier predicts.") var schema: String?
  @Option(name: .customLong("set"), help: "With --config: override a key (key.path=value).") var overrides: [String] = []
  @Option(help: "Output CSV (default with --config: the schema's predictions.csv).") var out: String?
  @Option(help: "Architecture of a plain timm file (e.g. convnext_base).") var arch: String?
  @Option(help: "Finding names of a plain timm file, one per output (A,B).") var findings: String?
  @Option(name: .customLong("in-chans"), help: "Model input channels (1: grayscale; a 3-channel stem is summed).") var inChans = 1
  @Option(help: "Longest side after resizing, padded to a square (default: the checkpoint's; 512 for a plain timm file).")
  var size: Int?
  @Flag(inversion: .prefixedNo, help: "Histogram-equalize images (default: as the checkpoint was trained; off for a plain timm file).")
  var equalize: Bool?
  @Option(help: "cpu, cuda or cuda:N.") var device = "cpu"
  @Option(help: "Images per batch.") var batch = StudyConfig.Predict.defaultBatchSize
  @Option(help: "Decoding threads (0 = all cores).") var workers = 0
  @Flag(name: .customLong("tta-hflip"), help: "Average with the horizontally mirrored image.") var ttaHflip = false

  func run() throws {
    if let config {
      guard let schema else { throw ValidationError("--config needs --schema NAME") }
      let study = try Study(try Config.load(URL(fileURLWithPath: config), overrides: overrides))
      _ = try study.schemaIndex(schema)
      try Preflight(study: study).check(Preflight.Scope(schemas: [], test: true))
      try exitOnInterrupt { try StudyRun(study: study).predict(schema: schema, out: out.map(URL.init(fileURLWithPath:))) }
      return
    }
    guard let checkpoint, let input, let out else {
      throw ValidationError("give --checkpoint, --input and --out (or --config CONFIG --schema NAME)")
    }
    let loaded = try ConvNeXt.load(checkpoint: URL(fileURLWithPath: checkpoint), arch: arch,
                                   findings: findings.map { $0.split(separator: ",").map(String.init) }, inChans: inChans)
    for line in loaded.adaptations { print("[model] \(line)") }
    var p = Prediction()
    p.preprocess = try Self.preprocess(contract: loaded.input, size: size, equalize: equalize, checkpoint: checkpoint)
    p.device = try Device(parsing: device)
    p.batchSize = batch
    p.workers = LoaderOptions.workers(workers)
    p.ttaHorizontalFlip = ttaHflip
    let images = try Prediction.images(at: URL(fileURLWithPath: input))
    try exitOnInterrupt { try p.run(loaded, weights: URL(fileURLWithPath: checkpoint), images: images, out: URL(fileURLWithPath: out)) }
  }

  /// The checkpoint's input contract, or the flags for a file without one; a flag that
  /// contradicts the contract is an error naming both values.
  static func preprocess(contract: InputContract?, size: Int?, equalize: Bool?, checkpoint: String) throws -> PreprocessSettings {
    guard let contract else { return PreprocessSettings(size: size ?? 512, equalize: equalize ?? false) }
    if let size, size != contract.size {
      throw ValidationError("--size \(size) contradicts \(checkpoint), which was trained at size \(contract.size); drop --size")
    }
    if let equalize, equalize != contract.equalize {
      throw ValidationError("--\(equalize ? "" : "no-")equalize contradicts \(checkpoint), which was trained on \(contract.equalize ? "equalized" : "unequalized") images; drop the flag")
    }
    guard (32...4096).contains(contract.size) else { throw ValidationError("\(checkpoint) gives input size \(contract.size), outside 32...4096") }
    return PreprocessSettings(size: contract.size, equalize: contract.equalize)
  }
}

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run a whole study: train and predict per schema, evaluate against every reference, report.")
  @OptionGroup var options: ConfigOptions
  @Option(help: "Re-run a stage even if up to date: predict, evaluate, or one like predict:NAME (repeatable).")
  var force: [String] = []
  @Option(help: "Train a schema again (NAME or all, repeatable): its old folder is moved aside to <schema>.replaced-<UTC time>, never deleted.")
  var retrain: [String] = []

  func run() throws {
    let study = try options.study()
    let runner = StudyRun(study: study)
    var outcomes: [(String, StageOutcome)] = []
    try exitOnInterrupt { outcomes = try runner.run(force: Set(force), retrain: Set(retrain)) }
    let failed = outcomes.filter { !$0.1.succeeded }
    if !failed.isEmpty {
      FileHandle.standardError.write(Data("\(failed.count) stage(s) did not finish; see \(study.runRoot.path)/report.md\n".utf8))
      throw ExitCode(1)
    }
  }
}
