import Foundation
import Torch

/// Reads the `train:` mapping of a config file (YAML decoded to plain values) into
/// `TrainOptions`, over the defaults, and writes the resolved options back as plain values
/// (for the run folder's `config.yaml`). Unknown keys and wrong types are errors that name
/// the key (`train.<key>`) and the file.
extension TrainOptions {
  static let keys = ["epochs", "lr", "weight_decay", "betas", "no_decay_norms_biases", "schedule", "warmup_steps",
                     "min_lr", "ema_decay", "ema_warmup", "ema_warmup_gamma", "ema_warmup_power", "grad_clip",
                     "accumulation", "augment", "pos_weight", "seed", "device", "bf16", "channels_last", "cudnn_benchmark", "selection",
                     "early_stop_patience", "non_finite", "checkpoint_every", "keep_last", "progress_interval", "max_steps"]
  static let augmentKeys = ["horizontal_flip", "vertical_flip", "noise", "noise_std", "affine", "rotation_degrees",
                            "scale_range", "translate_fraction", "mix", "cutmix_share", "mixup_alpha", "cutmix_alpha"]

  public init(settings: [String: Any], origin: String, prefix: String = "train") throws {
    self.init()
    let r = SettingsReader(origin: origin, prefix: prefix)
    try r.rejectUnknown(settings, known: Self.keys)
    var scheduleName = "constant", warmupSteps = 0, minLR = 0.0
    var emaWarm = false, warm = EMA.Warmup()
    for (k, v) in settings {
      if v is NSNull { continue }
      switch k {
      case "epochs": epochs = try r.int(v, k)
      case "lr": lr = try r.double(v, k)
      case "weight_decay": weightDecay = try r.double(v, k)
      case "betas":
        let b = try r.doubles(v, k)
        guard b.count == 2 else { throw r.error(k, "must list two numbers, e.g. [0.9, 0.99]") }
        beta1 = b[0]; beta2 = b[1]
      case "no_decay_norms_biases": noDecayForNormsAndBiases = try r.bool(v, k)
      case "schedule":
        scheduleName = try r.string(v, k)
        guard ["constant", "warmup_cosine"].contains(scheduleName) else { throw r.error(k, "is '\(scheduleName)'; use constant or warmup_cosine") }
      case "warmup_steps": warmupSteps = try r.int(v, k)
      case "min_lr": minLR = try r.double(v, k)
      case "ema_decay": emaDecay = try r.double(v, k)
      case "ema_warmup": emaWarm = try r.bool(v, k)
      case "ema_warmup_gamma": warm.gamma = try r.double(v, k)
      case "ema_warmup_power": warm.power = try r.double(v, k)
      case "grad_clip": gradClipNorm = try r.double(v, k)
      case "accumulation": accumulation = try r.int(v, k)
      case "augment": augment = try AugmentOptions(settings: r.mapping(v, k), reader: r.nested(k))
      case "pos_weight": posWeight = try r.doubles(v, k)
      case "seed":
        let s = try r.int(v, k)
        guard s >= 0 else { throw r.error(k, "is \(s); a seed must be >= 0") }
        seed = UInt64(s)
      case "device":
        do { device = try Device(parsing: r.string(v, k)) } catch let e as TorchError { throw r.error(k, e.message) }
      case "bf16": bf16 = try r.bool(v, k)
      case "channels_last": channelsLast = try r.bool(v, k)
      case "cudnn_benchmark": cudnnBenchmark = try r.bool(v, k)
      case "selection":
        do { selection = try SelectionMetric(parsing: r.string(v, k)) } catch let e as TrainError { throw r.error(k, e.message) }
      case "early_stop_patience": earlyStopPatience = try r.int(v, k)
      case "non_finite":
        let s = try r.string(v, k)
        guard let p = NonFinitePolicy(rawValue: s) else { throw r.error(k, "is '\(s)'; use stop or skip") }
        nonFinite = p
      case "checkpoint_every": checkpointEverySteps = try r.int(v, k)
      case "keep_last": keepLast = try r.int(v, k)
      case "progress_interval": progressInterval = try r.double(v, k)
      case "max_steps": maxSteps = try r.int(v, k)
      default: break
      }
    }
    if emaWarm { emaWarmup = warm }
    // warmup_cosine's last step is fixed when the loop knows the steps per epoch (0 = epochs x steps).
    schedule = scheduleName == "constant" ? .constant : .warmupCosine(warmupSteps: warmupSteps, totalSteps: 0, minLR: minLR)
    do { try validate() } catch let e as TrainError { throw TrainError("\(origin): \(e.message)") }
  }

  /// The resolved options as plain values, keyed as in the config file.
  public var settings: [String: Any] {
    var s: [String: Any] = [
      "epochs": epochs, "lr": lr, "weight_decay": weightDecay, "betas": [beta1, beta2],
      "no_decay_norms_biases": noDecayForNormsAndBiases, "ema_decay": emaDecay, "ema_warmup": emaWarmup != nil,
      "accumulation": accumulation, "augment": augment.settings, "seed": Int(seed), "device": device.description,
      "bf16": useBF16, "channels_last": useChannelsLast, "cudnn_benchmark": cudnnBenchmark,
      "selection": selection.description,
      "non_finite": nonFinite.rawValue, "keep_last": keepLast, "progress_interval": progressInterval,
    ]
    switch schedule {
    case .constant: s["schedule"] = "constant"
    case let .warmupCosine(w, _, m): s["schedule"] = "warmup_cosine"; s["warmup_steps"] = w; s["min_lr"] = m
    }
    if let w = emaWarmup { s["ema_warmup_gamma"] = w.gamma; s["ema_warmup_power"] = w.power }
    if let v = gradClipNorm { s["grad_clip"] = v }
    if let v = posWeight { s["pos_weight"] = v }
    if let v = earlyStopPatience { s["early_stop_patience"] = v }
    if let v = checkpointEverySteps { s["checkpoint_every"] = v }
    if let v = maxSteps { s["max_steps"] = v }
    return s
  }
}

extension AugmentOptions {
  init(settings: [String: Any], reader r: SettingsReader) throws {
    self.init()
    try r.rejectUnknown(settings, known: TrainOptions.augmentKeys)
    for (k, v) in settings where !(v is NSNull) {
      let x = try r.double(v, k)
      switch k {
      case "horizontal_flip": horizontalFlip = x
      case "vertical_flip": verticalFlip = x
      case "noise": noise = x
      case "noise_std": noiseStd = x
      case "affine": affine = x
      case "rotation_degrees": rotationDegrees = x
      case "scale_range": scaleRange = x
      case "translate_fraction": translateFraction = x
      case "mix": mix = x
      case "cutmix_share": cutmixShare = x
      case "mixup_alpha": mixupAlpha = x
      case "cutmix_alpha": cutmixAlpha = x
      default: break
      }
    }
  }

  public var settings: [String: Any] {
    ["horizontal_flip": horizontalFlip, "vertical_flip": verticalFlip, "noise": noise, "noise_std": noiseStd,
     "affine": affine, "rotation_degrees": rotationDegrees, "scale_range": scaleRange,
     "translate_fraction": translateFraction, "mix": mix, "cutmix_share": cutmixShare,
     "mixup_alpha": mixupAlpha, "cutmix_alpha": cutmixAlpha]
  }
}

/// Typed access to plain config values with errors that name the file and the key.
struct SettingsReader {
  let origin: String, prefix: String
  func nested(_ key: String) -> SettingsReader { SettingsReader(origin: origin, prefix: "\(prefix).\(key)") }
  func error(_ key: String, _ what: String) -> TrainError { TrainError("\(origin): \(prefix).\(key) \(what)") }
  static func show(_ v: Any) -> String { v is String ? "'\(v)'" : "\(v)" }

  func rejectUnknown(_ d: [String: Any], known: [String]) throws {
    if let k = d.keys.sorted().first(where: { !known.contains($0) }) {
      throw TrainError("\(origin): unknown key \(prefix).\(k) (known keys: \(known.sorted().joined(separator: ", ")))")
    }
  }
  func double(_ v: Any, _ k: String) throws -> Double {
    if v is Bool { throw error(k, "must be a number, found \(v)") }
    if let d = v as? Double { return d }
    if let i = v as? Int { return Double(i) }
    if let s = v as? String, let d = Double(s) { return d }
    throw error(k, "must be a number, found \(Self.show(v))")
  }
  func int(_ v: Any, _ k: String) throws -> Int {
    if v is Bool { throw error(k, "must be a whole number, found \(v)") }
    if let i = v as? Int { return i }
    if let d = v as? Double, d == d.rounded(), Swift.abs(d) < 1e15 { return Int(d) }
    if let s = v as? String, let i = Int(s) { return i }
    throw error(k, "must be a whole number, found \(Self.show(v))")
  }
  func bool(_ v: Any, _ k: String) throws -> Bool {
    if let b = v as? Bool { return b }
    throw error(k, "must be true or false, found \(Self.show(v))")
  }
  func string(_ v: Any, _ k: String) throws -> String {
    if let s = v as? String { return s }
    throw error(k, "must be text, found \(Self.show(v))")
  }
  func doubles(_ v: Any, _ k: String) throws -> [Double] {
    guard let a = v as? [Any] else { throw error(k, "must be a list of numbers, found \(Self.show(v))") }
    return try a.map { try double($0, k) }
  }
  func mapping(_ v: Any, _ k: String) throws -> [String: Any] {
    guard let d = v as? [String: Any] else { throw error(k, "must be a mapping of keys to values, found \(Self.show(v))") }
    return d
  }
}
