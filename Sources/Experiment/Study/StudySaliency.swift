import Common
import Data
import Evaluate
import Foundation
import Models
import Torch

/// What the `explain:<schema>` stage wrote: `<schema>/saliency/manifest.json` beside the PNGs.
public struct SaliencyManifest: Codable, Equatable, Sendable {
  public static let fileName = "manifest.json"
  public var tool = "cxr run: explain"
  public var schema: String
  public var weights: String
  public var weightsSHA256: String
  public var predictions: String
  public var reference: String
  public var top: Int
  public var layer: String
  public var figures: [Saliency.Figure]

  enum CodingKeys: String, CodingKey {
    case tool, schema, weights, weightsSHA256 = "weights_sha256", predictions, reference, top, layer, figures
  }
}

extension StudyRun {
  func saliencyFolder(_ schema: String) -> URL { study.schemaFolder(schema).appendingPathComponent("saliency") }
  func saliencyManifestURL(_ schema: String) -> URL { saliencyFolder(schema).appendingPathComponent(SaliencyManifest.fileName) }
  var saliencyTop: Int { study.settings.evaluate.saliency.top }

  /// The test set's own labels (CANDID-PTX: an image is positive when it has a mask), or nil.
  func ownReference(index: DatasetIndex) throws -> ReferenceLabels? {
    guard let builtIn = index.builtInLabels, study.findings.contains(where: builtIn.findings.contains) else { return nil }
    return try reference(name: index.name.lowercased().contains("candid") ? "masks" : "\(index.name) labels",
                         source: "\(index.name) labels", labelling: Labelling(index: index, table: builtIn), policy: .ones)
  }

  /// Grad-CAM overlays of one schema's classifier for the top `evaluate.saliency.top` true
  /// positives, false positives and false negatives of each finding (chosen from its test
  /// predictions against the test set's own reference), with the weights and preprocessing of
  /// its predictions, into `<schema>/saliency/`. A folder left by an earlier run of this stage
  /// (other inputs) is moved aside, never deleted.
  public func explain(schema: String) throws {
    guard let index = try study.testIndex() else {
      throw ConfigError("\(study.config.source): test_data.kind is none; there is nothing to explain")
    }
    let folder = saliencyFolder(schema)
    if FileManager.default.fileExists(atPath: folder.path) {
      let aside = try AtomicFile.moveAside(folder)
      log("[explain:\(schema)] an earlier saliency folder was moved aside to \(aside.path)")
    }
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let ckpt = try SchemaTraining(study: study, schema: schema)
      .checkpoint(weights: study.settings.predict.weights.rawValue, note: { log("[explain:\(schema)] \($0)") })
    let loaded = try ConvNeXt.load(checkpoint: ckpt)
    var explain = Explain(preprocess: try study.preprocessTest)
    explain.device = study.device
    try loaded.model.to(explain.device)
    let sha = try SHA256.file(ckpt)
    var manifest = SaliencyManifest(schema: schema, weights: ckpt.path, weightsSHA256: sha, predictions: predictionsURL(schema).path,
                                    reference: "none", top: saliencyTop, layer: GradCAM.layer, figures: [])
    if let ref = try ownReference(index: index) {
      manifest.reference = ref.name
      let preds = try Predictions.read(name: schema, url: predictionsURL(schema), findings: study.findings)
      let pathOf = Dictionary(index.records.map { ($0.id, $0.path) }, uniquingKeysWith: { a, _ in a })
      for finding in study.findings where ref.findings.contains(finding) {
        guard let k = loaded.findings.firstIndex(of: finding) else { continue }
        for pick in Saliency.select(preds, reference: ref, finding: finding, top: saliencyTop) {
          guard let path = pathOf[pick.id] else { continue }
          let stem = "\(Explain.fileSafe(finding)).\(pick.kind.rawValue)\(pick.rank).\(Explain.fileSafe(pick.id))"
          let r = try explain.run(loaded, weights: ckpt, weightsSHA256: sha, image: URL(fileURLWithPath: path), id: pick.id,
                                  findings: [k], out: folder, stem: { _ in stem })
          manifest.figures.append(Saliency.Figure(model: schema, weights: ckpt.path, weightsSHA256: sha, finding: finding, pick: pick,
                                                  referenceName: ref.name, layer: GradCAM.layer, overlay: r[0].overlay, peak: r[0].peak))
        }
      }
    } else {
      log("[explain:\(schema)] the test set has no labels of its own: no true/false positives to explain")
    }
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(try enc.encode(manifest), to: saliencyManifestURL(schema))
    log("[explain:\(schema)] \(manifest.figures.count) Grad-CAM overlay(s) -> \(folder.path)")
  }

  /// Every schema's saliency figures (with their PNG bytes) for the evaluation report; none when
  /// `evaluate.saliency.top` is 0.
  func saliencyFigures() throws -> [Saliency.Figure] {
    guard saliencyTop > 0 else { return [] }
    var out: [Saliency.Figure] = []
    for schema in study.schemaNames {
      let url = saliencyManifestURL(schema)
      guard let data = try? Data(contentsOf: url) else { continue }
      let manifest: SaliencyManifest
      do { manifest = try JSONDecoder().decode(SaliencyManifest.self, from: data) } catch {
        throw FileError("\(url.path) is not a saliency manifest cxr can read (\(error)); run cxr run --force explain:\(schema)")
      }
      for var f in manifest.figures {
        f.png = try? Data(contentsOf: saliencyFolder(schema).appendingPathComponent(f.overlay))
        out.append(f)
      }
    }
    return out
  }
}
