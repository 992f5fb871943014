import Common
import Data
import Foundation
import Models
import Torch
import Train

/// `training.json`: written when a schema's training has finished (all epochs, an early stop,
/// or `train.max_steps`), never before. Its presence, with the folder's inputs unchanged, is what
/// makes `cxr run` skip the training; an interrupted run has none.
public struct TrainingRecord: Codable, Equatable, Sendable {
  public static let fileName = "training.json"
  /// finished | early_stopped | max_steps
  public var outcome: String
  public var step: Int
  public var epochs: Int
  public var best: Double?
  public var bestEpoch: Int?
  public var maxSteps: Int?
  public var inputs: String
  public var finishedAt: String
  public var provenance: Provenance
  public var message: String

  public static func read(folder: URL) throws -> TrainingRecord? {
    let url = folder.appendingPathComponent(fileName)
    guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
    do { return try JSONDecoder().decode(TrainingRecord.self, from: data) } catch {
      throw FileError("\(url.path) is damaged (\(error)); move the folder aside (cxr run --retrain) to train it again")
    }
  }
}

/// Trains the classifier of one schema into `<run>/<schema>/`.
public struct SchemaTraining {
  public let study: Study
  public let schema: String
  /// This process's rank when the training is data-parallel (nil: one process).
  public let parallel: DataParallel?
  /// Loader workers and compute threads of this rank (the machine's, divided among the ranks
  /// of the node by the launcher); nil keeps the config's.
  public var loaderWorkers: Int?

  public init(study: Study, schema: String, parallel: DataParallel? = nil) {
    self.study = study; self.schema = schema; self.parallel = parallel
    self.processes = parallel?.worldSize ?? 1
  }

  public var folder: URL { study.schemaFolder(schema) }
  /// Processes that train together (data-parallel), 1 without.
  public var processes: Int
  var store: CheckpointStore { CheckpointStore(runDirectory: folder, keepLast: 1) }

  /// Where a schema's folder stands against the current settings.
  public enum State: Equatable {
    /// Nothing trained yet (no checkpoint).
    case empty
    /// Checkpoints of the same inputs, not finished: continue it.
    case inProgress
    /// Finished with the same inputs.
    case trained(TrainingRecord)
    /// Trained (or partly) with other inputs: never continued or replaced silently.
    case changed([TrainingInputs.Change])
    /// Checkpoints without a record of their inputs (an older cxr, or copied in).
    case unknownInputs
  }

  public func state() throws -> State {
    let now = try TrainingInputs(study: study, schema: schema, processes: processes)
    let stored = try TrainingInputs.read(folder: folder)
    let hasCheckpoints = !(try store.list().isEmpty)
    let record = try TrainingRecord.read(folder: folder)
    // Unfinished checkpoints continue with their own global batch (Trainer: accumulation
    // adapted to the number of processes), so that number may change there; a finished
    // training was made by the processes it records.
    let unfinished = hasCheckpoints && record == nil
    if let stored, unfinished ? stored.withoutProcesses != now.withoutProcesses : stored != now {
      return hasCheckpoints || record != nil ? .changed(now.changes(since: stored)) : .empty
    }
    if stored == nil { return hasCheckpoints || record != nil ? .unknownInputs : .empty }
    if let record {
      // A run stopped at train.max_steps continues when max_steps is raised or removed.
      let maxSteps = try study.trainOptions().maxSteps
      if record.outcome != "max_steps" || (maxSteps.map { $0 <= record.step } ?? false) { return .trained(record) }
      return .inProgress
    }
    return hasCheckpoints ? .inProgress : .empty
  }

  /// The message for a folder that must not be continued or replaced as it is; nil when it may.
  public func refusal(_ state: State) -> String? {
    switch state {
    case .changed(let changes):
      return "\(folder.path) was trained with other settings: \(changes.map(\.description).joined(separator: "; ")); restore them, or retrain (cxr run --retrain \(schema) moves the old folder aside; cxr train --resume --allow-changes continues it with the new settings, recorded in changes.jsonl)"
    case .unknownInputs:
      return "\(folder.path) holds checkpoints but no record of the settings that made them (\(TrainingInputs.fileName)); move it aside (cxr run --retrain \(schema)) to train again"
    default:
      return nil
    }
  }

  /// The weights prediction uses: `best` (by the configured metric; EMA weights under the
  /// default metric), or the last checkpoint's `ema` or `raw` weights. Without a tuning split
  /// there is no `best`; then the last EMA weights are used, and `note` says so.
  public func checkpoint(weights: String, note: (String) -> Void = { _ in }) throws -> URL {
    let best = folder.appendingPathComponent("best.safetensors")
    if weights == "best", FileManager.default.fileExists(atPath: best.path) { return best }
    guard let last = try store.latest() else {
      throw ConfigError("no trained weights in \(folder.path): run `cxr train` for schema '\(schema)' first")
    }
    if weights == "best" {
      note("\(schema) has no best.safetensors (there is no tuning split, or \(study.settings.train.selection) was never defined on it, e.g. a finding without positives there): using the last checkpoint's EMA weights")
    }
    return last.appendingPathComponent(weights == "raw" ? "model.safetensors" : "ema.safetensors")
  }

  /// Loads data and labels, draws or reuses the patient split, builds the model (from the
  /// pretrained file when given) and runs the loop. `resume` continues the last checkpoint (a
  /// finished training is returned as it is); a folder trained with other settings is refused
  /// unless `allowChanges`, which continues it and records each change in `changes.jsonl`.
  /// An interrupted training throws `Interrupted` after its checkpoint.
  /// How `run` treats what the folder already holds.
  public enum Mode: Sendable {
    /// `cxr train`: a new training; a folder with checkpoints is refused.
    case start
    /// `cxr train --resume`: continue the checkpoints (a finished training is left as it is).
    case resume
    /// `cxr run`: continue what is there, or start.
    case auto
  }

  @discardableResult
  public func run(resume: Bool, allowChanges: Bool = false, log: (String) -> Void = { print($0) }) throws -> TrainOutcome {
    try run(mode: resume ? .resume : .start, allowChanges: allowChanges, log: log)
  }

  /// Rank 0 decides (the folder's state, the split, the cache, `inputs.json`) and tells the
  /// other ranks through the rendezvous store, which then prepare their loaders from what rank 0
  /// wrote, writing nothing themselves.
  @discardableResult
  public func run(mode: Mode = .start, allowChanges: Bool = false, log: (String) -> Void = { print($0) }) throws -> TrainOutcome {
    guard let parallel else { return try runHere(mode: mode, allowChanges: allowChanges, log: log) }
    let key = "prepared/\(schema)"
    if parallel.isLeader {
      do {
        return try runHere(mode: mode, allowChanges: allowChanges, log: log) { verdict in try parallel.group.set(key, verdict) }
      } catch {
        if (try? parallel.group.has(key)) == false { try? parallel.group.set(key, "error: \(error)") }
        throw error
      }
    }
    // Preparing the data (a cache to build) may take long: wait up to a day for rank 0.
    let verdict: String
    do { verdict = try parallel.group.get(key, timeout: 86_400) } catch {
      throw TrainError("rank \(parallel.rank): rank 0 did not finish preparing the training: \(error)")
    }
    if verdict.hasPrefix("error: ") {
      throw TrainError("rank \(parallel.rank): rank 0 stopped before training (\(verdict.dropFirst(7))); this rank stops too")
    }
    if verdict == "done" {
      var p = TrainPosition()
      p.step = (try? TrainingRecord.read(folder: folder))??.step ?? 0
      return TrainOutcome(reason: .finished, position: p, checkpoint: nil, message: "already trained")
    }
    return try runHere(mode: verdict == "resume" ? .resume : .start, allowChanges: false, log: { _ in }, follower: true)
  }

  func runHere(mode: Mode, allowChanges: Bool, log: (String) -> Void, decided: (String) throws -> Void = { _ in },
               follower: Bool = false) throws -> TrainOutcome {
    let inputs = try TrainingInputs(study: study, schema: schema, processes: processes)
    // A rank other than 0 takes rank 0's decision: its files are rank 0's.
    let state = follower ? (mode == .resume ? State.inProgress : State.empty) : try state()
    switch state {
    case .trained(let record):
      guard mode != .start else {
        throw TrainError("\(folder.path) already holds a finished training (\(record.message)); it is used as it is by cxr predict and cxr run; to train again, use cxr run --retrain \(schema) (it moves the folder aside)")
      }
      log("[train] \(schema): already trained (\(record.message)); nothing to do")
      try decided("done")
      var p = TrainPosition()
      p.step = record.step
      return TrainOutcome(reason: .finished, position: p, checkpoint: try store.latest(), message: "already trained")
    case .changed(let changes) where allowChanges && mode == .resume:
      try recordChanges(changes, log: log)
    case .changed, .unknownInputs:
      throw TrainError(refusal(state)!)
    case .inProgress where mode == .start:
      throw TrainError("\(folder.path) already holds checkpoint \(try store.latest()?.lastPathComponent ?? "?"): pass --resume to continue it, or choose a new run folder")
    case .empty where mode == .resume:
      throw TrainError("--resume: \(folder.path) holds no checkpoint; start the run without --resume")
    default:
      break
    }
    if !follower { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }

    let index = try study.trainIndex()
    for note in index.notes { log("[data] \(note)") }
    let labelling = try study.labelling(schema: schema, index: index)
    if labelling.unlabelledImages > 0 {
      log("[labels] \(schema): \(labelling.unlabelledImages) images of \(labelling.unlabelledStudies) studies have no label row and are left out")
    }
    if labelling.unusedRows > 0 {
      log("[labels] \(schema): \(labelling.unusedRows) rows of the label file match no image of the training set and are not used")
    }
    let set = labelling.set
    guard set.count > 0 else {
      throw ConfigError("schema '\(schema)' labels none of the \(index.records.count) training images; check that its file's ids match the dataset")
    }
    let splitURL = folder.appendingPathComponent("split.csv")
    let strata = study.settings.split.stratify ? PatientSplit.positiveStrata(set) : nil
    let split: PatientSplit
    if follower {
      split = try PatientSplit.load(splitURL, checkedAgainst: set.records)
    } else if let imported = study.settings.split.file {
      split = try PatientSplit.load(URL(fileURLWithPath: imported), checkedAgainst: set.records)
      try split.write(set.records, to: splitURL)
    } else {
      split = try PatientSplit.loadOrMake(splitURL, records: set.records, tuneFraction: study.settings.split.tuneFraction,
                                          seed: Seeds(study.seed).seed(.split), strata: strata).split
    }
    let trainSet = set.subset(split.indices(.train, in: set.records))
    let tuneSet = set.subset(split.indices(.tune, in: set.records))
    log("[split] \(schema): \(trainSet.count) training and \(tuneSet.count) tuning images")

    let pre = try study.preprocessTrain
    func items(_ s: LabelledSet) -> [LoaderItem] {
      let f = s.findings.count
      return s.records.enumerated().map { i, r in
        LoaderItem(id: r.id, path: URL(fileURLWithPath: r.path), targets: Array(s.targets[(i * f)..<(i * f + f)]),
                   mask: Array(s.mask[(i * f)..<(i * f + f)]))
      }
    }
    let cache = try study.cache("train", images: index.records.map { URL(fileURLWithPath: $0.path) }, settings: pre, log: log)
    // The loaders are the loop's batch sources; each stops with an error when more than
    // loader.max_bad_fraction of its split cannot be read.
    // Only rank 0 writes bad_files.csv (the other ranks count theirs in memory).
    var trainOptions = study.loaderOptions(preprocess: pre, shuffle: true, badFilesFolder: follower ? nil : folder, split: "train")
    trainOptions.maxBadFraction = study.settings.loader.maxBadFraction
    var tuneOptions = study.loaderOptions(preprocess: pre, shuffle: false, badFilesFolder: follower ? nil : folder, split: "tune")
    tuneOptions.maxBadFraction = study.settings.loader.maxBadFraction
    if let w = loaderWorkers { trainOptions.workers = w; tuneOptions.workers = w }
    let trainLoader = try DataLoader(items: items(trainSet), options: trainOptions, cache: cache, findings: study.findings)
    let tuneLoader = try DataLoader(items: items(tuneSet), options: tuneOptions, cache: cache, findings: study.findings)

    let model = try study.makeModel(log: log)
    var options = try study.trainOptions()
    // Each rank its own GPU: cuda:LOCAL_RANK.
    if let parallel, options.device.isCUDA, let local = parallel.localRank { options.device = .cuda(local) }
    if state == .empty && !follower { try inputs.write(folder: folder) }
    try decided(state == .empty ? "start" : "resume")
    let trainer = try Trainer(model: model, options: options, runDirectory: folder, parallel: parallel)
    trainer.resolvedConfig = study.config.resolvedYAML()
    // The checkpoints carry their contract (arch and its settings, channels, findings, input
    // preprocessing) and what made them (cxr, libtorch, device).
    let provenance = Provenance(device: study.device)
    var meta = try CheckpointMetadata(config: model.config, findings: study.findings, input: try study.inputContract).encoded()
    meta["schema"] = schema
    meta["study"] = study.name
    for (k, v) in provenance.metadata { meta[k] = v }
    trainer.metadata = meta
    let outcome = try trainer.fit(train: trainLoader, tune: tuneSet.count > 0 ? tuneLoader : nil, resume: state != .empty)
    log("[train] \(schema): \(outcome.message)")
    let kind: String
    switch outcome.reason {
    case .interrupted(let sig): throw Interrupted(signal: sig, message: outcome.message)
    case .finished: kind = "finished"
    case .earlyStopped: kind = "early_stopped"
    case .reachedMaxSteps: kind = "max_steps"
    }
    guard !follower else { return outcome }
    // Before training.json: an interrupted tuning prediction leaves the training unfinished,
    // and the next run finishes it (the loop has nothing left to do, the rows resume).
    if tuneSet.count > 0 { try writeTuningPredictions(tuneSet, cache: cache, log: log) }
    let record = TrainingRecord(outcome: kind, step: outcome.position.step, epochs: outcome.position.epoch, best: outcome.position.best,
                                bestEpoch: outcome.position.bestEpoch, maxSteps: options.maxSteps, inputs: inputs.fingerprint,
                                finishedAt: Provenance.now(), provenance: provenance, message: outcome.message)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(try enc.encode(JSONSafeRecord(record)), to: folder.appendingPathComponent(TrainingRecord.fileName))
    return outcome
  }

  /// The tuning split's predictions of the weights `cxr predict` uses (`predict.weights`) and the
  /// schema's labels of those images (after its uncertainty policy; blank where it leaves a
  /// finding out): where `cxr run` and `cxr evaluate` choose operating points, never on the test set.
  public var tunePredictionsURL: URL { folder.appendingPathComponent("tune_predictions.csv") }
  public var tuneLabelsURL: URL { folder.appendingPathComponent("tune_labels.csv") }

  func writeTuningPredictions(_ tune: LabelledSet, cache: PreprocessedCache?, log: (String) -> Void) throws {
    let f = tune.findings.count
    var rows = [["id"] + tune.findings]
    for (i, r) in tune.records.enumerated() {
      rows.append([r.id] + (0..<f).map { j in tune.mask[i * f + j] > 0 ? (tune.targets[i * f + j] >= 0.5 ? "1" : "0") : "" })
    }
    try AtomicFile.write(rows.map { $0.map(CSVWriter.escape).joined(separator: ",") }.joined(separator: "\n") + "\n", to: tuneLabelsURL)
    let weights = try checkpoint(weights: study.settings.predict.weights.rawValue, note: { log("[train] \($0)") })
    var p = Prediction()
    p.preprocess = try study.preprocessTrain
    p.device = study.device
    p.batchSize = study.settings.predict.batchSize
    p.workers = loaderWorkers ?? LoaderOptions.workers(study.settings.loader.workers)
    p.cache = cache
    p.log = { _ in }
    log("[train] \(schema): predicting the \(tune.count) tuning images with \(weights.lastPathComponent) (tune_predictions.csv)")
    try p.run(try ConvNeXt.load(checkpoint: weights), weights: weights,
              images: tune.records.map { .init(id: $0.id, path: URL(fileURLWithPath: $0.path)) }, out: tunePredictionsURL)
  }

  /// `--resume --allow-changes`: appends each change (at the step it takes effect) to
  /// `changes.jsonl` and makes the new settings the folder's inputs.
  func recordChanges(_ changes: [TrainingInputs.Change], log: (String) -> Void) throws {
    let step = try store.latest().flatMap { try? CheckpointStore.read($0).position.step } ?? 0
    let url = folder.appendingPathComponent("changes.jsonl")
    var text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    for c in changes {
      struct Line: Codable { var step: Int; var key: String; var old: String?; var new: String?; var time: String }
      text += String(decoding: try enc.encode(Line(step: step, key: c.key, old: c.old, new: c.new, time: Provenance.now())), as: UTF8.self) + "\n"
      log("[train] \(schema): --allow-changes: from step \(step), \(c.description)")
    }
    try AtomicFile.write(text, to: url)
    try TrainingInputs(study: study, schema: schema, processes: processes).write(folder: folder)
  }
}

/// A record whose optional numbers are finite (JSON has no NaN).
private struct JSONSafeRecord: Encodable {
  var r: TrainingRecord
  init(_ r: TrainingRecord) {
    self.r = r
    if let b = r.best, !b.isFinite { self.r.best = nil }
  }
  func encode(to encoder: Encoder) throws { try r.encode(to: encoder) }
}
