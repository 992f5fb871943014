import Foundation
import TestSupport
import XCTest

/// What a checkpoint carries and what cxr checks before it starts, through the binary: the
/// input contract (`cxr predict --checkpoint` alone gives `cxr run`'s predictions), the timm
/// export, the preflight that lists every problem before writing anything, and outputs that
/// are never a folder or a file cxr did not write.
final class ContractCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-contract") }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }
  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }

  var data: URL { dir.appendingPathComponent("data") }

  func config(_ body: String = "", schemas: String? = nil) throws -> URL {
    if !FileManager.default.fileExists(atPath: data.path) {
      let s = try cxr(["synth", data.path, "--size", "tiny", "--seed", "3"])
      XCTAssertEqual(s.status, 0, s.err)
    }
    let text = """
      name: mini
      out: \(dir.appendingPathComponent("runs").path)
      seed: 1
      device: cpu
      threads: 1
      findings: [Pneumothorax, Fracture]
      train_data: {kind: mimic, root: \(data.path)/mimic}
      test_data: {kind: candid, root: \(data.path)/candid}
      schemas:
      \(schemas ?? "  - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}")
      split: {stratify: true}          # both classes in the tiny tuning split, so best.safetensors exists
      preprocess: {size: 64}
      model: {arch: convnext_atto, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], layer_scale_init: 1.0}
      loader: {batch_size: 8, workers: 1}
      train: {epochs: 1, lr: 1.0e-3, augment: {mix: 0, affine: 0}}
      evaluate: {bootstrap: 20}
      \(body)
      """
    let url = dir.appendingPathComponent("c\(UUID().uuidString.prefix(6)).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  func rows(_ url: URL) throws -> [String] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
  }

  func testPredictWithTheCheckpointAloneReproducesTheRunAndTimmLoadsTheExport() throws {
    let run = try cxr(["run", try config().path])
    XCTAssertEqual(run.status, 0, run.err)
    let folder = dir.appendingPathComponent("runs/mini/truth")
    let best = folder.appendingPathComponent("best.safetensors")
    // The tuning split's predictions of the best weights and its labels, where the operating
    // points were chosen: exactly the split's tuning images, labelled as the schema says (U-ones,
    // blank -> 0), and the evaluation's tuned rows name that split.
    let split = try rows(folder.appendingPathComponent("split.csv")).dropFirst().map { $0.split(separator: ",").map(String.init) }
    let tuneIDs = split.filter { $0.last == "tune" }.map { $0[0] }
    let tunePredictions = try rows(folder.appendingPathComponent("tune_predictions.csv"))
    XCTAssertEqual(tunePredictions.first, "id,path,Pneumothorax,Fracture")
    XCTAssertEqual(Set(tunePredictions.dropFirst().map { String($0.split(separator: ",")[0]) }), Set(tuneIDs))
    XCTAssertTrue(try String(contentsOf: folder.appendingPathComponent("tune_predictions.csv"), encoding: .utf8)
      .contains("# weights: \(best.path)\n"))
    let labelRows = try rows(data.appendingPathComponent("labels/mimic/synthetic-truth.csv"))
      .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    let col = Dictionary(uniqueKeysWithValues: labelRows[0].enumerated().map { ($1, $0) })
    let studyOf = Dictionary(uniqueKeysWithValues: split.map { ($0[0], $0[2]) })
    let tuneLabels = try rows(folder.appendingPathComponent("tune_labels.csv"))
    XCTAssertEqual(tuneLabels.first, "id,Pneumothorax,Fracture")
    XCTAssertEqual(tuneLabels.count - 1, tuneIDs.count)
    for line in tuneLabels.dropFirst() {
      let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      let row = try XCTUnwrap(labelRows.first { $0[col["study_id"]!] == studyOf[f[0]] })
      for (j, finding) in ["Pneumothorax", "Fracture"].enumerated() {
        let v = Double(row[col[finding]!]) ?? 0   // blank -> negative; -1 (uncertain) -> positive (U-ones)
        XCTAssertEqual(f[j + 1], v != 0 ? "1" : "0", "\(f[0]) \(finding)")
      }
    }
    let points = try rows(dir.appendingPathComponent("runs/mini/evaluation/operating_points.csv"))
    XCTAssertTrue(points.contains { $0.hasPrefix("truth,masks,Pneumothorax,youden,tune,") }, points.joined(separator: "\n"))
    let candid = data.appendingPathComponent("candid")
    // No --size, no --equalize: the 64-px, equalized pipeline comes from the checkpoint.
    let out = dir.appendingPathComponent("alone.csv")
    let alone = try cxr(["predict", "--checkpoint", best.path, "--input", candid.path, "--out", out.path, "--workers", "1"])
    XCTAssertEqual(alone.status, 0, alone.err)
    let ours = try rows(out).dropFirst().map { $0.split(separator: ",").dropFirst(2).joined(separator: ",") }
    let theirs = try rows(folder.appendingPathComponent("predictions.csv")).dropFirst().map { $0.split(separator: ",").dropFirst(2).joined(separator: ",") }
    XCTAssertEqual(ours.sorted(), theirs.sorted())
    XCTAssertFalse(ours.isEmpty)
    // Flags that contradict the contract are errors naming both values.
    let wrongSize = try cxr(["predict", "--checkpoint", best.path, "--input", candid.path, "--out", dir.appendingPathComponent("x.csv").path, "--size", "512"])
    XCTAssertEqual(wrongSize.status, 64)
    XCTAssertTrue(wrongSize.err.contains("--size 512 contradicts \(best.path), which was trained at size 64; drop --size"), wrongSize.err)
    let wrongEq = try cxr(["predict", "--checkpoint", best.path, "--input", candid.path, "--out", dir.appendingPathComponent("x.csv").path, "--no-equalize"])
    XCTAssertTrue(wrongEq.err.contains("--no-equalize contradicts \(best.path), which was trained on equalized images; drop the flag"), wrongEq.err)
    // An --out that is a folder: an error, and the folder and its contents stay.
    let keep = dir.appendingPathComponent("keep")
    try FileManager.default.createDirectory(at: keep, withIntermediateDirectories: true)
    try Data("mine".utf8).write(to: keep.appendingPathComponent("notes.txt"))
    let onFolder = try cxr(["predict", "--checkpoint", best.path, "--input", candid.path, "--out", keep.path])
    XCTAssertEqual(onFolder.status, 1)
    XCTAssertTrue(onFolder.err.contains("\(keep.path) is a folder; predictions are written to a CSV file"), onFolder.err)
    XCTAssertEqual(try String(contentsOf: keep.appendingPathComponent("notes.txt"), encoding: .utf8), "mine")

    // cxr evaluate on its own: with the config, the run's evaluation exactly; with files, a
    // CheXpert-layout label file (subject_id,study_id) as a reference, keyed by study id.
    let cfgPath = try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".yaml") }!
    let again = dir.appendingPathComponent("again")
    let ev = try cxr(["evaluate", "--config", dir.appendingPathComponent(cfgPath).path, "--out", again.path])
    XCTAssertEqual(ev.status, 0, ev.err)
    let runMetrics = try String(contentsOf: dir.appendingPathComponent("runs/mini/evaluation/metrics.csv"), encoding: .utf8)
    XCTAssertEqual(try String(contentsOf: again.appendingPathComponent("metrics.csv"), encoding: .utf8), runMetrics)
    let direct = dir.appendingPathComponent("direct")
    let d = try cxr(["evaluate", "--predictions", "truth=\(folder.path)/predictions.csv",
                     "--reference", "truth=\(data.path)/labels/candid/synthetic-truth.csv", "--findings", "Pneumothorax,Fracture",
                     "--bootstrap", "0", "--out", direct.path])
    XCTAssertEqual(d.status, 0, d.err)
    func auroc(_ text: String, _ finding: String) -> String? {
      text.split(separator: "\n").first { $0.hasPrefix("truth,truth,\(finding),auroc,") }.map { String($0.split(separator: ",")[4]) }
    }
    let directMetrics = try String(contentsOf: direct.appendingPathComponent("metrics.csv"), encoding: .utf8)
    for f in ["Pneumothorax", "Fracture"] {
      XCTAssertNotNil(auroc(runMetrics, f), runMetrics)
      XCTAssertEqual(auroc(directMetrics, f), auroc(runMetrics, f), f)
    }

    // timm loads the export as it is and gives cxr's probabilities on the same preprocessed input.
    let export = dir.appendingPathComponent("timm")
    let e = try cxr(["export", best.path, "--out", export.path])
    XCTAssertEqual(e.status, 0, e.err)
    let twice = try cxr(["export", best.path, "--out", export.path])
    XCTAssertEqual(twice.status, 1)
    XCTAssertTrue(twice.err.contains("exists and is not an empty folder"), twice.err)
    let image = try FileManager.default.contentsOfDirectory(atPath: candid.path).first { $0.hasSuffix(".dcm") }
      ?? FileManager.default.subpaths(atPath: candid.path)!.first { $0.hasSuffix(".dcm") }!
    let pngs = dir.appendingPathComponent("pngs")
    try FileManager.default.createDirectory(at: pngs, withIntermediateDirectories: true)
    let png = pngs.appendingPathComponent("one.png")
    let inspect = try cxr(["inspect", "image", candid.appendingPathComponent(image).path, "--size", "64", "--equalize", "--out", png.path])
    XCTAssertEqual(inspect.status, 0, inspect.err + inspect.out)
    // cxr predicts the 64-px PNG with the checkpoint's pipeline (equalized again: a PNG is a raw input).
    let onePred = dir.appendingPathComponent("one.csv")
    let p = try cxr(["predict", "--checkpoint", best.path, "--input", pngs.path, "--out", onePred.path, "--workers", "1"])
    XCTAssertEqual(p.status, 0, p.err)
    let cxrP = try rows(onePred)[1].split(separator: ",").dropFirst(2).map { Double($0)! }
    // timm, from the exported folder alone, on MONAI's version of the same preprocessing.
    let result = try Python.json("""
      import json, sys, numpy as np, torch, timm
      from PIL import Image
      from monai.transforms import HistogramNormalize, ScaleIntensityRange
      folder, png = sys.argv[1], sys.argv[2]
      cfg = json.load(open(folder + '/config.json'))
      # The Hugging Face layout as timm reads it from a folder, and the explicit recipe.
      hub = timm.create_model('local-dir:' + folder, pretrained=True).eval()
      explicit = timm.create_model(cfg['architecture'], pretrained=True, num_classes=cfg['num_classes'],
                                   pretrained_cfg_overlay=dict(cfg['pretrained_cfg'], file=folder + '/model.safetensors'),
                                   **cfg['model_args']).eval()
      x = torch.from_numpy(np.asarray(Image.open(png).convert('L'), dtype=np.float32))[None]
      x = torch.as_tensor(ScaleIntensityRange(0, 255, -1, 1)(HistogramNormalize(num_bins=256, min=0, max=255)(x)))[None].float()
      with torch.no_grad():
          p = torch.sigmoid(hub(x))[0].tolist()
          q = torch.sigmoid(explicit(x))[0].tolist()
      assert p == q, (p, q)
      print(json.dumps({'p': p, 'labels': cfg['label_names'], 'size': list(hub.pretrained_cfg['input_size']),
                        'mean': cfg['pretrained_cfg']['mean'], 'std': cfg['pretrained_cfg']['std']}))
      """, args: [export.path, png.path]) as! [String: Any]
    XCTAssertEqual(result["labels"] as? [String], ["Pneumothorax", "Fracture"])
    XCTAssertEqual(result["size"] as? [Int], [1, 64, 64])
    XCTAssertEqual(result["mean"] as? [Double], [0.5])
    XCTAssertEqual(result["std"] as? [Double], [0.5])
    let timmP = try XCTUnwrap(result["p"] as? [Double])
    XCTAssertEqual(timmP.count, 2)
    for (a, b) in zip(cxrP, timmP) { XCTAssertEqual(a, b, accuracy: 2e-6, "cxr \(cxrP) vs timm \(timmP)") }
  }

  /// Every problem the config can be known to have, at once, before anything is written.
  func testPreflightListsEveryProblemBeforeWritingAnything() throws {
    let noFracture = dir.appendingPathComponent("nofracture.csv")
    let cfg = try config("", schemas: """
        - {name: truth, file: \(data.path)/labels/mimic/synthetic-truth.csv, test_file: \(data.path)/labels/candid/synthetic-truth.csv}
        - {name: truth, file: \(data.path)/labels/mimic/synthetic-rule.csv}
        - {name: odd, file: \(noFracture.path)}
        - {name: todo, file: FILL/labels/llm.csv}
      """)
    try "subject_id,study_id,Pneumothorax\n1,2,1.0\n".write(to: noFracture, atomically: true, encoding: .utf8)
    var text = try String(contentsOf: cfg, encoding: .utf8)
    text = text.replacingOccurrences(of: "findings: [Pneumothorax, Fracture]", with: "findings: [Pneumothorax, Fracture, Pneumothorax]")
      .replacingOccurrences(of: "test_data: {kind: candid, root: \(data.path)/candid}", with: "test_data: {kind: candid, root: \(data.path)/no-candid}")
      .replacingOccurrences(of: "preprocess: {size: 64}", with: "preprocess: {size: 0}")
      .replacingOccurrences(of: "model: {arch: convnext_atto,", with: "model: {arch: convnext_huge, pretrained: timm/convnext_base.fb_in22k,")
    try text.write(to: cfg, atomically: true, encoding: .utf8)
    let r = try cxr(["run", cfg.path, "--force", "trian", "--retrain", "nosuch"])
    XCTAssertEqual(r.status, 1, r.out)
    let expected = [
      "problems found before anything was run or written:",
      "test_data.root: \(data.path)/no-candid does not exist; give the CANDID-PTX folder",
      // Relative paths are relative to where cxr runs, so a hub tag becomes a missing local file.
      "/timm/convnext_base.fb_in22k does not exist; give a safetensors file of pretrained weights (cxr reads local files only",
      "findings lists 'Pneumothorax' 2 times; each finding once",
      "two schemas are named 'truth'; each schema needs its own name",
      "--retrain nosuch: no schema has that name (schemas: truth, truth, odd, todo; or all)",
      "--force trian: no stage has that name (stages: train:truth, predict:truth,",
      "preprocess.size is 0; it must lie in 32...4096 (ConvNeXt downsamples by 32)",
      "model: unknown ConvNeXt architecture 'convnext_huge': use one of convnext_atto,",
      "schemas[3].file is not filled in ('",
      "schemas[2].file: \(noFracture.path) has no column for finding 'Fracture'",
    ]
    for e in expected { XCTAssertTrue(r.err.contains(e), "missing: \(e)\n\(r.err)") }
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path), "nothing written")
    // cxr config resolve --check runs the same checks; without --check it only resolves.
    let check = try cxr(["config", "resolve", cfg.path, "--check"])
    XCTAssertEqual(check.status, 1)
    for e in expected.dropFirst().filter({ !$0.hasPrefix("--") }) { XCTAssertTrue(check.err.contains(e), "missing: \(e)\n\(check.err)") }
    XCTAssertEqual(try cxr(["config", "resolve", cfg.path]).status, 0)
    // cxr train too, for its schema.
    let train = try cxr(["train", cfg.path, "--schema", "odd"])
    XCTAssertEqual(train.status, 1)
    XCTAssertTrue(train.err.contains("preprocess.size is 0"), train.err)
  }

  /// A safetensors header whose shape overflows a 64-bit byte count is an error naming the file
  /// and the tensor, in every build (checked arithmetic, not wrapping under -Ounchecked).
  func testOverflowingSafetensorsShapeNamesFileAndTensor() throws {
    let header = #"{"stem.0.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#
    var bytes = Data()
    var n = UInt64(header.utf8.count).littleEndian
    withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
    bytes.append(Data(header.utf8))
    bytes.append(Data(count: 16))
    let file = dir.appendingPathComponent("huge.safetensors")
    try bytes.write(to: file)
    let r = try cxr(["export", file.path, "--out", dir.appendingPathComponent("out").path])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.err.contains("\(file.path) is not a valid safetensors file: entry 'stem.0.weight' has shape [4294967296, 4294967296], whose size in bytes overflows a 64-bit count"), r.err + r.out)
  }
}
