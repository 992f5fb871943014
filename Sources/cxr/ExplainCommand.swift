import ArgumentParser
import Common
import Experiment
import Foundation
import Models
import Torch

struct ExplainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "explain",
    abstract: "Grad-CAM of a checkpoint's findings on one image: overlay PNGs, the map and a JSON record per finding.",
    discussion: """
      cxr explain --checkpoint W.safetensors --image FILE --out DIR [--finding NAME ...] [--device cpu]
      The image is preprocessed as cxr predict does with that checkpoint (its size and equalization, [-1, 1]). \
      Grad-CAM is taken at the last ConvNeXt stage (stages.3) for each finding's logit, in float32 (no autocast). \
      Per finding it writes <image>.<finding>.overlay.png (the preprocessed image with the map in viridis), \
      <image>.<finding>.cam.png (the normalized map, 16-bit) and <image>.<finding>.json (weights and SHA-256, \
      probability, layer, the map at the layer's resolution, its peak). DIR may exist; files already there are \
      never overwritten.
      """)
  @Option(help: "A cxr checkpoint (safetensors with cxr's metadata).") var checkpoint: String
  @Option(help: "A JPEG, PNG or DICOM file.") var image: String
  @Option(help: "The folder to write into (created if needed).") var out: String
  @Option(name: .customLong("finding"), help: "A finding to explain (repeatable; default: every finding of the checkpoint).")
  var findings: [String] = []
  @Option(help: "cpu, cuda or cuda:N.") var device = "cpu"

  func run() throws {
    let weights = URL(fileURLWithPath: checkpoint)
    guard FileManager.default.fileExists(atPath: weights.path) else {
      throw UserError("\(weights.path) does not exist; give the checkpoint (a .safetensors file) to explain with --checkpoint")
    }
    let imageURL = URL(fileURLWithPath: image)
    guard FileManager.default.fileExists(atPath: imageURL.path) else {
      throw UserError("\(imageURL.path) does not exist; give a JPEG, PNG or DICOM file with --image")
    }
    let loaded = try ConvNeXt.load(checkpoint: weights)
    guard loaded.input != nil else {
      throw UserError("\(weights.path) does not say how its images were preprocessed (no cxr input contract); explain needs a checkpoint written by cxr train")
    }
    var indices: [Int] = []
    for name in findings.isEmpty ? loaded.findings : findings {
      guard let i = loaded.findings.firstIndex(of: name) else {
        throw UserError("unknown finding '\(name)': \(weights.lastPathComponent) predicts \(loaded.findings.joined(separator: ", ")); give one of them with --finding")
      }
      if !indices.contains(i) { indices.append(i) }
    }
    var explain = Explain(preprocess: try PredictCommand.preprocess(contract: loaded.input, size: nil, equalize: nil, checkpoint: checkpoint))
    explain.device = try usableDevice(device)
    try loaded.model.to(explain.device)
    let stemName = Explain.fileSafe(imageURL.deletingPathExtension().lastPathComponent)
    let records = try explain.run(loaded, weights: weights, weightsSHA256: try SHA256.file(weights), image: imageURL,
                                  id: imageURL.deletingPathExtension().lastPathComponent, findings: indices,
                                  out: URL(fileURLWithPath: out), stem: { "\(stemName).\(Explain.fileSafe($0))" })
    for r in records {
      let peak = r.peak.map { "(\($0[0]), \($0[1]))" } ?? "none (flat map)"
      print("\(r.finding): p = \(String(format: "%.4f", r.probability)), peak at \(peak) -> \(URL(fileURLWithPath: out).appendingPathComponent(r.overlay).path)")
    }
  }
}
