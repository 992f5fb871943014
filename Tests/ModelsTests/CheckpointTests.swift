import Foundation
@testable import Models
import TestSupport
import Torch
import XCTest

final class CheckpointTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-ckpt") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  /// A small model whose blocks matter (gamma well above its 1e-6 init), drawn from a seed.
  func smallModel(classes: Int = 2, inChans: Int = 1, seed: UInt64 = 5) throws -> ConvNeXt {
    let g = try Generator(seed: seed)
    let model = try ConvNeXt(try ConvNeXtConfig.named("convnext_atto", numClasses: classes, inChannels: inChans), generator: g)
    try withNoGrad {
      for (name, p) in model.namedParameters() where name.hasSuffix("gamma") || name.hasSuffix("bias") {
        try p.value.uniform_(0.2, 1.0, generator: g)
      }
    }
    return model
  }

  func testOurCheckpointLoadsInTimmStrictlyAndGivesTheSameOutputs() throws {
    let model = try smallModel()
    let file = dir.appendingPathComponent("ours.safetensors")
    try model.save(to: file, findings: ["Pneumothorax", "Fracture"])
    let x = try Tensor.randn([2, 1, 64, 64], generator: Generator(seed: 9))
    let y = try withNoGrad { try model(x) }
    let io = dir.appendingPathComponent("io.safetensors")
    try SafeTensors.write([("x", x), ("y", y)], to: io)
    let result = try Python.json("""
      import torch, timm, json, sys
      from safetensors import safe_open
      from safetensors.torch import load_file
      with safe_open(sys.argv[1], 'pt') as f:
          meta = f.metadata()
      sd = load_file(sys.argv[1])
      m = timm.create_model(meta['arch'], pretrained=False, num_classes=int(meta['num_classes']),
                            in_chans=int(meta['in_chans']))
      m.load_state_dict(sd, strict=True)
      m.eval()
      io = load_file(sys.argv[2])
      with torch.no_grad():
          y = m(io['x'])
      print(json.dumps({'diff': (y - io['y']).abs().max().item(), 'meta': meta}))
      """, args: [file.path, io.path]) as! [String: Any]
    XCTAssertLessThan(result["diff"] as! Double, 1e-4)
    let meta = result["meta"] as! [String: String]
    XCTAssertEqual(meta["arch"], "convnext_atto")
    XCTAssertEqual(meta["in_chans"], "1")
    XCTAssertEqual(meta["num_classes"], "2")
    XCTAssertEqual(meta["findings"], #"["Pneumothorax","Fracture"]"#)
    XCTAssertEqual(meta["format"], "pt")
    XCTAssertEqual(meta["config"], #"{"arch":"convnext_atto","conv_mlp":true,"depths":[2,2,6,2],"dims":[40,80,160,320],"drop_path_rate":0,"drop_rate":0,"head_init_scale":1,"in_chans":1,"ls_init_value":1e-06,"num_classes":2}"#)

    // And back in Swift from the metadata alone: same config, findings and outputs.
    let loaded = try ConvNeXt.load(checkpoint: file)
    XCTAssertEqual(loaded.model.config, model.config)
    XCTAssertEqual(loaded.findings, ["Pneumothorax", "Fracture"])
    XCTAssertEqual(loaded.adaptations, [])
    XCTAssertTrue(try withNoGrad { try loaded.model(x) }.equal(y))
  }

  /// Names, shapes and order of every size's state dict equal timm's (built on the meta device).
  func testParameterNamesAndShapesMatchTimmForEverySize() throws {
    let timm = try Python.json("""
      import torch, timm, json, sys
      out = {}
      for arch in sys.argv[1].split(','):
          with torch.device('meta'):
              m = timm.create_model(arch, pretrained=False, num_classes=5, in_chans=1)
          out[arch] = [[k, list(v.shape)] for k, v in m.state_dict().items()]
      print(json.dumps(out))
      """, args: [ConvNeXtConfig.architectures.joined(separator: ",")]) as! [String: [[Any]]]
    for arch in ConvNeXtConfig.architectures {
      let model = try ConvNeXt(uninitialized: try ConvNeXtConfig.named(arch, numClasses: 5, inChannels: 1))
      let ours = model.namedParameters().map { "\($0.0) \($0.1.value.shape)" }
      let theirs = timm[arch]!.map { "\($0[0] as! String) \(($0[1] as! [Int]))" }
      XCTAssertEqual(ours, theirs, arch)
    }
  }

  func testConvNeXtBaseHas88591464ParametersIn344Tensors() throws {
    let model = try ConvNeXt(uninitialized: try ConvNeXtConfig.named("convnext_base"))
    XCTAssertEqual(model.parameterCount, 88_591_464)
    XCTAssertEqual(model.namedParameters().count, 344)
    let summary = try ModelSummary(try ConvNeXtConfig.named("base"))
    XCTAssertEqual(summary.parameters, 88_591_464)
    XCTAssertEqual(summary.tensors, 344)
    XCTAssertEqual(summary.parts.map(\.name), ["stem", "stage 0", "stage 1", "stage 2", "stage 3", "head"])
    XCTAssertEqual(summary.parts.map(\.output), [[128, 56, 56], [128, 56, 56], [256, 28, 28], [512, 14, 14], [1024, 7, 7], [1000]])
    // stem: 128*3*4*4 + 128 + 2*128; head: 2*1024 + 1000*1024 + 1000.
    XCTAssertEqual(summary.parts.first?.parameters, 6_528)
    XCTAssertEqual(summary.parts.last?.parameters, 1_027_048)
    XCTAssertTrue(summary.text.hasPrefix("convnext_base: 88,591,464 parameters in 344 tensors\n"), summary.text)
  }

  func testInitializationFollowsTimm() throws {
    let model = try ConvNeXt(try ConvNeXtConfig.named("convnext_tiny", numClasses: 2), generator: Generator(seed: 1))
    let p = Dictionary(uniqueKeysWithValues: model.namedParameters())
    XCTAssertEqual(try p["stages.1.blocks.2.gamma"]!.value.toArray(Float.self), [Float](repeating: 1e-6, count: 192))
    XCTAssertEqual(try p["stages.1.blocks.2.mlp.fc1.bias"]!.value.abs().max().item(), 0)
    XCTAssertEqual(try p["head.norm.weight"]!.value.min().item(), 1)
    let w = p["stages.2.blocks.0.mlp.fc1.weight"]!.value   // 1536 x 384 draws
    XCTAssertEqual(try w.std().item(), 0.02, accuracy: 0.0005)
    XCTAssertEqual(try w.mean().item(), 0, accuracy: 0.0005)
    // Same seed, same weights.
    let again = try ConvNeXt(try ConvNeXtConfig.named("convnext_tiny", numClasses: 2), generator: Generator(seed: 1))
    XCTAssertTrue(try again.headFC.weight.value.equal(model.headFC.weight.value))
  }

  // MARK: strictness

  func write(_ state: StateDict, _ name: String, metadata: [String: String] = [:]) throws -> URL {
    let url = dir.appendingPathComponent(name)
    try SafeTensors.write(state, metadata: metadata, to: url)
    return url
  }

  func testMissingKeyIsNamed() throws {
    var sd = try smallModel().stateDict()
    sd["stages.1.blocks.0.gamma"] = nil
    let url = try write(sd, "missing.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url, arch: "atto", findings: ["a", "b"], inChans: 1)) { e in
      XCTAssertEqual("\(e)", "\(url.path): state dict does not match the model:\n  missing keys (1): stages.1.blocks.0.gamma")
    }
  }

  func testUnexpectedKeyIsNamed() throws {
    var sd = try smallModel().stateDict()
    sd["head.pre_logits.fc.weight"] = try Tensor.zeros([3])
    let url = try write(sd, "extra.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url, arch: "atto", findings: ["a", "b"], inChans: 1)) { e in
      XCTAssertEqual("\(e)", "\(url.path): state dict does not match the model:\n  unexpected keys (1): head.pre_logits.fc.weight")
    }
  }

  func testWrongShapeIsNamedAndAllProblemsAreListedTogether() throws {
    var sd = try smallModel().stateDict()
    sd["stages.2.blocks.1.mlp.fc1.weight"] = try Tensor.zeros([640, 160])
    sd["stem.1.bias"] = nil
    let url = try write(sd, "shape.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url, arch: "atto", findings: ["a", "b"], inChans: 1)) { e in
      XCTAssertEqual("\(e)", """
        \(url.path): state dict does not match the model:
          missing keys (1): stem.1.bias
          wrong shape for stages.2.blocks.1.mlp.fc1.weight: model has [640, 160, 1, 1], file has [640, 160]
        """)
    }
  }

  func testHeadOfAnotherSizeIsAnErrorUnlessResetIsAsked() throws {
    let url = dir.appendingPathComponent("imagenet.safetensors")
    try smallModel(classes: 10, inChans: 3).save(to: url, findings: findings(10))
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url, findings: ["a", "b"])) { e in
      XCTAssertEqual("\(e)", "\(url.path) was trained for findings f0,f1,f2,f3,f4,f5,f6,f7,f8,f9, not a,b; drop --findings or pick the right file")
    }
    // A plain timm file (no metadata) with 10 classes into a 2-finding grayscale model.
    let plain = try write(try smallModel(classes: 10, inChans: 3).stateDict(), "plain.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: plain, arch: "convnext_atto", findings: ["a", "b"], inChans: 1)) { e in
      XCTAssertEqual("\(e)", """
        \(plain.path): state dict does not match the model:
          wrong shape for head.fc.weight: model has [2, 320], file has [10, 320]
          wrong shape for head.fc.bias: model has [2], file has [10]
        """)
    }
    let loaded = try ConvNeXt.load(checkpoint: plain, arch: "convnext_atto", findings: ["a", "b"], inChans: 1,
                                   options: LoadOptions(resetMismatchedHead: true, generator: Generator(seed: 3)))
    XCTAssertEqual(loaded.adaptations, [
      "stem.0.weight: summed the file's 3 input channels into 1 (timm adapt_input_conv)",
      "head.fc: the file has 10 classes, the model 2: re-initialized (truncated normal std 0.02, zero bias)",
    ])
    XCTAssertEqual(try loaded.model.headFC.bias.value.abs().max().item(), 0)
    XCTAssertEqual(try loaded.model.headFC.weight.value.std().item(), 0.02, accuracy: 0.003)
    let original = try SafeTensors.read(plain).tensors
    XCTAssertTrue(try loaded.model.stemNorm.weight.value.equal(original["stem.1.weight"]!))

    // A backbone without a classifier gets a new one too.
    var backbone = try smallModel(inChans: 1).stateDict()
    backbone["head.fc.weight"] = nil
    backbone["head.fc.bias"] = nil
    let headless = try write(backbone, "backbone.safetensors")
    let fromBackbone = try ConvNeXt.load(checkpoint: headless, arch: "atto", findings: ["a", "b", "c"],
                                         options: LoadOptions(resetMismatchedHead: true))
    XCTAssertEqual(fromBackbone.adaptations, ["head.fc: the file has no classifier: re-initialized (truncated normal std 0.02, zero bias)"])
    XCTAssertEqual(fromBackbone.model.headFC.weight.value.shape, [3, 320])
  }

  func testMetadataAndArgumentsMustAgree() throws {
    let url = dir.appendingPathComponent("ours.safetensors")
    try smallModel().save(to: url, findings: ["Pneumothorax", "Fracture"])
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url, arch: "convnext_tiny")) { e in
      XCTAssertEqual("\(e)", "\(url.path) holds a convnext_atto (its metadata says so), not a convnext_tiny; drop --arch or pick the right file")
    }
    XCTAssertNoThrow(try ConvNeXt.load(checkpoint: url, arch: "atto", findings: ["Pneumothorax", "Fracture"]))
    let plain = try write(try smallModel().stateDict(), "plain.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: plain, findings: ["a", "b"])) { e in
      XCTAssertEqual("\(e)", "\(plain.path) has no cxr metadata: pass the architecture (--arch, one of convnext_atto, convnext_femto, convnext_pico, convnext_nano, convnext_tiny, convnext_small, convnext_base, convnext_large)")
    }
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: plain, arch: "atto")) { e in
      XCTAssertEqual("\(e)", "\(plain.path) has no cxr metadata: pass the finding names (--findings A,B), one per model output")
    }
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: plain, arch: "atto", findings: ["a", "a"])) { e in
      XCTAssertEqual("\(e)", "findings must be distinct, non-empty names; got 'a,a'")
    }
    // Without --in-chans a plain file's stem says how many input channels the model has.
    XCTAssertEqual(try ConvNeXt.load(checkpoint: plain, arch: "atto", findings: ["a", "b"]).model.config.inChannels, 1)
  }

  func testMalformedMetadataIsNamed() throws {
    let sd = try smallModel().stateDict()
    let url = try write(sd, "bad.safetensors", metadata: ["arch": "convnext_atto", "findings": "Pneumothorax"])
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: url)) { e in
      XCTAssertEqual("\(e)", "\(url.path): metadata key 'findings' is 'Pneumothorax', not a JSON array of names; rewrite the checkpoint with cxr or pass --arch/--findings/--in-chans")
    }
    let notFile = dir.appendingPathComponent("nothing.safetensors")
    XCTAssertThrowsError(try ConvNeXt.load(checkpoint: notFile)) { e in
      XCTAssertTrue("\(e)".hasPrefix("cannot open \(notFile.path): "), "\(e)")
    }
  }

  func testHalfPrecisionFilesLoadIntoFloat32Weights() throws {
    let model = try smallModel()
    let sd = try StateDict(model.namedParameters().map { ($0.0, try $0.1.value.to(dtype: .bfloat16)) })
    let url = try write(sd, "bf16.safetensors")
    let loaded = try ConvNeXt.load(checkpoint: url, arch: "atto", findings: ["a", "b"])
    let w = loaded.model.namedParameters().first { $0.0 == "stages.2.blocks.5.mlp.fc2.weight" }!.1.value
    XCTAssertEqual(w.dtype, .float32)
    XCTAssertTrue(try w.equal(sd["stages.2.blocks.5.mlp.fc2.weight"]!.to(dtype: .float32)))
  }

  func testSaveRefusesAWrongNumberOfFindings() throws {
    XCTAssertThrowsError(try smallModel().save(to: dir.appendingPathComponent("x.safetensors"), findings: ["a"])) { e in
      XCTAssertEqual("\(e)", "convnext_atto has 2 outputs but 1 finding names were given: a")
    }
  }
}
