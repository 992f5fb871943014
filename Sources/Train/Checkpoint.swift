import Common
import Foundation
import Torch

/// Where the loop stands: enough, with the tensors, to continue bit-identically.
public struct TrainPosition: Codable, Equatable, Sendable {
  public var version = 3
  /// Optimizer steps taken.
  public var step = 0
  /// The epoch to continue in (0-based) and the next batch index in it (the sampler position).
  public var epoch = 0
  public var batch = 0
  /// Best value of the selection metric so far, the epoch it came from, and epochs since.
  public var best: Double?
  public var bestEpoch: Int?
  public var epochsWithoutImprovement = 0
  /// Batches skipped for a non-finite loss (policy `skip`).
  public var skippedBatches = 0
  /// The running sums of the epoch in progress (images seen, summed batch losses, batches), so a
  /// resumed epoch reports the same `train_loss` as an uninterrupted one.
  public var epochImages = 0
  public var epochLossSum = 0.0
  public var epochLossCount = 0
  /// The processes that trained and their micro-batches per step (a resume with another
  /// number of processes keeps the global batch); nil in checkpoints before version 3.
  public var worldSize: Int?
  public var accumulation: Int?
  public init() {}

  enum CodingKeys: String, CodingKey {
    case version, step, epoch, batch, best, bestEpoch, epochsWithoutImprovement, skippedBatches
    case epochImages, epochLossSum, epochLossCount, worldSize, accumulation
  }

  /// Version-1 positions (no running sums) still read; their sums start at zero.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
    step = try c.decode(Int.self, forKey: .step)
    epoch = try c.decode(Int.self, forKey: .epoch)
    batch = try c.decode(Int.self, forKey: .batch)
    best = try c.decodeIfPresent(Double.self, forKey: .best)
    bestEpoch = try c.decodeIfPresent(Int.self, forKey: .bestEpoch)
    epochsWithoutImprovement = try c.decodeIfPresent(Int.self, forKey: .epochsWithoutImprovement) ?? 0
    skippedBatches = try c.decodeIfPresent(Int.self, forKey: .skippedBatches) ?? 0
    epochImages = try c.decodeIfPresent(Int.self, forKey: .epochImages) ?? 0
    epochLossSum = try c.decodeIfPresent(Double.self, forKey: .epochLossSum) ?? 0
    epochLossCount = try c.decodeIfPresent(Int.self, forKey: .epochLossCount) ?? 0
    worldSize = try c.decodeIfPresent(Int.self, forKey: .worldSize)
    accumulation = try c.decodeIfPresent(Int.self, forKey: .accumulation)
  }
}

/// Checkpoint folders `checkpoints/step-NNNNNNNN/` each holding `model.safetensors` and
/// `ema.safetensors` (timm names, loadable by timm) and `state.safetensors` (the optimizer's
/// state as `optimizer/<name>`, read as `lion/<name>` from older checkpoints; generator states as
/// `rng/<name>`; the position as JSON metadata). A folder is
/// written under a temporary name and renamed, so a listed folder is always complete.
public struct CheckpointStore {
  public let directory: URL
  public let keepLast: Int
  public init(runDirectory: URL, keepLast: Int) {
    directory = runDirectory.appendingPathComponent("checkpoints")
    self.keepLast = max(1, keepLast)
  }

  public struct Contents {
    public var model: StateDict
    public var ema: StateDict
    /// The optimizer's state (Lion's `exp_avg`), stored as `optimizer/<name>`.
    public var optimizer: StateDict
    public var rng: [String: Tensor]
    public var position: TrainPosition
  }

  static func cpu(_ sd: StateDict) throws -> [(String, Tensor)] {
    try sd.map { ($0.0, try $0.1.detach().to(.cpu).contiguous()) }
  }

  /// Writes one checkpoint into a new folder and prunes the oldest beyond `keepLast`; returns
  /// its folder. A folder is never modified in place: the files go to a temporary folder (each
  /// fsync'd), the folder is synced and renamed to a name no other checkpoint has (a second
  /// checkpoint at the same step, e.g. epoch end after a mid-epoch one, gets `step-N-2`), the
  /// parent is synced, and only then are older folders pruned.
  @discardableResult
  public func write(_ c: Contents, metadata: [String: String]) throws -> URL {
    let fm = FileManager.default
    try fm.createDirectory(at: directory, withIntermediateDirectories: true)
    let base = String(format: "step-%08d", c.position.step)
    var name = base, n = 1
    while fm.fileExists(atPath: directory.appendingPathComponent(name).path) {
      n += 1
      name = "\(base)-\(n)"
    }
    let final = directory.appendingPathComponent(name)
    let partial = directory.appendingPathComponent(".partial-\(name)-\(getpid())")
    try? fm.removeItem(at: partial)
    try fm.createDirectory(at: partial, withIntermediateDirectories: true)
    var meta = metadata
    meta["format"] = "pt"
    meta["step"] = String(c.position.step)
    meta["epoch"] = String(c.position.epoch)
    var weightsMeta = meta
    weightsMeta["weights"] = "raw"
    try SafeTensors.write(Self.cpu(c.model), metadata: weightsMeta, to: partial.appendingPathComponent("model.safetensors"))
    weightsMeta["weights"] = "ema"
    try SafeTensors.write(Self.cpu(c.ema), metadata: weightsMeta, to: partial.appendingPathComponent("ema.safetensors"))
    var state: [(String, Tensor)] = try Self.cpu(c.optimizer).map { ("optimizer/" + $0.0, $0.1) }
    for k in c.rng.keys.sorted() { state.append(("rng/" + k, try c.rng[k]!.to(.cpu).contiguous())) }
    let pos = String(decoding: try JSONEncoder().encode(c.position), as: UTF8.self)
    var stateMeta = ["position": pos]
    if let v = meta["provenance"] { stateMeta["provenance"] = v }
    try SafeTensors.write(state, metadata: stateMeta, to: partial.appendingPathComponent("state.safetensors"))
    try AtomicFile.syncDirectory(partial)
    guard rename(partial.path, final.path) == 0 else {
      throw FileError("cannot rename \(partial.path) to \(final.path): \(String(cString: strerror(errno)))")
    }
    try AtomicFile.syncDirectory(directory)
    try prune()
    return final
  }

  /// Completed checkpoint folders, oldest first (by step, then by the `-N` of a later folder of
  /// the same step). Temporary and pruned folders start with a dot and are never listed.
  public func list() throws -> [(step: Int, url: URL)] {
    guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: directory.path).compactMap { n -> (Int, Int, URL)? in
      guard n.hasPrefix("step-") else { return nil }
      let parts = n.dropFirst(5).split(separator: "-", omittingEmptySubsequences: false)
      guard let s = parts.first.flatMap({ Int($0) }), parts.count <= 2 else { return nil }
      let again = parts.count == 2 ? Int(parts[1]) : 1
      guard let again else { return nil }
      return (s, again, directory.appendingPathComponent(n))
    }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { ($0.0, $0.2) }
  }

  public func latest() throws -> URL? { try list().last?.url }

  /// Removes the oldest folders beyond `keepLast`. Each is first renamed to a dot name (atomic),
  /// so a kill while it is being deleted leaves nothing that looks like a checkpoint.
  func prune() throws {
    let fm = FileManager.default
    let all = try list()
    for (_, url) in all.dropLast(keepLast) {
      let doomed = directory.appendingPathComponent(".pruned-\(url.lastPathComponent)-\(getpid())")
      guard rename(url.path, doomed.path) == 0 else { continue }
      try? fm.removeItem(at: doomed)
    }
    // Leftovers of a write or a prune that was killed midway.
    for n in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] where n.hasPrefix(".partial-") || n.hasPrefix(".pruned-") {
      try? fm.removeItem(at: directory.appendingPathComponent(n))
    }
  }

  /// Reads a checkpoint folder; errors name the file and what is wrong.
  public static func read(_ folder: URL) throws -> Contents {
    let model = try SafeTensors.read(folder.appendingPathComponent("model.safetensors")).tensors
    let ema = try SafeTensors.read(folder.appendingPathComponent("ema.safetensors")).tensors
    let stateURL = folder.appendingPathComponent("state.safetensors")
    let (state, meta) = try SafeTensors.read(stateURL)
    guard let json = meta["position"] else {
      throw FileError("\(stateURL.path) has no 'position' metadata: it is not a cxr training state; start the run again without --resume")
    }
    let position: TrainPosition
    do { position = try JSONDecoder().decode(TrainPosition.self, from: Data(json.utf8)) } catch {
      throw FileError("\(stateURL.path): the 'position' metadata is not valid (\(error)); start the run again without --resume")
    }
    var optimizer = StateDict(), rng: [String: Tensor] = [:]
    for (k, t) in state {
      if k.hasPrefix("optimizer/") { optimizer[String(k.dropFirst(10))] = t }
      else if k.hasPrefix("lion/") { optimizer[String(k.dropFirst(5))] = t }  // checkpoints of earlier cxr versions
      else if k.hasPrefix("rng/") { rng[String(k.dropFirst(4))] = t }
      else { throw FileError("\(stateURL.path) has an unexpected tensor '\(k)'") }
    }
    return Contents(model: model, ema: ema, optimizer: optimizer, rng: rng, position: position)
  }
}
