import ArgumentParser
import Data
import Experiment
import Foundation
import Models
import Torch
import Train
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
    Runtime.keepFreedMemoryForReuse()
    if threads > 0 { try Runtime.setThreads(threads) } else { try Runtime.useAllCoresIfSingleThreaded() }
    return study
  }
}

struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train the classifier of one labelling schema (into <out>/<name>/<schema>/).",
    discussion: """
      Data-parallel training (c10d: Gloo on the CPU, NCCL on CUDA): --nproc N starts N worker processes on this \
      machine (like torchrun --standalone --nproc-per-node N). Under a launcher, each process reads its rank from the \
      environment: torchrun --nproc-per-node N --no-python cxr train ... (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, \
      MASTER_PORT), or srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of SLURM_JOB_NODELIST). \
      loader.batch_size is per process: the global batch is batch_size x accumulation x processes.
      """)
  @OptionGroup var options: ConfigOptions
  @Option(help: "The schema (a `schemas` item's name) whose labels train the classifier.") var schema: String
  @Flag(help: "Continue from the last checkpoint in the schema's run folder.") var resume = false
  @Flag(name: .customLong("allow-changes"),
        help: "With --resume: continue although settings changed since the checkpoint; each change is recorded in changes.jsonl.")
  var allowChanges = false
  @Option(help: "Data-parallel worker processes to start on this machine (one per GPU, or CPU share).") var nproc: Int?
  @Option(name: .customLong("dist-timeout"),
          help: "Seconds a data-parallel rank waits for the others (rendezvous, collectives) before it stops with an error.")
  var distTimeout: Double = 300
  @Option(name: .customLong("bucket-mb"), help: "Gradient all-reduce bucket size in MiB (as DDP's bucket_cap_mb).")
  var bucketMB: Double = 25
  /// What `cxr run` asks of a schema's training on a device of its own: continue the folder's
  /// checkpoints if there are any, leave a finished training as it is, else start.
  @Flag(name: .customLong("if-needed"), help: .hidden) var ifNeeded = false

  var mode: SchemaTraining.Mode { ifNeeded ? .auto : resume ? .resume : .start }

  func validate() throws {
    if let n = nproc, n < 1 { throw ValidationError("--nproc must be at least 1") }
    if !(distTimeout > 0) { throw ValidationError("--dist-timeout must be a positive number of seconds") }
    if !(bucketMB > 0) { throw ValidationError("--bucket-mb must be positive") }
  }

  func run() throws {
    if allowChanges && !resume { throw ValidationError("--allow-changes goes with --resume") }
    if ifNeeded && resume { throw ValidationError("--if-needed and --resume: give one") }
    let launch = try LaunchEnvironment.detect()
    if let n = nproc, n > 1, launch == nil {
      // This process only launches: the workers are this command without --nproc.
      let code = try LocalLauncher(processes: n, arguments: Self.withoutNproc(Array(CommandLine.arguments.dropFirst()))).run()
      if code != 0 { throw ExitCode(code) }
      return
    }
    let study = try options.study()
    _ = try study.schemaIndex(schema)
    guard let launch else {
      var scope = Preflight.Scope(schemas: [schema], test: false)
      // --resume checks the folder's settings itself (and --allow-changes records the changes).
      scope.changedFoldersAreProblems = !resume
      try Preflight(study: study).check(scope)
      try exitOnInterrupt { try SchemaTraining(study: study, schema: schema).run(mode: mode, allowChanges: allowChanges) }
      return
    }
    let backend: ProcessGroup.Backend = study.device.isCUDA ? .nccl : .gloo
    guard ProcessGroup.isAvailable(backend) else {
      throw ValidationError(backend == .gloo
        ? "data-parallel training is off in this build: \(ProcessGroup.glooUnavailableReason ?? "no Gloo")"
        : "data-parallel training on CUDA needs NCCL: this libcxt.so was built without CUDA or libtorch without NCCL")
    }
    // Rank 0 checks the study before anything starts; the other ranks hear its verdict.
    if launch.rank == 0 {
      var scope = Preflight.Scope(schemas: [schema], test: false)
      scope.processes = launch.worldSize
      scope.changedFoldersAreProblems = !resume
      try Preflight(study: study).check(scope)
    }
    let group = try launch.join(backend: backend, timeout: distTimeout)
    try group.set("rank/\(launch.rank)", "host \(ProcessInfo.processInfo.hostName), pid \(getpid())")
    // The node's cores shared among its ranks (unless the config sets threads).
    let shareOfCores = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, launch.localWorldSize))
    if study.config.settings.threads <= 0 { try Runtime.setThreads(shareOfCores) }
    let parallel = DataParallel(group: group, localRank: launch.localRank, bucketBytes: Int(bucketMB * 1_048_576))
    var training = SchemaTraining(study: study, schema: schema, parallel: parallel)
    training.loaderWorkers = max(1, LoaderOptions.workers(study.config.settings.loader.workers) / max(1, launch.localWorldSize))
    try exitOnInterrupt { try training.run(mode: mode, allowChanges: allowChanges) }
  }

  /// The command line less `--nproc N` / `--nproc=N`.
  static func withoutNproc(_ args: [String]) -> [String] {
    var out: [String] = [], skip = false
    for a in args {
      if skip { skip = false; continue }
      if a == "--nproc" { skip = true; continue }
      if a.hasPrefix("--nproc=") { continue }
      out.append(a)
    }
    return out
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
      Runtime.keepFreedMemoryForReuse()
      if study.settings.threads > 0 { try Runtime.setThreads(study.settings.threads) } else { try Runtime.useAllCoresIfSingleThreaded() }
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
    p.device = try usableDevice(device)
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
