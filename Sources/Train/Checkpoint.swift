import Common
import Foundation
import Torch

/// Where the loop stands: enough, with the tensors, to continue bit-identically.
public struct TrainPosition: Codable, Equatable, Sendable {
  public var version = 1
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
  public init() {}
}

/// Checkpoint folders `checkpoints/step-NNNNNNNN/` each holding `model.safetensors` and
/// `ema.safetensors` (timm names, loadable by timm) and `state.safetensors` (Lion `exp_avg` as
/// `lion/<name>`, generator states as `rng/<name>`, the position as JSON metadata). A folder is
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
    public var lion: StateDict
    public var rng: [String: Tensor]
    public var position: TrainPosition
  }

  static func cpu(_ sd: StateDict) throws -> [(String, Tensor)] {
    try sd.map { ($0.0, try $0.1.detach().to(.cpu).contiguous()) }
  }

  /// Writes one checkpoint and prunes the oldest beyond `keepLast`; returns its folder.
  @discardableResult
  public func write(_ c: Contents, metadata: [String: String]) throws -> URL {
    let name = String(format: "step-%08d", c.position.step)
    let final = directory.appendingPathComponent(name)
    let partial = directory.appendingPathComponent(".partial-\(name)-\(getpid())")
    let fm = FileManager.default
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
    var state: [(String, Tensor)] = try Self.cpu(c.lion).map { ("lion/" + $0.0, $0.1) }
    for k in c.rng.keys.sorted() { state.append(("rng/" + k, try c.rng[k]!.to(.cpu).contiguous())) }
    let pos = String(decoding: try JSONEncoder().encode(c.position), as: UTF8.self)
    try SafeTensors.write(state, metadata: ["position": pos], to: partial.appendingPathComponent("state.safetensors"))
    if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
    guard rename(partial.path, final.path) == 0 else {
      throw FileError("cannot rename \(partial.path) to \(final.path): \(String(cString: strerror(errno)))")
    }
    try prune()
    return final
  }

  /// Completed checkpoint folders, oldest first.
  public func list() throws -> [(step: Int, url: URL)] {
    guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: directory.path).compactMap { n -> (Int, URL)? in
      guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)) else { return nil }
      return (s, directory.appendingPathComponent(n))
    }.sorted { $0.0 < $1.0 }
  }

  public func latest() throws -> URL? { try list().last?.url }

  func prune() throws {
    let all = try list()
    for (_, url) in all.dropLast(keepLast) { try FileManager.default.removeItem(at: url) }
    // Leftovers of a write that was killed midway.
    for n in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where n.hasPrefix(".partial-") {
      try? FileManager.default.removeItem(at: directory.appendingPathComponent(n))
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
    var lion = StateDict(), rng: [String: Tensor] = [:]
    for (k, t) in state {
      if k.hasPrefix("lion/") { lion[String(k.dropFirst(5))] = t }
      else if k.hasPrefix("rng/") { rng[String(k.dropFirst(4))] = t }
      else { throw FileError("\(stateURL.path) has an unexpected tensor '\(k)'") }
    }
    return Contents(model: model, ema: ema, lion: lion, rng: rng, position: position)
  }
}
