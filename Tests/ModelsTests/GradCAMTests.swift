import Foundation
@testable import Models
import TestSupport
import Torch
import XCTest

/// Grad-CAM on stages.3 against a few lines of PyTorch on timm's ConvNeXt with the same weights
/// (loaded from the same safetensors file), float32 on CPU.
final class GradCAMTests: XCTestCase {
  /// Makes a convnext_atto with spread-out random weights (timm's own init leaves the layer scale
  /// at 1e-6, which would make every map nearly zero), saves it, reloads it from the file and
  /// computes Grad-CAM of each logit with a hook on `stages[-1]` and `torch.autograd.grad`.
  static let script = """
    import torch, timm, json, sys
    import torch.nn.functional as F
    from safetensors.torch import save_file, load_file
    spec = json.loads(sys.argv[1])
    torch.manual_seed(3)
    m = timm.create_model('convnext_atto', pretrained=False, num_classes=spec['classes'], in_chans=1)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.ndim > 1: p.normal_(0, p[0].numel() ** -0.5)
            elif n.endswith('gamma'): p.uniform_(0.2, 1.0)
            elif n.endswith('weight'): p.normal_(1.0, 0.1)
            else: p.normal_(0.0, 0.1)
    save_file({k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}, spec['weights'])
    m = timm.create_model('convnext_atto', pretrained=False, num_classes=spec['classes'], in_chans=1)
    m.load_state_dict(load_file(spec['weights']))
    m.eval()
    x = torch.randn(spec['batch'], 1, spec['size'], spec['size'], generator=torch.Generator().manual_seed(1))
    acts = {}
    m.stages[-1].register_forward_hook(lambda mod, i, o: acts.__setitem__('a', o))
    out = {'x': x}
    for k in range(spec['classes']):
        y = m(x)
        a = acts['a']
        g, = torch.autograd.grad(y[:, k].sum(), a)       # ClassifierOutputTarget(k): the logit
        w = g.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((w * a).sum(dim=1, keepdim=True))
        up = F.interpolate(cam, size=x.shape[-2:], mode='bilinear', align_corners=False)
        out[f'logits.{k}'] = y[:, k].detach().contiguous()
        out[f'raw.{k}'] = cam.detach().contiguous()
        out[f'up.{k}'] = up.detach().contiguous()
        out[f'w.{k}'] = w.detach().contiguous()
    save_file(out, spec['io'])
    print(json.dumps({'done': True}))
    """

  func reference(size: Int = 128) throws -> (weights: URL, io: StateDict) {
    let dir = try TestEnv.scratch("cxr-gradcam")
    addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    let weights = dir.appendingPathComponent("atto.safetensors"), io = dir.appendingPathComponent("io.safetensors")
    let spec: [String: Any] = ["classes": 2, "batch": 2, "size": size, "weights": weights.path, "io": io.path]
    _ = try Python.json(Self.script, args: [String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)])
    return (weights, try SafeTensors.read(io).tensors)
  }

  /// Raw (4x4) and upsampled (128x128) maps of 2 images x 2 findings within 1e-4 of PyTorch.
  func testMatchesPyTorchGradCAM() throws {
    let (weights, io) = try reference()
    let loaded = try ConvNeXt.load(checkpoint: weights, arch: "convnext_atto", findings: ["a", "b"], inChans: 1)
    let maps = try GradCAM(model: loaded.model).maps(io["x"]!)
    XCTAssertEqual(maps.count, 2)
    var worst = 0.0
    for k in 0..<2 {
      let raw = try io["raw.\(k)"]!.toArray(Float.self), up = try io["up.\(k)"]!.toArray(Float.self)
      let w = try io["w.\(k)"]!.toArray(Float.self), z = try io["logits.\(k)"]!.toArray(Float.self)
      for i in 0..<2 {
        let m = maps[i][k]
        XCTAssertEqual(m.finding, k)
        XCTAssertEqual([m.height, m.width, m.inputHeight, m.inputWidth], [4, 4, 128, 128])
        let n = 16, nu = 128 * 128, c = m.weights.count
        let dRaw = zip(m.raw, raw[(i * n)..<(i * n + n)]).map { abs(Double($0 - $1)) }.max()!
        let dUp = zip(m.upsampled, up[(i * nu)..<(i * nu + nu)]).map { abs(Double($0 - $1)) }.max()!
        let dW = zip(m.weights, w[(i * c)..<(i * c + c)]).map { abs(Double($0 - $1)) }.max()!
        worst = max(worst, dRaw, dUp, dW)
        XCTAssertLessThan(dRaw, 1e-4, "image \(i) finding \(k): raw map")
        XCTAssertLessThan(dUp, 1e-4, "image \(i) finding \(k): upsampled map")
        XCTAssertLessThan(dW, 1e-4, "image \(i) finding \(k): channel weights")
        XCTAssertEqual(m.logit, Double(z[i]), accuracy: 1e-4)
        // The comparison means something only when the map is not all zero.
        XCTAssertGreaterThan(raw[(i * n)..<(i * n + n)].max()!, 1e-3, "image \(i) finding \(k): reference map is ~0")
        let norm = m.normalized
        XCTAssertEqual(norm.max()!, 1, accuracy: 1e-6)
        XCTAssertEqual(norm.min()!, 0, accuracy: 1e-6)
      }
    }
    print("[gradcam parity] max |cxr - pytorch| over raw maps, upsampled maps and channel weights: \(worst)")
  }

  /// Grad-CAM leaves no gradient on any parameter, does not change the weights, restores the
  /// training flag, and predictions after it are bit-identical to those before.
  func testLeavesModelAndPredictionsUnchanged() throws {
    let g = try Generator(seed: 5)
    let model = try ConvNeXt(ConvNeXtConfig.named("convnext_atto", numClasses: 2, inChannels: 1), generator: g)
    let x = try Tensor.randn([2, 1, 64, 64], generator: g)
    let before = try model.parameters.map { try $0.value.clone() }
    let predictor = try Predictor(model: model, findings: ["a", "b"])
    let p0 = try predictor.probabilities(x)
    model.setTraining(true)
    let maps = try GradCAM(model: model).maps(x)
    XCTAssertTrue(model.isTraining, "the training flag is restored")
    model.setTraining(false)
    XCTAssertEqual(maps.count, 2)
    for p in model.parameters {
      XCTAssertNil(p.value.grad, "a parameter got a gradient")
      XCTAssertTrue(p.value.requiresGrad, "requires_grad is restored")
    }
    for (a, b) in zip(before, model.parameters) { XCTAssertTrue(try a.equal(b.value)) }
    XCTAssertTrue(try p0.equal(predictor.probabilities(x)))
    // Probabilities Grad-CAM reports are those of the prediction.
    let p = try p0.toArray(Float.self)
    for i in 0..<2 { for k in 0..<2 { XCTAssertEqual(maps[i][k].probability, Double(p[i * 2 + k]), accuracy: 1e-5) } }
  }

  /// A 2x2 map upsampled to 64x64 is flat at its largest cell's value from that cell's centre to
  /// the image's corner; the peak is the plateau's inner corner (the cell's centre), not (0, 0).
  func testPeakOfACornerCellIsTheCellCentre() throws {
    let cam = try Tensor([Float(0), 1, 0.5, 0], shape: [1, 1, 2, 2])
    let up = try F.interpolate(cam, size: (64, 64), mode: .bilinear).toArray(Float.self)
    let m = GradCAM.Map(finding: 0, logit: 0, probability: 0.5, raw: [0, 1, 0.5, 0], height: 2, width: 2, upsampled: up,
                        inputHeight: 64, inputWidth: 64, normalized: GradCAM.normalize(up), weights: [])
    XCTAssertEqual(up[0 * 64 + 63], 1)
    XCTAssertEqual(up[15 * 64 + 48], 1)
    XCTAssertEqual(m.peak?.x, 48)
    XCTAssertEqual(m.peak?.y, 15)
    let flat = GradCAM.Map(finding: 0, logit: 0, probability: 0.5, raw: [0], height: 1, width: 1, upsampled: [0, 0, 0, 0],
                           inputHeight: 2, inputWidth: 2, normalized: [0, 0, 0, 0], weights: [])
    XCTAssertNil(flat.peak)
  }

  func testNormalizeFlatMapIsZero() {
    XCTAssertEqual(GradCAM.normalize([2, 2, 2]), [0, 0, 0])
    XCTAssertEqual(GradCAM.normalize([1, 3, 2]), [0, 1, 0.5])
  }
}
