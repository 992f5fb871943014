import Common
import Data
import Foundation
import Torch

/// How a `fit` ended.
public struct TrainOutcome: Sendable {
  public enum Reason: Equatable, Sendable { case finished, earlyStopped, interrupted(signal: Int32), reachedMaxSteps }
  public var reason: Reason
  public var position: TrainPosition
  /// The last checkpoint folder written (nil if none was written).
  public var checkpoint: URL?
  public var message: String

  public init(reason: Reason, position: TrainPosition, checkpoint: URL?, message: String) {
    self.reason = reason; self.position = position; self.checkpoint = checkpoint; self.message = message
  }
}

/// The training loop in timm's shape: `fit` runs `trainEpoch` and, at each epoch's end,
/// `validate` of the raw and EMA weights, the `BestWeights` keeper and a checkpoint; with
/// augmentation, masked BCE, an `Optimizer` (Lion), EMA, resume, signals, progress and the
/// Codable records of `metrics.jsonl`. On CUDA, batches reach the device through `DeviceFeed`
/// (non-blocking copies on a side stream, overlapped with the step).
public final class Trainer {
  public let model: Classifier
  public let options: TrainOptions
  public let runDirectory: URL
  public let progress: ProgressReporter
  /// Extra safetensors metadata for the weight files (e.g. schema, findings, model name).
  public var metadata: [String: String] = [:]
  /// The resolved configuration (YAML text from the Experiment layer), written atomically to
  /// `config.yaml` in the run folder when training really starts.
  public var resolvedConfig: String?

  public let optimizer: Optimizer
  public private(set) var ema: EMA
  public private(set) var random: AugmentRandom
  public private(set) var position = TrainPosition()
  let store: CheckpointStore
  let loss: MaskedBCE
  let log: MetricsLog
  var best: BestWeights
  /// The schedule with its last step resolved (warmup_cosine with totalSteps 0).
  var schedule: LRSchedule
  /// This process's rank of a data-parallel training (nil: one process).
  public let parallel: DataParallel?
  /// Micro-batches per optimizer step on this rank: `options.accumulation`, or what keeps a
  /// resumed run's global batch when it continues with another number of processes.
  public private(set) var accumulation: Int
  var isLeader: Bool { parallel?.isLeader ?? true }
  /// TensorBoard scalars (rank 0): train loss and learning rate per step, the tuning split's
  /// loss and AUROC/AUPRC of both weights, and images/s per epoch.
  var events: TensorBoardEvents?
  var summaryURL: URL { runDirectory.appendingPathComponent("summary.csv") }
  var worldSize: Int { parallel?.worldSize ?? 1 }

  public init(model: Classifier, options: TrainOptions, runDirectory: URL, progress: ProgressReporter? = nil,
              optimizer: Optimizer? = nil, parallel: DataParallel? = nil) throws {
    try options.validate()
    self.model = model
    self.options = options
    self.runDirectory = runDirectory
    self.parallel = parallel
    accumulation = options.accumulation
    // Ranks other than 0 print nothing unless they fail.
    self.progress = parallel.map { !$0.isLeader } == true ? ProgressReporter(live: false, interval: .infinity, write: { _ in })
      : progress ?? ProgressReporter(interval: options.progressInterval)
    try Runtime.applyCuDNNBenchmark(for: options.device, requested: options.cudnnBenchmark)
    try model.to(options.device, dtype: .float32)
    if options.useChannelsLast {
      try withNoGrad { for p in model.parameters where p.value.ndim == 4 { try p.replace(with: p.value.contiguous(.channelsLast)) } }
    }
    if let parallel {
      // Rank 0's initial weights everywhere, then DDP's gradient buckets over them.
      try parallel.guarded("the broadcast of rank 0's initial weights") { try parallel.broadcast(model.parameters.map(\.value)) }
      parallel.reducer = try parallel.guarded("the check of the model's parameters across ranks") {
        try GradientReducer(group: parallel.group, parameters: model.parameters.map(\.value), bucketBytes: parallel.bucketBytes)
      }
    }
    self.optimizer = try optimizer ?? Lion(model.namedParameters(), lr: options.lr, betas: (options.beta1, options.beta2),
                                           weightDecay: options.weightDecay, noDecayForNormsAndBiases: options.noDecayForNormsAndBiases)
    ema = try EMA(model, decay: options.emaDecay, warmup: options.emaWarmup)
    random = try AugmentRandom(seed: options.seed, device: options.device)
    store = CheckpointStore(runDirectory: runDirectory, keepLast: options.keepLast)
    schedule = options.schedule
    loss = MaskedBCE(posWeight: try options.posWeight.map { try Tensor($0.map(Float.init)) })
    log = MetricsLog(url: runDirectory.appendingPathComponent("metrics.jsonl"))
    best = BestWeights(selection: options.selection, url: runDirectory.appendingPathComponent("best.safetensors"))
  }

  /// The optimizer as Lion (the default), for tests that read Lion's own state; not public, so no
  /// caller with another optimizer can reach the cast.
  var lion: Lion { optimizer as! Lion }

  // MARK: checkpoints

  /// Generators whose state a checkpoint keeps: the augmentation's two, the model's own (drop
  /// path, dropout) when it has one, and the default generators that layers use when given none
  /// on CPU and the device.
  func generators() throws -> [(String, Generator)] {
    var gs = [("augment_host", random.host), ("augment_device", random.device), ("default_cpu", try Generator.defaultGenerator(.cpu))]
    if options.device.isCUDA { gs.append(("default_device", try Generator.defaultGenerator(options.device))) }
    if let g = model.generator { gs.append(("model", g)) }
    return gs
  }

  func rngStates() throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (name, g) in try generators() { out[name] = try g.state() }
    return out
  }

  /// Rank 0 writes; the other ranks of a data-parallel run write nothing (nil).
  @discardableResult
  func writeCheckpoint() throws -> URL? {
    guard isLeader else { return nil }
    return try store.write(.init(model: model.stateDict(), ema: ema.stateDict(), optimizer: optimizer.stateDict(),
                                 rng: rngStates(), position: position), metadata: metadata)
  }

  /// Loads the newest complete checkpoint of the run folder into the model, EMA, optimizer and
  /// generators. A folder that cannot be read (damaged, half written by an older version) is
  /// passed over with a message, and the one before it is used.
  func restore() throws -> URL {
    let all = try store.list()
    guard !all.isEmpty else {
      throw TrainError("--resume: \(store.directory.path) holds no checkpoint; start the run without --resume")
    }
    var damaged: [String] = []
    for (_, folder) in all.reversed() {
      let c: CheckpointStore.Contents
      do { c = try CheckpointStore.read(folder) } catch {
        damaged.append("\(folder.lastPathComponent) (\(error))")
        progress.message("--resume: \(folder.path) cannot be read (\(error)); trying the checkpoint before it")
        continue
      }
      let gens = try generators()
      if let name = gens.map(\.0).first(where: { c.rng[$0] == nil }) {
        throw TrainError("--resume: \(folder.path)/state.safetensors lacks the generator state 'rng/\(name)': it was written by an older cxr or for other settings; continuing it would not give the run an uninterrupted one gives")
      }
      do {
        try model.load(c.model)
        try ema.load(c.ema)
        try optimizer.load(c.optimizer)
      } catch {
        throw TrainError("--resume: \(folder.path) does not fit this model: \(error)")
      }
      for (name, gen) in gens { try gen.setState(c.rng[name]!) }
      position = c.position
      try continueGlobalBatch(of: c.position, from: folder)
      best.restore(from: position)
      return folder
    }
    throw TrainError("--resume: no checkpoint in \(store.directory.path) can be read: \(damaged.joined(separator: "; ")); start the run again without --resume (in a new folder)")
  }

  /// A checkpoint of W processes with accumulation A continues with W' processes and
  /// accumulation W*A/W' (the same global batch, so the same schedule); an accumulation that
  /// cannot be kept is an error naming both.
  func continueGlobalBatch(of saved: TrainPosition, from folder: URL) throws {
    let savedW = saved.worldSize ?? 1, savedA = saved.accumulation ?? options.accumulation
    guard savedW != worldSize || savedA != accumulation else { return }
    let global = savedW * savedA
    guard global % worldSize == 0 else {
      throw TrainError("--resume: \(folder.path) was trained by \(savedW) process(es) with accumulation \(savedA) (global batch \(global) micro-batches); \(worldSize) processes cannot keep that global batch: use a number of processes that divides \(global)", key: "train.accumulation")
    }
    accumulation = global / worldSize
    progress.message("--resume: the checkpoint was written by \(savedW) process(es) with accumulation \(savedA); \(worldSize) process(es) continue with accumulation \(accumulation), the same global batch")
  }

  func noteSkipped(_ lines: [String]) throws {
    guard !lines.isEmpty, isLeader else { return }
    let url = runDirectory.appendingPathComponent("skipped.txt")
    if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
    let h = try FileHandle(forWritingTo: url)
    defer { try? h.close() }
    try h.seekToEnd()
    try h.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
    for l in lines { progress.message("skipped image \(l)") }
  }

  // MARK: the loop

  /// Trains on `train`, evaluating on `tune` after every epoch. With `resume`, continues from
  /// the newest checkpoint of the run folder; without it, a folder that already holds
  /// checkpoints is refused (so no work is overwritten by accident). Without `tune` there is no
  /// per-epoch evaluation, no `best.safetensors` and no early stop.
  public func fit(train: BatchSource, tune: BatchSource?, resume: Bool = false) throws -> TrainOutcome {
    try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
    if resume {
      let folder = try restore()
      try log.truncate(after: position)
      progress.message("resuming from \(folder.path) (epoch \(position.epoch + 1), batch \(position.batch), step \(position.step))")
    } else if let existing = try store.latest() {
      throw TrainError("\(runDirectory.path) already holds checkpoint \(existing.lastPathComponent): pass --resume to continue it, or choose a new run folder")
    }
    position.worldSize = worldSize; position.accumulation = accumulation
    if isLeader {
      events = try TensorBoardEvents(folder: runDirectory.appendingPathComponent("tensorboard"), resumedAt: resume ? position.step : nil)
      if resume { try SummaryCSV.write(from: log.url, to: summaryURL) }
    }
    guard train.batchesPerEpoch > 0 else {
      throw TrainError("the training split yields no batch: it has fewer images than one batch; lower the batch size or check the split")
    }
    if let t = tune, t.findings != train.findings {
      throw TrainError("the tuning split's findings \(t.findings) differ from the training split's \(train.findings)")
    }
    // Written only now that training really starts: a refused run leaves the folder as it was.
    if let parallel {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let fingerprint = "\(BuildInfo.version)\n\(resolvedConfig ?? "")\n\(String(decoding: try encoder.encode(options), as: UTF8.self))\n\(train.batchesPerEpoch) \(train.findings) \(model.parameters.map(\.value.shape)) step \(position.step) accumulation \(accumulation)"
      try parallel.guarded("the comparison of the ranks' settings") { try parallel.checkSameStart(fingerprint) }
      guard train.batchesPerEpoch >= parallel.worldSize else {
        throw TrainError("the training split yields \(train.batchesPerEpoch) batch(es), fewer than the \(parallel.worldSize) processes; lower the batch size or use fewer processes")
      }
    }
    if isLeader, let text = resolvedConfig { try AtomicFile.write(text, to: runDirectory.appendingPathComponent("config.yaml")) }
    StopSignal.install()
    defer { StopSignal.uninstall() }
    if case let .warmupCosine(w, 0, m) = options.schedule {
      let used = Shard(rank: 0, count: worldSize, dropRemainder: true).limit(train.batchesPerEpoch)
      schedule = .warmupCosine(warmupSteps: w, totalSteps: options.epochs * max(1, used / (accumulation * worldSize)), minLR: m)
    }
    let feed = options.device.isCUDA ? try DeviceFeed(device: options.device) : nil
    model.setTraining(true)
    var lastCheckpoint: URL?
    while position.epoch < options.epochs {
      if let stop = try trainEpoch(train, feed: feed, lastCheckpoint: &lastCheckpoint) { return stop }
      lastCheckpoint = try endEpoch(tune)
      if let p = options.earlyStopPatience, position.epochsWithoutImprovement >= p, position.epoch < options.epochs {
        let msg = "early stop after epoch \(position.epoch): \(options.selection) did not improve for \(p) epoch(s); best \(fmt(position.best)) at epoch \(position.bestEpoch ?? 0)"
        progress.message(msg)
        return TrainOutcome(reason: .earlyStopped, position: position, checkpoint: lastCheckpoint, message: msg)
      }
      if let sig = try agreedStop() {
        StopSignal.reset()
        let msg = "stopped by \(StopSignal.name(sig)) after epoch \(position.epoch): \(lastCheckpoint.map { "checkpoint written to \($0.path)" } ?? "rank 0 wrote the checkpoint"); continue with --resume"
        progress.message(msg)
        return TrainOutcome(reason: .interrupted(signal: sig), position: position, checkpoint: lastCheckpoint, message: msg)
      }
    }
    let msg = "finished \(options.epochs) epoch(s), \(position.step) steps; best \(options.selection) \(fmt(position.best))"
    progress.message(msg)
    return TrainOutcome(reason: .finished, position: position, checkpoint: lastCheckpoint, message: msg)
  }

  /// The rest of the current epoch (from `position.batch`): augmentation, loss, backward,
  /// optimizer steps every `accumulation` batches. Returns an outcome when it stopped early (a
  /// signal, `max_steps`), nil when the epoch's batches are done. With `parallel`, this rank's
  /// shard of the epoch; `position.batch` counts global batches, so a step covers
  /// `accumulation` x world size of them.
  func trainEpoch(_ train: BatchSource, feed: DeviceFeed?, lastCheckpoint: inout URL?) throws -> TrainOutcome? {
    let epochStart = Date()
    epochCPUStart = processCPUSeconds()
    // The epoch's sums live in the position, so a resumed epoch continues them.
    let seenBefore = position.epochImages, batchBefore = position.batch
    let dev = options.device, W = worldSize, rank = parallel?.rank ?? 0
    let shard = parallel?.shard(dropRemainder: true) ?? .whole
    let batches = shard.limit(train.batchesPerEpoch)
    let augment = Augmenter(options.augment)
    let seeds = Seeds(options.seed)
    var micro = 0, stepLossSum = 0.0
    let it = try train.makeIterator(epoch: position.epoch, startingAt: position.batch, shard: shard)
    while let raw = try it.next() {
      try noteSkipped(raw.skipped)
      // The sampler position is the batch's own index (a source may hand over fewer batches);
      // with W ranks, the group of W batches this one belongs to.
      let index = raw.index >= 0 ? raw.index : position.batch + rank
      let next = index - rank + W
      let empty = raw.ids.isEmpty
      var b = raw, value: Tensor?, lv = 0.0
      if !empty {
        // The batch's randomness depends on its place in the epoch only.
        try random.start(epoch: position.epoch, batch: index)
        if let g = model.generator {
          try g.setState(Generator(seed: seeds.seed(.dropPath, epoch: position.epoch, batch: index), device: g.device).state())
        }
        if let feed {
          let moved = try feed.send([raw.images.to(dtype: .float32), raw.targets.to(dtype: .float32), raw.mask.to(dtype: .float32)])
          b.images = moved[0]; b.targets = moved[1]; b.mask = moved[2]
        } else {
          b.images = try raw.images.to(dev, dtype: .float32)
          b.targets = try raw.targets.to(dev, dtype: .float32)
          b.mask = try raw.mask.to(dev, dtype: .float32)
        }
        b = try augment(b, random)
        let x = options.useChannelsLast ? try b.images.contiguous(.channelsLast) : b.images
        value = try withGrad {
          try withAutocast(dev, enabled: options.useBF16) { try loss(model(x), b.targets, mask: b.mask) }
        }
        lv = try value!.item()
      }
      position.batch = next
      // The ranks agree on what to do with this micro-step: one small all-reduce of
      // (batches with no image, non-finite losses, signals, loss sum, images).
      var emptyAnywhere = empty, nonFiniteAnywhere = !empty && !lv.isFinite, stopAnywhere = false
      var meanLoss = lv, images = b.ids.count
      if let parallel {
        let agreed = try parallel.guarded("the exchange after the forward pass of step \(position.step + 1)") {
          try parallel.sum([empty ? 1 : 0, nonFiniteAnywhere ? 1 : 0, StopSignal.requested == nil ? 0 : 1,
                            empty || !lv.isFinite ? 0 : lv, Double(b.ids.count)])
        }
        emptyAnywhere = agreed[0] > 0; nonFiniteAnywhere = agreed[1] > 0; stopAnywhere = agreed[2] > 0
        meanLoss = agreed[3] / Double(W); images = Int(agreed[4])
        pendingStop = pendingStop || stopAnywhere
      }
      // Every image of the batch unreadable (on any rank): nothing to learn from, but the
      // sampler moves on.
      if emptyAnywhere { continue }
      if nonFiniteAnywhere {
        let shown = lv.isNaN ? "NaN" : lv.isInfinite ? (lv > 0 ? "+inf" : "-inf") : "non-finite on another rank"
        let where_ = "loss is \(shown) at step \(position.step + 1) (epoch \(position.epoch + 1), batch \(position.batch))\(W > 1 ? " on rank \(rank)" : "")"
        switch options.nonFinite {
        case .stop:
          let keep = try store.latest().map { "the last good checkpoint is \($0.path)" } ?? "no checkpoint was written yet"
          throw TrainError("\(where_); images: \(b.ids.joined(separator: ", ")); \(keep). Check these images, or set train.non_finite: skip")
        case .skip:
          position.skippedBatches += 1
          try model.zeroGrad()
          micro = 0
          progress.message("\(where_): batch skipped (images: \(b.ids.joined(separator: ", ")))")
          continue
        }
      }
      let lastMicro = micro + 1 == accumulation || position.batch >= batches
      if let reducer = parallel?.reducer { try reducer.prepare(sync: lastMicro) }
      try collective("the gradient all-reduce of step \(position.step + 1)") {
        try (accumulation > 1 ? value! / Double(accumulation) : value!).backward()
      }
      micro += 1
      position.epochImages += images; position.epochLossSum += meanLoss; position.epochLossCount += 1
      stepLossSum += meanLoss
      guard lastMicro else { continue }
      try optimizerStep()
      try events?.scalars([("train/loss", stepLossSum / Double(micro)), ("train/lr", optimizer.lr)], step: position.step)
      micro = 0; stepLossSum = 0

      let elapsed = Date().timeIntervalSince(epochStart)
      let rate = Double(position.epochImages - seenBefore) / max(elapsed, 1e-9)
      let remaining = Double(max(batches - position.batch, 0)) * elapsed / Double(max(position.batch - batchBefore, 1))
      progress.update(.init(epoch: position.epoch, epochs: options.epochs, step: position.step, batch: position.batch,
                            batches: batches, imagesPerSecond: rate, loss: position.epochLossSum / Double(max(position.epochLossCount, 1)),
                            etaSeconds: remaining))
      if let sig = parallel == nil ? StopSignal.requested : (pendingStop ? StopSignal.requested ?? SIGTERM : nil) {
        StopSignal.reset(); pendingStop = false
        return try stopOutcome(.interrupted(signal: sig), "stopped by \(StopSignal.name(sig))")
      }
      if let m = options.maxSteps, position.step >= m {
        return try stopOutcome(.reachedMaxSteps, "reached \(m) steps")
      }
      if let every = options.checkpointEverySteps, position.step % every == 0 { lastCheckpoint = try writeCheckpoint() ?? lastCheckpoint }
    }
    if micro > 0 {
      // The epoch's last micro-step was skipped after earlier ones of the step: their
      // gradients were not averaged by the reducer, so average them here.
      if let parallel {
        let grads = model.parameters.compactMap { $0.value.grad }
        try parallel.guarded("the gradient all-reduce at the end of epoch \(position.epoch + 1)") {
          try withNoGrad { try parallel.group.allReduce(grads).wait(); try Foreach.mul_(grads, 1 / Double(W)) }
        }
      }
      try optimizerStep()
    }
    guard position.epochLossCount > 0 else {
      throw TrainError("epoch \(position.epoch + 1) ended without a single optimizer step: no batch of the training split could be used (unreadable images are listed in bad_files.csv, non-finite losses above); nothing was trained")
    }
    epochSeconds = Date().timeIntervalSince(epochStart)
    epochImagesThisRun = position.epochImages - seenBefore
    return nil
  }

  /// A collective's body; with `parallel`, a failure names the ranks that went silent.
  func collective<R>(_ what: String, _ body: () throws -> R) throws -> R {
    guard let parallel else { return try body() }
    return try parallel.guarded(what, body)
  }

  /// A signal seen by any rank in the last exchange: every rank stops after the same step.
  var pendingStop = false

  /// The signal to stop on, agreed by all ranks (any rank's signal stops every rank).
  func agreedStop() throws -> Int32? {
    guard let parallel else { return StopSignal.requested }
    let s = try parallel.guarded("the exchange at the end of epoch \(position.epoch)") {
      try parallel.sum([StopSignal.requested == nil && !pendingStop ? 0 : 1])
    }
    guard s[0] > 0 else { return nil }
    pendingStop = false
    return StopSignal.requested ?? SIGTERM
  }

  /// Wall time and images of the part of the epoch this process ran (for the epoch's record).
  var epochSeconds = 0.0, epochImagesThisRun = 0
  var epochCPUStart = 0.0

  /// The end of an epoch: both weights validated, the best kept, the record logged, a checkpoint.
  func endEpoch(_ tune: BatchSource?) throws -> URL? {
    var record = EpochRecord(epoch: position.epoch + 1, step: position.step,
                             trainLoss: position.epochLossCount > 0 ? position.epochLossSum / Double(position.epochLossCount) : nil,
                             trainImages: position.epochImages, lr: optimizer.lr, seconds: epochSeconds,
                             cpuSeconds: processCPUSeconds() - epochCPUStart,
                             imagesPerSecond: Double(epochImagesThisRun) / max(epochSeconds, 1e-9))
    if let tune {
      let rawM = try validate(.raw, on: tune)
      let emaM = try validate(.ema, on: tune)
      record.raw = SplitRecord(rawM); record.ema = SplitRecord(emaM)
      let improved = try best.offer(epoch: position.epoch + 1, raw: rawM, ema: emaM, position: &position, write: isLeader) {
        let weights = options.selection.weights == .raw ? Array(try model.stateDict()) : Array(ema.stateDict())
        return try weights.map { ($0.0, try $0.1.detach().to(.cpu).contiguous()) }
      } metadata: { metadata }
      record.selection = SelectionRecord(metric: options.selection.description, value: best.lastValue, improved: improved, best: position.best)
      progress.message(String(format: "epoch %d: train loss %.4f | tuning loss raw %.4f ema %.4f | AUROC raw %@ ema %@%@",
                              position.epoch + 1, record.trainLoss ?? .nan, rawM.loss, emaM.loss,
                              fmt(rawM.meanAUROC), fmt(emaM.meanAUROC), improved ? " (best)" : ""))
    }
    let mem = residentMemoryMiB()
    record.rssMiB = mem.current; record.peakRSSMiB = mem.peak
    record.skippedBatches = position.skippedBatches
    position.epoch += 1; position.batch = 0
    position.epochImages = 0; position.epochLossSum = 0; position.epochLossCount = 0
    if isLeader {
      try log.append(record)
      try SummaryCSV.write(from: log.url, to: summaryURL)
      var scalars: [(tag: String, value: Double)] = [("epoch/train_loss", record.trainLoss ?? .nan), ("epoch/images_per_s", record.imagesPerSecond ?? .nan)]
      for (name, split) in [("raw", record.raw), ("ema", record.ema)] {
        guard let split else { continue }
        scalars += [("tune/loss_\(name)", split.loss ?? .nan), ("tune/auroc_\(name)", split.aurocMean ?? .nan),
                    ("tune/auprc_\(name)", split.auprcMean ?? .nan)]
        for (finding, v) in split.auroc.sorted(by: { $0.key < $1.key }) { scalars.append(("tune/auroc_\(name)/\(finding)", v ?? .nan)) }
      }
      try events?.scalars(scalars, step: position.step)
    }
    return try writeCheckpoint()
  }

  /// The tuning split's metrics of the raw weights or of the EMA weights.
  public func validate(_ weights: SelectionMetric.Weights, on tune: BatchSource) throws -> SplitMetrics {
    func run() throws -> SplitMetrics {
      guard let parallel else {
        return try evaluateTuning(model, on: tune, device: options.device, bf16: options.useBF16, channelsLast: options.useChannelsLast, loss: loss)
      }
      // Each rank scores its shard; the shards are gathered and put back in batch order, so
      // the metrics are the ones one process computes.
      let mine = try collectTuning(model, on: tune, shard: parallel.shard(dropRemainder: false), device: options.device,
                                   bf16: options.useBF16, channelsLast: options.useChannelsLast, loss: loss)
      let all = try parallel.guarded("the gathering of the tuning split's scores") { try parallel.gatherRagged(mine.flattened) }
      var merged = TuningShard()
      merged.batches = all.flatMap { TuningShard.unflatten($0).batches }.sorted { $0.index < $1.index }
      return score(merged, findings: tune.findings)
    }
    return weights == .raw ? try run() : try withEMAWeights { try run() }
  }

  func stopOutcome(_ reason: TrainOutcome.Reason, _ why: String) throws -> TrainOutcome {
    let url = try writeCheckpoint()
    let msg = "\(why): \(url.map { "checkpoint written to \($0.path)" } ?? "rank 0 wrote the checkpoint") at step \(position.step); continue with --resume"
    progress.message(msg)
    if isLeader { try log.append(StopRecord(step: position.step, epoch: position.epoch, reason: why)) }
    return TrainOutcome(reason: reason, position: position, checkpoint: url, message: msg)
  }

  /// Clip, set the rate, step, zero the gradients, EMA.
  func optimizerStep() throws {
    if let maxNorm = options.gradClipNorm { try clipGradients(maxNorm) }
    optimizer.lr = schedule.lr(base: options.lr, step: position.step)
    try optimizer.step()
    try model.zeroGrad()
    position.step += 1
    try ema.update(model, step: position.step)
    if let parallel, position.step % parallel.checkEverySteps == 0 {
      try parallel.guarded("the weight check of step \(position.step)") { try parallel.checkInStep(model.parameters.map(\.value), step: position.step) }
    }
  }

  /// Scales all gradients so their global L2 norm is at most `maxNorm` (as `clip_grad_norm_`).
  func clipGradients(_ maxNorm: Double) throws {
    let grads = model.parameters.compactMap { $0.value.grad }
    guard !grads.isEmpty else { return }
    try withNoGrad {
      let total = try Tensor.stack(Foreach.norm(grads)).square().sum().sqrt().item()
      let coef = maxNorm / (total + 1e-6)
      if coef < 1 { try Foreach.mul_(grads, coef) }
    }
  }

  /// Runs `body` with the EMA values copied into the model, then puts the raw weights back.
  public func withEMAWeights<R>(_ body: () throws -> R) throws -> R {
    let params = model.parameters.map { $0.value }
    let saved = try withNoGrad { try Foreach.clone(params) }
    try withNoGrad {
      for (p, e) in zip(params, ema.values) { try p.copy_(e) }
    }
    defer { _ = try? withNoGrad { try Foreach.copy_(params, saved) } }
    return try body()
  }
}

/// Owns the choice of the best weights: the selection metric's value each epoch (non-finite
/// values, from diverged weights, are never "best"), the position's best/patience fields, and
/// writing `best.safetensors` with what it is (which weights, epoch, step, metric, value).
struct BestWeights {
  let selection: SelectionMetric
  let url: URL
  /// The metric's value at the last offer (nil when it had none, or it was not finite).
  private(set) var lastValue: Double?

  init(selection: SelectionMetric, url: URL) { self.selection = selection; self.url = url }

  mutating func restore(from position: TrainPosition) { lastValue = position.best }

  /// Records epoch `epoch`'s metrics; writes the weights when they are the best so far.
  /// `write` false (ranks other than 0): the choice is made, the file is left to rank 0.
  mutating func offer(epoch: Int, raw: SplitMetrics, ema: SplitMetrics, position: inout TrainPosition, write: Bool = true,
                      weights: () throws -> [(String, Tensor)], metadata: () -> [String: String]) throws -> Bool {
    let v = (selection.weights == .raw ? raw : ema).value(selection).flatMap { $0.isFinite ? $0 : nil }
    lastValue = v
    guard let v, position.best.map({ selection.higherIsBetter ? v > $0 : v < $0 }) ?? true else {
      position.epochsWithoutImprovement += 1
      return false
    }
    position.best = v; position.bestEpoch = epoch; position.epochsWithoutImprovement = 0
    guard write else { return true }
    var meta = metadata()
    meta["format"] = "pt"; meta["weights"] = selection.weights.rawValue; meta["epoch"] = String(epoch)
    meta["step"] = String(position.step); meta["selection"] = selection.description; meta["value"] = String(v)
    try SafeTensors.write(try weights(), metadata: meta, to: url)
    return true
  }
}

func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
