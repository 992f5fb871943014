import ArgumentParser
import Data
import Experiment
import Foundation
import Models
import Torch

/// Options every config-driven command shares.
struct ConfigOptions: ParsableArguments {
  @Argument(help: "The study config (YAML); see configs/study.yaml and `cxr config defaults`.") var config: String
  @Option(name: .customLong("set"), help: "Override a config key: key.path=value (repeatable; wins over the file).")
  var overrides: [String] = []

  func study() throws -> Study {
    let c = try Config.load(URL(fileURLWithPath: config), overrides: overrides)
    let study = try Study(c)
    let threads = try c.int("threads")
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

  func run() throws {
    let study = try options.study()
    _ = try study.schemaIndex(schema)
    try SchemaTraining(study: study, schema: schema).run(resume: resume)
  }
}

struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Run a checkpoint on images: a folder, a CSV with a path column, or a config's test set.",
    discussion: """
      cxr predict --checkpoint W.safetensors --input PATH --out preds.csv [--arch NAME --findings A,B]
      cxr predict --config CONFIG --schema NAME [--out preds.csv]
      Output: id,path,<finding>... with sigmoid probabilities. An interrupted run resumes.
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
  @Option(help: "Longest side after resizing, padded to a square.") var size = 512
  @Flag(inversion: .prefixedNo, help: "Histogram-equalize images (on for DICOMs that were not equalized).") var equalize = false
  @Option(help: "cpu, cuda or cuda:N.") var device = "cpu"
  @Option(help: "Images per batch.") var batch = 16
  @Option(help: "Decoding threads (0 = all cores).") var workers = 0
  @Flag(name: .customLong("tta-hflip"), help: "Average with the horizontally mirrored image.") var ttaHflip = false

  func run() throws {
    if let config {
      guard let schema else { throw ValidationError("--config needs --schema NAME") }
      let study = try Study(try Config.load(URL(fileURLWithPath: config), overrides: overrides))
      _ = try study.schemaIndex(schema)
      try StudyRun(study: study).predict(schema: schema, out: out.map(URL.init(fileURLWithPath:)))
      return
    }
    guard let checkpoint, let input, let out else {
      throw ValidationError("give --checkpoint, --input and --out (or --config CONFIG --schema NAME)")
    }
    let loaded = try ConvNeXt.load(checkpoint: URL(fileURLWithPath: checkpoint), arch: arch,
                                   findings: findings.map { $0.split(separator: ",").map(String.init) }, inChans: inChans)
    for line in loaded.adaptations { print("[model] \(line)") }
    var p = Prediction()
    p.preprocess = PreprocessSettings(size: size, equalize: equalize)
    p.device = try Device(parsing: device)
    p.batchSize = batch
    p.workers = LoaderOptions.workers(workers)
    p.ttaHorizontalFlip = ttaHflip
    try p.run(loaded, images: try Prediction.images(at: URL(fileURLWithPath: input)), out: URL(fileURLWithPath: out))
  }
}

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run a whole study: train and predict per schema, evaluate against every reference, report.")
  @OptionGroup var options: ConfigOptions
  @Option(help: "Re-run a stage even if up to date: train, predict, evaluate, or one like train:NAME (repeatable).")
  var force: [String] = []

  func run() throws {
    let study = try options.study()
    let outcomes = try StudyRun(study: study).run(force: Set(force))
    let failed = outcomes.filter { !$0.1.succeeded }
    if !failed.isEmpty {
      FileHandle.standardError.write(Data("\(failed.count) stage(s) did not finish; see \(study.runRoot.path)/report.md\n".utf8))
      throw ExitCode(1)
    }
  }
}
