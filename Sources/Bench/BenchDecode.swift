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
    // Per image, the fastest of `rounds` runs, in process CPU time: "per core" cost, and far
    // less disturbed than wall time when other jobs share the machine.
    func best(_ count: Int, _ body: (Int) throws -> Void) rethrows -> [Double] {
      try (0..<count).map { i in
        var b = Double.infinity
        for _ in 0..<rounds {
          let t0 = cpuMilliseconds()
          try body(i)
          b = min(b, cpuMilliseconds() - t0)
        }
        return b
      }
    }
    // Floor: the scaled decode alone, from bytes already in memory.
    let floor = try best(datas.count) { k in
      let info = try JPEGDecoder.info(datas[k])
      let scale = JPEGDecoder.scaleNumerator(longestSide: max(info.width, info.height), target: size)
      _ = try JPEGDecoder.decode(datas[k], scaleNumerator: scale)
    }
    // Ours: read the file, decode, preprocess, scale to [-1, 1] (what the loader does per image).
    var out = [Float](repeating: 0, count: size * size)
    let ours = try best(urls.count) { k in
      let pre = Preprocess.apply(try ImageDecoder.load(urls[k], targetLongestSide: size), settings)
      pre.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { Preprocess.scaleToModelRange(p, into: $0) } }
    }
    // Where the time beyond the decode goes (per image, fastest of `rounds`).
    let tRead = try best(urls.count) { k in _ = try Data(contentsOf: urls[k]) }
    let tLoad = try best(urls.count) { k in _ = try ImageDecoder.load(urls[k], targetLongestSide: size) }
    let sources = try urls.map { try ImageDecoder.load($0, targetLongestSide: size) }
    var resized: [[Float]] = []
    let tResize = best(sources.count) { k in
      let src = sources[k]
      let t = Preprocess.resizedSize(width: src.originalWidth, height: src.originalHeight, longest: size)
      let r = Preprocess.resizeArea(src.pixels, width: t.width, height: t.height)
      if resized.count <= k { resized.append(r) }
    }
    var padded: [[Float]] = []
    let tPad = best(sources.count) { k in
      let t = Preprocess.resizedSize(width: sources[k].originalWidth, height: sources[k].originalHeight, longest: size)
      let p = Preprocess.padCenter(resized[k], width: t.width, height: t.height, size: size).values
      if padded.count <= k { padded.append(p) }
    }
    let tEq = best(sources.count) { k in
      var v = padded[k]
      Preprocess.equalizeHistogram(&v)
    }
    let tScale = best(sources.count) { k in
      padded[k].withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { Preprocess.scaleToModelRange(p, into: $0) } }
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
    let reads = 100
    var sink: Float = 0
    let cacheTime = best(reads) { k in
      let px = cache.pixels(for: urls[k % urls.count])!
      for i in 0..<px.count { out[i] = Float(px[i]) / 255 * 2 - 1 }
      sink += out[k % out.count]
    }
    // One JSON line per measurement (per-image milliseconds), read by scripts/bench/decode_monai.py.
    func line(_ impl: String, _ ms: [Double]) -> String {
      #"{"bench":"decode","impl":"\#(impl)","ms":[\#(ms.map { String(format: "%.3f", $0) }.joined(separator: ","))]}"#
    }
    print(line("floor", floor))
    print(line("cxr", ours))
    print(line("cxr-cache", [cacheTime.reduce(0, +) / Double(reads)]))
    print(line("stage-read", tRead))
    print(line("stage-load", tLoad))
    print(line("stage-resize", tResize))
    print(line("stage-pad", tPad))
    print(line("stage-equalize", tEq))
    print(line("stage-scale", tScale))
    if !sink.isFinite { print("non-finite output") }
  }
}

/// CPU time of this process (all threads), in milliseconds.
func cpuMilliseconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
  return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}
