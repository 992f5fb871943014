import ArgumentParser
import Synth
import Foundation

extension SynthSize: ExpressibleByArgument {}

struct SynthCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synth",
    abstract: "Make a synthetic chest X-ray study (MIMIC-CXR-JPG-like training set, label files, CANDID-PTX-like test set).",
    discussion: "Deterministic for a seed. OUT must be new, empty, or hold an earlier synthetic study (which is replaced). See OUT/README.txt.")

  @Argument(help: "Folder to write the study into.") var out: String
  @Option(help: "Seed; the same seed and size give byte-identical files.") var seed: UInt64 = 0
  @Option(help: "tiny (tests), small (the demo: about a thousand images) or medium (a few thousand).") var size: SynthSize = .small

  func run() throws {
    let start = Date()
    let paths = try SyntheticStudy.generate(to: URL(fileURLWithPath: out), seed: seed, size: size)
    print("synthetic study (\(size.rawValue), seed \(seed)) in \(paths.root.path): " +
          "\(paths.mimicImages.count) training images, \(paths.candidImages.count) test images, " +
          "schemas \(SyntheticStudy.schemas.map(\.name).joined(separator: ", ")) " +
          String(format: "(%.1f s)", Date().timeIntervalSince(start)))
    print("see \(paths.readme.path)")
  }
}
