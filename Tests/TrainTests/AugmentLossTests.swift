import Evaluate
import Data
import Foundation
import TestSupport
import Torch
import XCTest
@testable import Train

final class AugmentLossTests: XCTestCase {
  func batch(_ n: Int = 6, _ h: Int = 8, _ w: Int = 10) throws -> Tensor {
    try Tensor.randn([n, 1, h, w], generator: Generator(seed: 3))
  }

  func testTwoFlipsAreIdentityAndOneFlipMirrors() throws {
    let x = try batch()
    let r = try AugmentRandom(seed: 1, device: .cpu)
    for axis in [Flip.Axis.horizontal, .vertical] {
      let f = Flip(axis, probability: 0.5)
      let chosen = try f.draw(batch: 6, r)
      XCTAssertTrue(chosen.contains(true) && chosen.contains(false), "seed should pick some and leave some: \(chosen)")
      let once = try f.apply(chosen, to: x)
      XCTAssertTrue(try f.apply(chosen, to: once).equal(x))
      for i in 0..<6 {
        let expect = chosen[i] ? try x.select(dim: 0, i).flip([axis == .horizontal ? 2 : 1]) : try x.select(dim: 0, i)
        XCTAssertTrue(try once.select(dim: 0, i).equal(expect))
      }
    }
  }

  func testIdentityAffineIsIdentityAndQuarterTurnIsRot90() throws {
    let x = try batch(3, 8, 8)
    let aff = RandomAffine(probability: 1, degrees: 25, scaleRange: 0.1, translate: 0.1)
    var p = RandomAffine.Params(chosen: [true, true, true], radians: [0, 0, 0], scale: [1, 1, 1],
                                translateX: [0, 0, 0], translateY: [0, 0, 0])
    XCTAssertLessThan(try (aff.apply(p, to: x) - x).abs().max().item(), 1e-5)
    // A quarter turn of a square image lands exactly on the pixel grid: torch.rot90 up to rounding.
    p.radians = [Double.pi / 2, 0, 0]
    p.chosen = [true, false, false]
    let turned = try aff.apply(p, to: x)
    let ref = try Python.json("""
      import torch
      x = torch.tensor(json.loads(sys.argv[1])).reshape(8, 8)
      print(json.dumps({'ccw': torch.rot90(x, 1, (0, 1)).flatten().tolist(), 'cw': torch.rot90(x, -1, (0, 1)).flatten().tolist()}))
      """, args: ["\(try x.select(dim: 0, 0).flatten().toArray(Float.self))"]) as! [String: [Double]]
    let got = try turned.select(dim: 0, 0).flatten().toArray(Float.self).map(Double.init)
    let dccw = zip(got, ref["ccw"]!).map { Swift.abs($0 - $1) }.max()!
    XCTAssertLessThan(dccw, 1e-5, "a positive angle turns the image counter-clockwise as displayed (torch.rot90 k=1)")
    XCTAssertTrue(try turned.select(dim: 0, 1).equal(x.select(dim: 0, 1)), "unchosen images are untouched")
  }

  func testTranslationShiftsByTheFractionOfTheSide() throws {
    // Shift by 1/4 of 8 columns = 2 pixels: output column j reads input column j + 2.
    let x = try batch(1, 8, 8)
    let aff = RandomAffine(probability: 1, degrees: 0, scaleRange: 0, translate: 0.25)
    let p = RandomAffine.Params(chosen: [true], radians: [0], scale: [1], translateX: [0.25], translateY: [0])
    let y = try aff.apply(p, to: x)
    XCTAssertLessThan(try (y.slice(dim: 3, 0, 6) - x.slice(dim: 3, 2, 8)).abs().max().item(), 1e-5)
  }

  func testAffineDrawsStayInRange() throws {
    let r = try AugmentRandom(seed: 5, device: .cpu)
    let p = try RandomAffine(probability: 0.5, degrees: 25, scaleRange: 0.1, translate: 0.1).draw(batch: 500, r)
    XCTAssertTrue(p.radians.allSatisfy { Swift.abs($0) <= 25 * .pi / 180 })
    XCTAssertTrue(p.scale.allSatisfy { (0.9...1.1).contains($0) })
    XCTAssertTrue((p.translateX + p.translateY).allSatisfy { Swift.abs($0) <= 0.1 })
    let share = Double(p.chosen.filter { $0 }.count) / 500
    XCTAssertEqual(share, 0.5, accuracy: 0.07)
  }

  func testNoiseStdIsDrawnPerImageAndOnlyChosenImagesChange() throws {
    let x = try Tensor.zeros([4, 1, 64, 64])
    let r = try AugmentRandom(seed: 2, device: .cpu)
    let noise = GaussianNoise(probability: 1, std: 0.1)
    let p = GaussianNoise.Params(chosen: [true, false, true, true], std: [0.1, 0.05, 0.02, 0])
    let y = try noise.apply(p, to: x, r)
    let stds = try (0..<4).map { try y.select(dim: 0, $0).std().item() }
    XCTAssertEqual(stds[0], 0.1, accuracy: 0.01)
    XCTAssertEqual(stds[1], 0)
    XCTAssertEqual(stds[2], 0.02, accuracy: 0.002)
    XCTAssertEqual(stds[3], 0)
    let drawn = try noise.draw(batch: 200, r).std
    XCTAssertTrue(drawn.allSatisfy { (0...0.1).contains($0) })
  }

  /// Every image is a constant equal to its target, so after mixing the image's mean must equal
  /// its mixed target exactly when the targets are the same convex combination as the pixels.
  func testMixedTargetsAreTheSameConvexCombinationAsTheImages() throws {
    let n = 8, h = 6, w = 6
    let values: [Float] = [0, 1, 0, 1, 1, 0, 0, 1]
    let y = try Tensor(values, shape: [n, 1])
    let x = try y.reshape([n, 1, 1, 1]).expand([n, 1, h, w]).contiguous()
    let m = try Tensor.ones([n, 1])
    let r = try AugmentRandom(seed: 11, device: .cpu)
    for (share, kind) in [(0.0, Mix.Kind.mixup), (1.0, .cutmix)] {
      let mix = Mix(probability: 1, cutmixShare: share, mixupAlpha: 1, cutmixAlpha: 1)
      let p = try mix.draw(batch: n, height: h, width: w, r)
      XCTAssertEqual(p.kind, kind)
      XCTAssertEqual(p.partner.sorted(), Array(0..<n))
      let out = try mix.apply(p, images: x, targets: y, mask: m)
      let means = try out.images.mean(dims: [1, 2, 3]).toArray(Float.self)
      let targets = try out.targets.flatten().toArray(Float.self)
      for i in 0..<n {
        XCTAssertEqual(means[i], targets[i], accuracy: 1e-6, "\(kind) image \(i)")
        let expect = Float(p.weight[i]) * values[i] + Float(1 - p.weight[i]) * values[p.partner[i]]
        XCTAssertEqual(targets[i], expect, accuracy: 1e-6)
      }
      if kind == .cutmix {
        for (i, b) in p.boxes.enumerated() {
          XCTAssertEqual(p.weight[i], 1 - Double((b.y1 - b.y0) * (b.x1 - b.x0)) / Double(h * w), accuracy: 1e-12)
        }
      }
    }
  }

  func testMixedMaskCountsAFindingOnlyWhenBothImagesCountIt() throws {
    let x = try Tensor.zeros([4, 1, 2, 2]), y = try Tensor.zeros([4, 2])
    let m = try Tensor([1, 1, 1, 0, 0, 1, 1, 1] as [Float], shape: [4, 2])
    let mix = Mix(probability: 1, cutmixShare: 0, mixupAlpha: 1, cutmixAlpha: 1)
    // image 3 keeps itself fully (weight 1), image 2 takes all of its partner (weight 0).
    let p = Mix.Params(kind: .mixup, partner: [1, 2, 3, 0], weight: [0.5, 0.5, 0, 1], boxes: [])
    let out = try mix.apply(p, images: x, targets: y, mask: m)
    XCTAssertEqual(try out.mask.flatten().toArray(Float.self), [1, 0, 0, 0, 1, 1, 1, 1])
  }

  func testAugmenterIsReproducibleFromTheSeedAndKeepsShapes() throws {
    let b = Batch(index: 0, ids: (0..<6).map { "i\($0)" }, images: try batch(6, 16, 16),
                  targets: try Tensor.rand([6, 2], generator: Generator(seed: 4)).lt(0.5).to(dtype: .float32),
                  mask: try Tensor.ones([6, 2]))
    var o = AugmentOptions(); o.mix = 1; o.noise = 1; o.affine = 1
    let a1 = try Augmenter(o)(b, AugmentRandom(seed: 9, device: .cpu))
    let a2 = try Augmenter(o)(b, AugmentRandom(seed: 9, device: .cpu))
    let a3 = try Augmenter(o)(b, AugmentRandom(seed: 10, device: .cpu))
    XCTAssertTrue(try a1.images.equal(a2.images) && a1.targets.equal(a2.targets))
    XCTAssertFalse(try a1.images.equal(a3.images))
    XCTAssertEqual(a1.images.shape, [6, 1, 16, 16])
    XCTAssertEqual(a1.targets.shape, [6, 2])
    XCTAssertTrue(try Augmenter(.none)(b, AugmentRandom(seed: 9, device: .cpu)).images.equal(b.images))
  }

  func testAugmentOptionsValidation() throws {
    var o = AugmentOptions(); o.noise = 1.5
    XCTAssertThrowsError(try o.validate(key: "train.augment")) {
      XCTAssertEqual("\($0)", "train.augment.noise is 1.5; a probability must lie in [0, 1]")
    }
    o = AugmentOptions(); o.mixupAlpha = 0
    XCTAssertThrowsError(try o.validate()) { XCTAssertEqual("\($0)", "augment.mixup_alpha is 0.0; Beta(alpha, alpha) needs alpha > 0") }
  }

  /// Masked BCE against values computed by hand: log(1 + e^-z) for y = 1, log(1 + e^z) for y = 0.
  func testMaskedBCEMatchesHandComputation() throws {
    let z: [Float] = [2, -1, 0.5, 3], t: [Float] = [1, 0, 0, 1], m: [Float] = [1, 1, 0, 1]
    func bce(_ z: Double, _ y: Double, pw: Double = 1) -> Double { pw * y * log(1 + exp(-z)) + (1 - y) * log(1 + exp(z)) }
    let expected = (bce(2, 1) + bce(-1, 0) + bce(3, 1)) / 3
    let got = try MaskedBCE()(Tensor(z, shape: [2, 2]), Tensor(t, shape: [2, 2]), mask: Tensor(m, shape: [2, 2])).item()
    XCTAssertEqual(got, expected, accuracy: 1e-6)
    let pw = try MaskedBCE(posWeight: Tensor([2, 3] as [Float]))(Tensor(z, shape: [2, 2]), Tensor(t, shape: [2, 2]),
                                                                  mask: Tensor(m, shape: [2, 2])).item()
    XCTAssertEqual(pw, (bce(2, 1, pw: 2) + bce(-1, 0) + bce(3, 1, pw: 3)) / 3, accuracy: 1e-6)
    let none = try MaskedBCE()(Tensor(z, shape: [2, 2]), Tensor(t, shape: [2, 2]), mask: Tensor.zeros([2, 2])).item()
    XCTAssertEqual(none, 0)
    XCTAssertThrowsError(try MaskedBCE()(Tensor(z, shape: [4]), Tensor(t, shape: [2, 2]), mask: Tensor(m, shape: [2, 2]))) {
      XCTAssertEqual("\($0)", "loss: logits [4], targets [2, 2] and mask [2, 2] must have one shape [B, K]")
    }
  }

  /// Our temporary tuning AUROC/AUPRC against scikit-learn, with ties.
  func testTuningMetricsMatchScikitLearn() throws {
    let scores: [Double] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1, 0.65, 0.2]
    let labels: [Bool] = [false, false, true, true, true, false, true, false, false, true]
    let ref = try Python.json("""
      from sklearn.metrics import roc_auc_score, average_precision_score
      s = json.loads(sys.argv[1]); y = json.loads(sys.argv[2])
      print(json.dumps([roc_auc_score(y, s), average_precision_score(y, s)]))
      """, args: ["\(scores)", "\(labels.map { $0 ? 1 : 0 })"]) as! [Double]
    XCTAssertEqual(Evaluate.auroc(scores: scores, labels: labels)!, ref[0], accuracy: 1e-12)
    XCTAssertEqual(Evaluate.auprc(scores: scores, labels: labels)!, ref[1], accuracy: 1e-12)
    XCTAssertNil(Evaluate.auroc(scores: [0.1, 0.2], labels: [true, true]))
    XCTAssertNil(Evaluate.auprc(scores: [0.1, 0.2], labels: [false, false]))
  }

  func testScheduleAndSelectionMetric() throws {
    XCTAssertEqual(LRSchedule.constant.lr(base: 1e-5, step: 1000), 1e-5)
    let s = LRSchedule.warmupCosine(warmupSteps: 10, totalSteps: 110, minLR: 0)
    XCTAssertEqual(s.lr(base: 1, step: 0), 0.1, accuracy: 1e-12)
    XCTAssertEqual(s.lr(base: 1, step: 9), 1, accuracy: 1e-12)
    XCTAssertEqual(s.lr(base: 1, step: 60), 0.5, accuracy: 1e-12)
    XCTAssertEqual(s.lr(base: 1, step: 110), 0, accuracy: 1e-12)
    let m = try SelectionMetric(parsing: "raw.auprc.Pneumothorax")
    XCTAssertEqual(m.weights, .raw); XCTAssertEqual(m.kind, .auprc); XCTAssertEqual(m.finding, "Pneumothorax")
    XCTAssertEqual(try SelectionMetric(parsing: "ema.loss").higherIsBetter, false)
    XCTAssertThrowsError(try SelectionMetric(parsing: "best.auc")) {
      XCTAssertEqual("\($0)", "selection metric 'best.auc' is not of the form <raw|ema>.<loss|auroc|auprc>[.<finding|mean>], e.g. ema.auroc.mean")
    }
  }
}

/// The benchmark's PyTorch reference (scripts/bench/train_reference.py) renders the same
/// augmentation independently with torch ops; from the same seeds both must give the same
/// batches, so the benchmark compares like with like and our transforms match plain PyTorch.
final class AugmentReferenceParityTests: XCTestCase {
  func testAugmenterMatchesTheReferenceScriptBatchForBatch() throws {
    let dir = try TestEnv.scratch("augref")
    defer { try? FileManager.default.removeItem(at: dir) }
    let g = try Generator(seed: 8)
    let r = try AugmentRandom(seed: 3, device: .cpu)
    let aug = Augmenter(AugmentOptions())
    var tensors: [(String, Tensor)] = []
    for i in 0..<16 {
      let b = Batch(index: 0, ids: [], images: try Tensor.randn([8, 1, 12, 16], generator: g),
                    targets: try Tensor.rand([8, 2], generator: g).lt(0.5).to(dtype: .float32),
                    mask: try Tensor.rand([8, 2], generator: g).lt(0.8).to(dtype: .float32))
      let out = try aug(b, r)
      tensors += [("in/x/\(i)", b.images), ("in/y/\(i)", b.targets), ("in/m/\(i)", b.mask),
                  ("out/x/\(i)", out.images), ("out/y/\(i)", out.targets), ("out/m/\(i)", out.mask)]
    }
    let file = dir.appendingPathComponent("batches.safetensors")
    try SafeTensors.write(tensors, to: file)
    let res = try Python.json("""
      from safetensors.torch import load_file
      sys.path.insert(0, os.path.join(sys.argv[2], 'scripts', 'bench'))
      import train_reference as ref
      t = load_file(sys.argv[1])
      ref.seed_generators(3)
      diff, kinds = 0.0, []
      for i in range(16):
          x, y, m = ref.augment(t[f'in/x/{i}'], t[f'in/y/{i}'], t[f'in/m/{i}'])
          kinds.append(ref.LAST_MIX)
          for a, b in ((x, t[f'out/x/{i}']), (y, t[f'out/y/{i}']), (m, t[f'out/m/{i}'])):
              diff = max(diff, (a - b).abs().max().item())
      print(json.dumps({'diff': diff, 'kinds': kinds}))
      """, args: [file.path, TestEnv.root.path]) as! [String: Any]
    XCTAssertLessThan(res["diff"] as! Double, 1e-5)
    let kinds = res["kinds"] as! [Any]
    XCTAssertTrue(kinds.contains { ($0 as? String) == "mixup" } && kinds.contains { ($0 as? String) == "cutmix" }
                  && kinds.contains { $0 is NSNull }, "the seed should exercise mixup, CutMix and no mixing: \(kinds)")
  }
}
