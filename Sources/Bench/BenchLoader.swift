import ArgumentParser
import Common
import Data
import Foundation

/// `cxr bench loader DIR`: images/s that cxr's parallel DataLoader (decode, resize, pad, scale to
/// [-1, 1]; pinned batches when CUDA is available) delivers from the JPEGs under DIR, with the
/// training loader's settings (shuffled, seed 0, last batch kept), WORKERS threads decoding at
/// once, PREFETCH batches ahead per worker. Epochs repeat as needed.
///
/// What is timed (the same in scripts/bench/gpu_loader.py, the PyTorch counterpart): the first
/// WORKERS batches are untimed, one per worker (start-up and a first decode each); the clock starts
/// when the last of them arrives, so every worker is up and busy with its next batch, and stops
/// when BATCHES more batches have arrived; images/s counts those batches' images. (The
/// clock used to start at the first batch, when the other workers' first batches were nearly
/// done: up to WORKERS-1 of the timed batches came almost free. Starting it one batch later than
/// here would do the same with the second round.) gpu_loader.py also flips at random, which cxr
/// does on the device instead.
struct BenchLoader: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "loader", abstract: "Images/s of cxr's data loader on JPEG files (the GPU benchmark's cxr side; prints one JSON line).")
  @Argument(help: "A folder searched recursively for .jpg/.jpeg files (e.g. the mimic/ folder of `cxr synth`).") var dir: String
  @Option(help: "Side of the square model input.") var size = 512
  @Option(help: "Images per batch.") var batch = 32
  @Option(help: "Timed batches.") var batches = 40
  @Option(help: "Decoding threads (0 = all cores).") var workers = 0
  @Option(help: "Batches decoded ahead per worker (PyTorch's prefetch_factor).") var prefetch = LoaderOptions().prefetch
  @Flag(help: "Histogram-equalize (for sources that were not equalized).") var equalize = false

  func validate() throws {
    if batch < 1 || batches < 1 || prefetch < 1 { throw ValidationError("--batch, --batches and --prefetch must be at least 1") }
    if size < 1 { throw ValidationError("--size must be at least 1") }
  }

  func run() throws {
    let folder = URL(fileURLWithPath: dir)
    let files = try ImageFiles.find(under: folder, extensions: ["jpg", "jpeg"])
    guard !files.isEmpty else { throw FileError("\(folder.path) holds no .jpg or .jpeg files (searched recursively)") }
    let options = LoaderOptions(batchSize: batch, preprocess: PreprocessSettings(size: size, equalize: equalize),
                                workers: LoaderOptions.workers(workers), prefetch: prefetch, shuffle: true, seed: 0)
    let loader = try DataLoader(items: files.map { LoaderItem(id: $0.path, path: $0, targets: [0, 0]) }, options: options)

    let untimed = options.workers  // one batch per worker; see the header
    var delivered = 0, images = 0, epochs = 0
    var t0: UInt64?
    timing: while true {
      let it = loader.epoch(epochs)
      epochs += 1
      var any = false
      while let b = try it.next() {
        any = true
        delivered += 1
        if delivered == untimed {
          t0 = DispatchTime.now().uptimeNanoseconds  // every worker has delivered a batch
        } else if delivered > untimed {
          images += b.ids.count
        }
        if delivered >= untimed + batches { it.cancel(); break timing }
      }
      guard any else {
        let e = loader.badFiles.all.first.map { "\($0.path): \($0.reason)" } ?? files[0].path
        throw FileError("none of the \(files.count) JPEGs under \(folder.path) could be read, e.g. \(e)")
      }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0!) / 1e9
    try printJSONLine(LoaderRecord(size: size, batch: batch, batches: batches, workers: options.workers,
                                   prefetch: prefetch, untimedBatches: untimed, files: files.count, epochs: epochs,
                                   images: images, unreadable: loader.badFiles.all.count,
                                   imagesPerS: imagesPerSecond(images, seconds)))
  }
}

/// `cxr bench loader`'s line (scripts/bench/gpu_loader.py prints the PyTorch side's alike).
struct LoaderRecord: Codable {
  var bench = "loader", impl = "cxr"
  var size: Int, batch: Int, batches: Int, workers: Int, prefetch: Int, untimedBatches: Int, files: Int
  var epochs: Int, images: Int, unreadable: Int, imagesPerS: Double
  enum CodingKeys: String, CodingKey {
    case bench, impl, size, batch, batches, workers, prefetch, untimedBatches = "untimed_batches", files, epochs, images
    case unreadable, imagesPerS = "images_per_s"
  }
}
