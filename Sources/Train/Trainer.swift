import Common
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

/// The training loop: augmentation, masked BCE, Lion, EMA, per-epoch tuning evaluation with
/// raw and EMA weights, checkpoints and resume, signals, progress and `metrics.jsonl`.
public final class Trainer {
  public let model: Classifier
  public let options: TrainOptions
  public let runDirectory: URL
  public let progress: ProgressReporter
  /// Extra safetensors metadata for the weight files (e.g. schema, findings, model name).
  public var metadata: [String: String] = [:]
  /// The resolved configuration (YAML text from the Experiment layer), written atomically to
  /// `config.yaml` in the run folder when `fit` starts.
  public var resolvedConfig: String?

  public private(set) var lion: Lion
  public private(set) var ema: EMA
  public private(set) var random: AugmentRandom
  public private(set) var position = TrainPosition()
  let store: CheckpointStore
  let loss: MaskedBCE
  /// The schedule with its last step resolved (warmup_cosine with totalSteps 0).
  var schedule: LRSchedule

  public init(model: Classifier, options: TrainOptions, runDirectory: URL, progress: ProgressReporter? = nil) throws {
    try options.validate()
    self.model = model
    self.options = options
    self.runDirectory = runDirectory
    self.progress = progress ?? ProgressReporter(interval: options.progressInterval)
    try Runtime.applyCuDNNBenchmark(for: options.device, requested: options.cudnnBenchmark)
    try model.to(options.device, dtype: .float32)
    if options.useChannelsLast {
      try withNoGrad { for p in model.parameters where p.value.ndim == 4 { try p.replace(with: p.value.contiguous(.channelsLast)) } }
    }
    lion = try Lion(model.namedParameters(), lr: options.lr, betas: (options.beta1, options.beta2),
                    weightDecay: options.weightDecay, noDecayForNormsAndBiases: options.noDecayForNormsAndBiases)
    ema = try EMA(model, decay: options.emaDecay, warmup: options.emaWarmup)
    random = try AugmentRandom(seed: options.seed, device: options.device)
    store = CheckpointStore(runDirectory: runDirectory, keepLast: options.keepLast)
    schedule = options.schedule
    loss = MaskedBCE(posWeight: try options.posWeight.map { try Tensor($0.map(Float.init)) })
  }

  var metricsURL: URL { runDirectory.appendingPathComponent("metrics.jsonl") }
  var bestURL: URL { runDirectory.appendingPathComponent("best.safetensors") }

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

  @discardableResult
  func writeCheckpoint() throws -> URL {
    try store.write(.init(model: model.stateDict(), ema: ema.stateDict(), optimizer: lion.stateDict(),
                          rng: rngStates(), position: position), metadata: metadata)
  }

  /// Loads the newest complete checkpoint of the run folder into the model, EMA, Lion and
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
        try lion.load(c.optimizer)
      } catch {
        throw TrainError("--resume: \(folder.path) does not fit this model: \(error)")
      }
      for (name, gen) in gens { try gen.setState(c.rng[name]!) }
      position = c.position
      return folder
    }
    throw TrainError("--resume: no checkpoint in \(store.directory.path) can be read: \(damaged.joined(separator: "; ")); start the run again without --resume (in a new folder)")
  }

  // MARK: metrics.jsonl

  func appendMetrics(_ record: [String: Any]) throws {
    var line = try JSONSerialization.data(withJSONObject: JSONSafe.value(record), options: [.sortedKeys])
    line.append(0x0A)
    let fm = FileManager.default
    if !fm.fileExists(atPath: metricsURL.path) { _ = fm.createFile(atPath: metricsURL.path, contents: nil) }
    let h = try FileHandle(forWritingTo: metricsURL)
    defer { try? h.close() }
    try h.seekToEnd()
    try h.write(contentsOf: line)
  }

  /// On resume, drops records written after the checkpoint so the log matches the weights: stop
  /// records after its step, and epoch records of epochs it has not completed (a kill between an
  /// epoch's record and its checkpoint must not leave that epoch logged twice).
  func truncateMetrics(after position: TrainPosition) throws {
    guard let text = try? String(contentsOf: metricsURL, encoding: .utf8) else { return }
    let kept = text.split(separator: "\n").filter { line in
      guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
      if o["type"] as? String == "epoch", let e = o["epoch"] as? Int { return e <= position.epoch }
      guard let s = o["step"] as? Int else { return true }
      return s <= position.step
    }
    try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: metricsURL)
  }

  func noteSkipped(_ lines: [String]) throws {
    guard !lines.isEmpty else { return }
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
      try truncateMetrics(after: position)
      progress.message("resuming from \(folder.path) (epoch \(position.epoch + 1), batch \(position.batch), step \(position.step))")
    } else if let existing = try store.latest() {
      throw TrainError("\(runDirectory.path) already holds checkpoint \(existing.lastPathComponent): pass --resume to continue it, or choose a new run folder")
    }
    guard train.batchesPerEpoch > 0 else {
      throw TrainError("the training split yields no batch: it has fewer images than one batch; lower the batch size or check the split")
    }
    if let t = tune, t.findings != train.findings {
      throw TrainError("the tuning split's findings \(t.findings) differ from the training split's \(train.findings)")
    }
    // Written only now that training really starts: a refused run leaves the folder as it was.
    if let text = resolvedConfig { try AtomicFile.write(text, to: runDirectory.appendingPathComponent("config.yaml")) }
    StopSignal.install()
    defer { StopSignal.uninstall() }
    let augment = Augmenter(options.augment)
    if case let .warmupCosine(w, 0, m) = options.schedule {
      schedule = .warmupCosine(warmupSteps: w, totalSteps: options.epochs * max(1, train.batchesPerEpoch / options.accumulation), minLR: m)
    }
    let dev = options.device
    let batches = train.batchesPerEpoch
    var lastCheckpoint: URL?
    model.setTraining(true)

    func stopOutcome(_ reason: TrainOutcome.Reason, _ why: String) throws -> TrainOutcome {
      let url = try writeCheckpoint()
      let msg = "\(why): checkpoint written to \(url.path) at step \(position.step); continue with --resume"
      progress.message(msg)
      try appendMetrics(["type": "stop", "step": position.step, "epoch": position.epoch, "reason": why])
      return TrainOutcome(reason: reason, position: position, checkpoint: url, message: msg)
    }

    while position.epoch < options.epochs {
      let epochStart = Date(), epochCPU = processCPUSeconds()
      // The epoch's sums live in the position, so a resumed epoch continues them.
      let seenBefore = position.epochImages
      let batchBefore = position.batch
      var micro = 0
      var pendingIds: [String] = []
      let it = try train.makeIterator(epoch: position.epoch, startingAt: position.batch)
      while let raw = try it.next() {
        try noteSkipped(raw.skipped)
        // Every image of the batch unreadable: nothing to learn from, but the sampler moves on.
        if raw.ids.isEmpty { position.batch += 1; continue }
        var b = Batch(ids: raw.ids, images: try raw.images.to(dev, dtype: .float32),
                      targets: try raw.targets.to(dev, dtype: .float32), mask: try raw.mask.to(dev, dtype: .float32))
        b = try augment(b, random)
        let x = options.useChannelsLast ? try b.images.contiguous(.channelsLast) : b.images
        let value = try withGrad {
          try withAutocast(dev, enabled: options.useBF16) { try loss(model(x), b.targets, mask: b.mask) }
        }
        position.batch += 1
        let lv = try value.item()
        if !lv.isFinite {
          let shown = lv.isNaN ? "NaN" : (lv > 0 ? "+inf" : "-inf")
          let where_ = "loss is \(shown) at step \(position.step + 1) (epoch \(position.epoch + 1), batch \(position.batch))"
          switch options.nonFinite {
          case .stop:
            let keep = try store.latest().map { "the last good checkpoint is \($0.path)" } ?? "no checkpoint was written yet"
            throw TrainError("\(where_); images: \(b.ids.joined(separator: ", ")); \(keep). Check these images, or set train.non_finite: skip")
          case .skip:
            position.skippedBatches += 1
            try model.zeroGrad()
            micro = 0; pendingIds = []
            progress.message("\(where_): batch skipped (images: \(b.ids.joined(separator: ", ")))")
            continue
          }
        }
        try (options.accumulation > 1 ? value / Double(options.accumulation) : value).backward()
        micro += 1
        pendingIds += b.ids
        position.epochImages += b.ids.count; position.epochLossSum += lv; position.epochLossCount += 1
        let endOfEpoch = position.batch >= batches
        guard micro == options.accumulation || endOfEpoch else { continue }
        try optimizerStep()
        micro = 0; pendingIds = []

        let elapsed = Date().timeIntervalSince(epochStart)
        let rate = Double(position.epochImages - seenBefore) / max(elapsed, 1e-9)
        let remaining = Double(max(batches - position.batch, 0)) * elapsed / Double(max(position.batch - batchBefore, 1))
        progress.update(.init(epoch: position.epoch, epochs: options.epochs, step: position.step, batch: position.batch,
                              batches: batches, imagesPerSecond: rate, loss: position.epochLossSum / Double(max(position.epochLossCount, 1)),
                              etaSeconds: remaining))
        if let sig = StopSignal.requested {
          StopSignal.reset()
          return try stopOutcome(.interrupted(signal: sig), "stopped by \(StopSignal.name(sig))")
        }
        if let m = options.maxSteps, position.step >= m {
          return try stopOutcome(.reachedMaxSteps, "reached \(m) steps")
        }
        if let every = options.checkpointEverySteps, position.step % every == 0 { lastCheckpoint = try writeCheckpoint() }
      }
      if micro > 0 { try optimizerStep() }
      guard position.epochLossCount > 0 else {
        throw TrainError("epoch \(position.epoch + 1) ended without a single optimizer step: no batch of the training split could be used (unreadable images are listed in bad_files.csv, non-finite losses above); nothing was trained")
      }

      // End of epoch: evaluate raw and EMA weights, pick the best, checkpoint.
      let lossCount = position.epochLossCount
      var record: [String: Any] = ["type": "epoch", "epoch": position.epoch + 1, "step": position.step,
                                   "train_loss": lossCount > 0 ? position.epochLossSum / Double(lossCount) : NSNull(),
                                   "train_images": position.epochImages,
                                   "lr": lion.lr, "seconds": Date().timeIntervalSince(epochStart),
                                   "cpu_seconds": processCPUSeconds() - epochCPU,
                                   "images_per_s": Double(position.epochImages - seenBefore) / max(Date().timeIntervalSince(epochStart), 1e-9)]
      var improved = false
      if let tune {
        let rawM = try evaluateTuning(model, on: tune, device: dev, bf16: options.useBF16, channelsLast: options.useChannelsLast, loss: loss)
        let emaM = try withEMAWeights { try evaluateTuning(model, on: tune, device: dev, bf16: options.useBF16, channelsLast: options.useChannelsLast, loss: loss) }
        record["raw"] = rawM.json; record["ema"] = emaM.json
        let sel = options.selection
        // A non-finite value (diverged weights) is never "best" and never reaches the JSON log.
        let v = (sel.weights == .raw ? rawM : emaM).value(sel).flatMap { $0.isFinite ? $0 : nil }
        if let v {
          if let best = position.best { improved = sel.higherIsBetter ? v > best : v < best } else { improved = true }
        }
        if improved, let v {
          position.best = v; position.bestEpoch = position.epoch + 1; position.epochsWithoutImprovement = 0
          var meta = metadata
          meta["format"] = "pt"; meta["weights"] = sel.weights.rawValue; meta["epoch"] = String(position.epoch + 1)
          meta["step"] = String(position.step); meta["selection"] = sel.description; meta["value"] = String(v)
          let weights = sel.weights == .raw ? Array(try model.stateDict()) : Array(ema.stateDict())
          try SafeTensors.write(try weights.map { ($0.0, try $0.1.detach().to(.cpu).contiguous()) }, metadata: meta, to: bestURL)
        } else {
          position.epochsWithoutImprovement += 1
        }
        record["selection"] = ["metric": sel.description, "value": v.map { $0 as Any } ?? NSNull(), "improved": improved,
                               "best": position.best.map { $0 as Any } ?? NSNull()]
        progress.message(String(format: "epoch %d: train loss %.4f | tuning loss raw %.4f ema %.4f | AUROC raw %@ ema %@%@",
                                position.epoch + 1, position.epochLossSum / Double(max(lossCount, 1)), rawM.loss, emaM.loss,
                                fmt(rawM.meanAUROC), fmt(emaM.meanAUROC), improved ? " (best)" : ""))
      }
      let mem = residentMemoryMiB()
      record["rss_mib"] = mem.current; record["peak_rss_mib"] = mem.peak
      record["skipped_batches"] = position.skippedBatches
      position.epoch += 1; position.batch = 0
      position.epochImages = 0; position.epochLossSum = 0; position.epochLossCount = 0
      try appendMetrics(record)
      lastCheckpoint = try writeCheckpoint()
      if let p = options.earlyStopPatience, position.epochsWithoutImprovement >= p, position.epoch < options.epochs {
        let msg = "early stop after epoch \(position.epoch): \(options.selection) did not improve for \(p) epoch(s); best \(fmt(position.best)) at epoch \(position.bestEpoch ?? 0)"
        progress.message(msg)
        return TrainOutcome(reason: .earlyStopped, position: position, checkpoint: lastCheckpoint, message: msg)
      }
      if let sig = StopSignal.requested {
        StopSignal.reset()
        let msg = "stopped by \(StopSignal.name(sig)) after epoch \(position.epoch): checkpoint written to \(lastCheckpoint!.path); continue with --resume"
        progress.message(msg)
        return TrainOutcome(reason: .interrupted(signal: sig), position: position, checkpoint: lastCheckpoint, message: msg)
      }
    }
    let msg = "finished \(options.epochs) epoch(s), \(position.step) steps; best \(options.selection) \(fmt(position.best))"
    progress.message(msg)
    return TrainOutcome(reason: .finished, position: position, checkpoint: lastCheckpoint, message: msg)
  }

  /// Clip, set the rate, Lion, zero the gradients, EMA.
  func optimizerStep() throws {
    if let maxNorm = options.gradClipNorm { try clipGradients(maxNorm) }
    lion.lr = schedule.lr(base: options.lr, step: position.step)
    try lion.step()
    try model.zeroGrad()
    position.step += 1
    try ema.update(model, step: position.step)
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

func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
