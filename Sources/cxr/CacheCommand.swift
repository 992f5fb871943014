import ArgumentParser
import Data
import Foundation

/// `cxr cache MANIFEST`: preprocess every image once into a memory-mapped cache that the
/// loader reads instead of decoding (rebuilt when the sources or settings change).
struct CacheCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cache",
    abstract: "Preprocess all images of a manifest once into a memory-mapped uint8 cache.")
  @Argument(help: "CSV with a `path` column (relative paths are taken from the CSV's folder).") var manifest: String
  @Option(help: "Side of the square model input.") var size = 512
  @Flag(help: "Histogram-equalize (as the dataset's config asks).") var equalize = false
  @Option(help: "Decoding threads.") var workers = ProcessInfo.processInfo.activeProcessorCount
  @Option(help: "Cache folder (images.u8, index.json, bad_files.csv).") var out: String

  func validate() throws {
    guard size > 0 else { throw ValidationError("--size must be positive (got \(size))") }
    guard workers > 0 else { throw ValidationError("--workers must be positive (got \(workers))") }
  }

  func run() throws {
    let sources = try CacheManifest.read(URL(fileURLWithPath: manifest))
    var lastPrint = Date()
    let report = try CacheBuilder.build(
      sources: sources, settings: PreprocessSettings(size: size, equalize: equalize),
      folder: URL(fileURLWithPath: out), workers: workers
    ) { done, total in
      if Date().timeIntervalSince(lastPrint) > 2 || done == total {
        lastPrint = Date()
        FileHandle.standardError.write(Data("\rcached \(done)/\(total)".utf8))
      }
    }
    if report.rebuilt { FileHandle.standardError.write(Data("\n".utf8)) }
    print(report.rebuilt
      ? String(format: "cache written to %@: %d images (%d reused), %d bad, %.1f s", out, report.images, report.reused, report.bad.count, report.seconds)
      : "cache in \(out) is up to date: \(report.images) images, \(report.bad.count) bad")
    if !report.bad.isEmpty { print("unreadable images are listed in \(out)/bad_files.csv") }
  }
}
