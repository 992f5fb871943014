import Common
import Data
import Foundation
import Models
import Torch

/// Runs a checkpoint over images and writes `id,path,<finding>...` with sigmoid
/// probabilities, in chunks, so that an interrupted run resumes where it stopped.
public struct Prediction {
  public struct Image: Equatable {
    public let id: String
    public let path: URL
    public init(id: String, path: URL) { self.id = id; self.path = path }
  }

  public var preprocess = PreprocessSettings()
  public var device: Device = .cpu
  public var batchSize = StudyConfig.Predict.defaultBatchSize
  public var workers = ProcessInfo.processInfo.activeProcessorCount
  /// Average the probabilities of each image and its horizontal mirror.
  public var ttaHorizontalFlip = false
  public var badFilePolicy: BadFilePolicy = .skip
  /// Preprocessed images to read instead of decoding (built with the same settings).
  public var cache: PreprocessedCache?
  public var log: (String) -> Void = { print($0) }

  public init() {}

  /// The `# key: value` lines that say what made the predictions: the weights file and its
  /// SHA-256, which weights they are, the build, libtorch and device, the preprocessing.
  public func header(_ loaded: LoadedModel, weights: URL) throws -> [(String, String)] {
    let m = loaded.metadata
    var kind = m["weights"] ?? "unknown"
    if weights.lastPathComponent == "best.safetensors" { kind = "best (\(m["weights"] ?? "?") weights by \(m["selection"] ?? "?") = \(m["value"] ?? "?"))" }
    if let e = m["epoch"], let st = m["step"] { kind += ", epoch \(e), step \(st)" }
    return [("weights", weights.path), ("weights_sha256", try SHA256.file(weights)), ("weights_kind", kind),
            ("provenance", Provenance(device: device).description), ("input", preprocess.description),
            ("tta_hflip", ttaHorizontalFlip ? "yes" : "no")]
  }

  /// Predicts every image not yet in `out` (resuming a `.partial` file made by the same weights
  /// and settings) and returns the number of images predicted in this call. A SIGINT/SIGTERM
  /// stops it after the current batch's rows are on disk, with `Interrupted`.
  @discardableResult
  public func run(_ loaded: LoadedModel, weights: URL, images: [Image], out: URL) throws -> Int {
    guard !images.isEmpty else { throw FileError("no images to predict on") }
    var seen = Set<String>()
    for im in images where !seen.insert(im.id).inserted {
      throw FileError("two images share the id '\(im.id)' (e.g. \(im.path.path)); ids must be unique")
    }
    let file = try PredictionsFile(url: out, findings: loaded.findings, header: try header(loaded, weights: weights))
    StopSignal.install()
    defer { StopSignal.uninstall() }
    let todo = images.filter { !file.done.contains($0.id) }
    if todo.count < images.count { log("[predict] resuming: \(images.count - todo.count) of \(images.count) images already done") }
    let predictor = try Predictor(loaded, on: device)
    let loader = try DataLoader(items: todo.map { LoaderItem(id: $0.id, path: $0.path, targets: []) },
                                options: LoaderOptions(batchSize: batchSize, preprocess: preprocess, workers: max(1, workers),
                                                       shuffle: false, badFilePolicy: badFilePolicy,
                                                       badFilesFolder: out.deletingLastPathComponent(), split: "test"),
                                cache: cache)
    let pathOf = Dictionary(uniqueKeysWithValues: todo.map { ($0.id, $0.path.path) })
    let it = loader.epoch(0)
    var done = 0
    let t0 = Date()
    var lastLog = Date()
    while let batch = try it.next() {
      guard !batch.ids.isEmpty else { continue }
      var p = try predictor.probabilities(batch.images)
      if ttaHorizontalFlip {
        p = try (p + predictor.probabilities(batch.images.flip([3]))) * 0.5
      }
      let values = try p.toArray(Float.self)
      let k = loaded.findings.count
      for (i, id) in batch.ids.enumerated() {
        try file.append(id: id, path: pathOf[id] ?? "", probabilities: values[(i * k)..<(i * k + k)].map(Double.init))
      }
      try file.flush()
      done += batch.ids.count
      if let sig = StopSignal.requested {
        throw Interrupted(signal: sig, message: "stopped by \(StopSignal.name(sig)) after \(done) of \(todo.count) images; the rows so far are in \(out.path).partial; run the same command again to continue")
      }
      if Date().timeIntervalSince(lastLog) > 10 {
        let rate = Double(done) / Date().timeIntervalSince(t0)
        log(String(format: "[predict] %d/%d images, %.1f images/s", done, todo.count, rate))
        lastLog = Date()
      }
    }
    try file.finish()
    let bad = loader.badFiles.all.count
    log("[predict] \(done) images predicted\(bad > 0 ? ", \(bad) unreadable (see bad_files.csv)" : "") -> \(out.path)")
    return done
  }

  /// Images under a folder (recursive; PNG, JPEG, DICOM), or listed by a CSV with a `path`
  /// column (and optionally `id`); ids default to the file stem.
  public static func images(at input: URL) throws -> [Image] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: input.path, isDirectory: &isDir) else {
      throw FileError("\(input.path) does not exist; give a folder of images or a CSV with a path column")
    }
    if isDir.boolValue {
      let files = try ImageFiles.find(under: input, extensions: ["png", "jpg", "jpeg", "dcm", "dicom"])
      guard !files.isEmpty else { throw FileError("\(input.path) holds no .png, .jpg, .jpeg or .dcm files") }
      return files.map { Image(id: $0.deletingPathExtension().lastPathComponent, path: $0) }
    }
    let table = try CSVTable.read(input)
    let pc = try table.require("path")
    let ic = table.index(of: "id")
    let base = input.deletingLastPathComponent()
    return table.rows.map { row in
      let p = row[pc].hasPrefix("/") ? URL(fileURLWithPath: row[pc]) : base.appendingPathComponent(row[pc])
      return Image(id: ic.map { row[$0] } ?? p.deletingPathExtension().lastPathComponent, path: p)
    }
  }
}
