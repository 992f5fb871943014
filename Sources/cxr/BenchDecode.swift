import ArgumentParser
import Data
import Foundation

/// `cxr bench decode FILES...`: single-thread (per core) images/s of the floor (libjpeg-turbo
/// scaled decode alone), our decode + preprocess, and cache reads. scripts/bench/decode.sh
/// runs MONAI's pipeline on the same files in the same call and prints the ratios.
struct BenchDecode: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "decode", abstract: "Images/s per core: scaled JPEG decode alone, decode+preprocess, cache read.")
  @Argument(help: "Image files.") var files: [String]
  @Option(help: "Side of the square model input.") var size = 512
  @Flag(help: "Histogram-equalize (the study's MONAI pipeline does).") var equalize = false
  @Option(help: "Timed rounds over all files (the best is reported).") var rounds = 3
  @Option(help: "Write our preprocessed outputs (float32, [-1, 1]) here for an accuracy check.") var dump: String?

  func run() throws {
    let urls = files.map { URL(fileURLWithPath: $0) }
    let datas = try urls.map { try Data(contentsOf: $0) }
    let settings = PreprocessSettings(size: size, equalize: equalize)
    func best(_ body: () throws -> Void) rethrows -> Double {
      var b = Double.infinity
      for _ in 0..<rounds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        b = min(b, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
      }
      return b
    }
    // Floor: the scaled decode alone, from bytes already in memory.
    let floor = try best {
      for d in datas {
        let info = try JPEGDecoder.info(d)
        _ = try JPEGDecoder.decode(d, scaleNumerator: JPEGDecoder.scaleNumerator(longestSide: max(info.width, info.height), target: size))
      }
    }
    // Ours: read the file, decode, preprocess, scale to [-1, 1] (what the loader does per image).
    var out = [Float](repeating: 0, count: size * size)
    let ours = try best {
      for u in urls {
        let pre = Preprocess.apply(try ImageDecoder.load(u, targetLongestSide: size), settings)
        pre.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { Preprocess.scaleToModelRange(p, into: $0) } }
      }
    }
    if let dump {
      let dir = URL(fileURLWithPath: dump)
      try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
      for (i, u) in urls.enumerated() {
        let pre = Preprocess.apply(try ImageDecoder.load(u, targetLongestSide: size), settings).map { $0 / 255 * 2 - 1 }
        try pre.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("\(i).f32")) }
      }
    }
    // Cache read: build once, then read every image as the loader does (uint8 -> [-1, 1]).
    let cacheDir = FileManager.default.temporaryDirectory.appendingPathComponent("cxr-bench-cache-\(getpid())")
    defer { try? FileManager.default.removeItem(at: cacheDir) }
    try CacheBuilder.build(sources: urls, settings: settings, folder: cacheDir, workers: 1)
    guard let cache = try PreprocessedCache.open(cacheDir) else { throw ValidationError("cache build failed") }
    let reads = 200
    var sink: Float = 0
    let cacheTime = best {
      for k in 0..<reads {
        let px = cache.pixels(for: urls[k % urls.count])!
        for i in 0..<px.count { out[i] = Float(px[i]) / 255 * 2 - 1 }
        sink += out[k % out.count]
      }
    }
    let n = Double(urls.count)
    print(#"{"bench":"decode","impl":"floor","images_per_s":\#(String(format: "%.2f", n / floor)),"ms_per_image":\#(String(format: "%.2f", floor / n * 1000))}"#)
    print(#"{"bench":"decode","impl":"cxr","images_per_s":\#(String(format: "%.2f", n / ours)),"ms_per_image":\#(String(format: "%.2f", ours / n * 1000))}"#)
    print(#"{"bench":"decode","impl":"cxr-cache","images_per_s":\#(String(format: "%.1f", Double(reads) / cacheTime)),"ms_per_image":\#(String(format: "%.3f", cacheTime / Double(reads) * 1000)),"sink":\#(sink.isFinite ? 0 : 1)}"#)
  }
}
