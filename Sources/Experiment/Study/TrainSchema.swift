import Common
import Data
import Foundation
import Models
import Torch
import Train

/// The Data layer's loader as the Train layer's batch source. The loader lists unreadable
/// images in bad_files.csv; each batch tells the loop which of its images were dropped.
final class LoaderBatchSource: BatchSource {
  let loader: DataLoader
  let findings: [String]
  init(_ loader: DataLoader, findings: [String]) { self.loader = loader; self.findings = findings }

  var batchesPerEpoch: Int { loader.batchCount() }

  func makeIterator(epoch: Int, startingAt batch: Int) throws -> BatchIterator {
    let it = loader.epoch(epoch, startingAt: batch)
    let log = loader.badFiles
    var seen = log.all.count
    return FunctionBatchIterator {
      while let b = try it.next() {
        let all = log.all
        let skipped = all[seen...].map { "\($0.path): \($0.reason)" }
        seen = all.count
        if b.ids.isEmpty { continue }
        return Train.Batch(ids: b.ids, images: b.images, targets: b.targets, mask: b.mask, skipped: skipped)
      }
      return nil
    }
  }
}

/// Trains the classifier of one schema into `<run>/<schema>/`.
public struct SchemaTraining {
  public let study: Study
  public let schema: String

  public init(study: Study, schema: String) { self.study = study; self.schema = schema }

  public var folder: URL { study.schemaFolder(schema) }
  /// The weights prediction uses: `best` (by the configured metric; EMA weights under the
  /// default metric), or the last checkpoint's `ema` or `raw` weights.
  public func checkpoint(weights: String) throws -> URL {
    let best = folder.appendingPathComponent("best.safetensors")
    if weights == "best", FileManager.default.fileExists(atPath: best.path) { return best }
    let ckpts = folder.appendingPathComponent("checkpoints")
    let steps = ((try? FileManager.default.contentsOfDirectory(atPath: ckpts.path)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
    guard let last = steps.last else {
      throw ConfigError("no trained weights in \(folder.path): run `cxr train` for schema '\(schema)' first")
    }
    let file = weights == "raw" ? "model.safetensors" : "ema.safetensors"
    return ckpts.appendingPathComponent(last).appendingPathComponent(file)
  }

  /// Loads data and labels, draws or reuses the patient split, builds the model (from the
  /// pretrained file when given) and runs the loop. `resume` continues the last checkpoint.
  @discardableResult
  public func run(resume: Bool = false, log: (String) -> Void = { print($0) }) throws -> TrainOutcome {
    let fm = FileManager.default
    try fm.createDirectory(at: folder, withIntermediateDirectories: true)
    try AtomicFile.write(study.config.resolvedYAML(), to: folder.appendingPathComponent("config.yaml"))

    let index = try study.trainIndex()
    for note in index.notes { log("[data] \(note)") }
    let labelling = try study.labelling(schema: schema, index: index)
    if labelling.unlabelledImages > 0 {
      log("[labels] \(schema): \(labelling.unlabelledImages) images of \(labelling.unlabelledStudies) studies have no label row and are left out")
    }
    let set = labelling.set
    guard set.count > 0 else {
      throw ConfigError("schema '\(schema)' labels none of the \(index.records.count) training images; check that its file's ids match the dataset")
    }
    let splitURL = folder.appendingPathComponent("split.csv")
    let strata = try study.config.bool("split.stratify") ? PatientSplit.positiveStrata(set) : nil
    let split: PatientSplit
    if let imported = study.config.optionalString("split.file") {
      split = try PatientSplit.load(URL(fileURLWithPath: imported), checkedAgainst: set.records)
      try split.write(set.records, to: splitURL)
    } else {
      split = try PatientSplit.loadOrMake(splitURL, records: set.records, tuneFraction: try study.config.double("split.tune_fraction"),
                                          seed: study.seed, strata: strata).split
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
    let trainLoader = try DataLoader(items: items(trainSet), options: study.loaderOptions(preprocess: pre, shuffle: true, badFilesFolder: folder),
                                     cache: cache)
    let tuneLoader = try DataLoader(items: items(tuneSet), options: study.loaderOptions(preprocess: pre, shuffle: false, badFilesFolder: folder),
                                    cache: cache)

    let modelConfig = try study.modelConfig()
    let generator = try Generator(seed: study.seed)
    let model: ConvNeXt
    if let pretrained = study.config.optionalString("model.pretrained") {
      let loaded = try ConvNeXt.load(checkpoint: URL(fileURLWithPath: pretrained), arch: modelConfig.arch,
                                     findings: study.findings, inChans: modelConfig.inChannels,
                                     options: LoadOptions(resetMismatchedHead: true, generator: generator))
      for line in loaded.adaptations { log("[model] \(line)") }
      model = loaded.model
    } else {
      model = try ConvNeXt(modelConfig, generator: generator)
    }
    model.generator = generator

    let trainer = try Trainer(model: model, options: study.trainOptions(), runDirectory: folder)
    trainer.resolvedConfig = study.config.resolvedYAML()
    // The checkpoints carry what a reader needs to open them: arch, channels, findings.
    var meta = try CheckpointMetadata(config: model.config, findings: study.findings).encoded()
    meta["schema"] = schema
    meta["study"] = study.name
    trainer.metadata = meta
    let outcome = try trainer.fit(train: LoaderBatchSource(trainLoader, findings: study.findings),
                                  tune: tuneSet.count > 0 ? LoaderBatchSource(tuneLoader, findings: study.findings) : nil,
                                  resume: resume)
    log("[train] \(schema): \(outcome.message)")
    return outcome
  }
}
