import Data
import Foundation
import TestSupport
import Torch
import XCTest
@testable import Train

final class LionEMATests: XCTestCase {
  /// lion-pytorch 0.2.5 (default and foreach variants) against ours: 10 steps on random
  /// tensors, weight decay on one group and none on the other (1-D and `.gamma`).
  func testLionMatchesLionPytorchForTenSteps() throws {
    let dir = try TestEnv.scratch("lion")
    defer { try? FileManager.default.removeItem(at: dir) }
    _ = try Python.run("""
      import torch
      from safetensors.torch import save_file
      from lion_pytorch import Lion
      from lion_pytorch.foreach import Lion as LionForeach
      g = torch.Generator().manual_seed(7)
      shapes = {'a.weight': (5, 4), 'a.bias': (5,), 'blk.gamma': (3,), 'c.weight': (2, 3, 3, 3)}
      init = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
      grads = {f'{k}@{t}': torch.randn(s, generator=g) for t in range(10) for k, s in shapes.items()}
      out = {}
      for tag, cls in (('default', Lion), ('foreach', LionForeach)):
          ps = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
          decay = [ps['a.weight'], ps['c.weight']]
          nodecay = [ps['a.bias'], ps['blk.gamma']]
          opt = cls([{'params': decay, 'weight_decay': 0.3}, {'params': nodecay, 'weight_decay': 0.0}], lr=0.01, betas=(0.9, 0.99))
          for t in range(10):
              for k, p in ps.items():
                  p.grad = grads[f'{k}@{t}'].clone()
              opt.step()
          for k, p in ps.items():
              out[f'{tag}/{k}'] = p.detach().clone()
              out[f'{tag}/m/{k}'] = opt.state[p]['exp_avg'].clone()
      save_file({**{f'init/{k}': v for k, v in init.items()}, **{f'grad/{k}': v for k, v in grads.items()}, **out}, sys.argv[1])
      print('{}')
      """, args: [dir.appendingPathComponent("lion.safetensors").path])
    let ref = try SafeTensors.read(dir.appendingPathComponent("lion.safetensors")).tensors
    let names = ["a.weight", "a.bias", "blk.gamma", "c.weight"]
    let params = try names.map { try Parameter(ref["init/\($0)"]!.clone()) }
    let lion = try Lion(Array(zip(names, params)), lr: 0.01, betas: (0.9, 0.99), weightDecay: 0.3, noDecayForNormsAndBiases: true)
    XCTAssertEqual(lion.groups.map(\.names), [["a.weight", "c.weight"], ["a.bias", "blk.gamma"]])
    for t in 0..<10 {
      for (n, p) in zip(names, params) { try p.value.setGrad(ref["grad/\(n)@\(t)"]!.clone()) }
      try lion.step()
    }
    for variant in ["default", "foreach"] {
      for (n, p) in zip(names, params) {
        let dp = try (p.value - ref["\(variant)/\(n)"]!).abs().max().item()
        let dm = try (lion.expAvg[n]! - ref["\(variant)/m/\(n)"]!).abs().max().item()
        XCTAssertLessThan(dp, 1e-6, "\(variant) \(n) weights")
        XCTAssertLessThan(dm, 1e-6, "\(variant) \(n) exp_avg")
      }
    }
  }

  func testLionRejectsBadSettingsAndBadState() throws {
    let p = try Parameter(Tensor.zeros([2]))
    XCTAssertThrowsError(try Lion([("w", p)], lr: 0)) { XCTAssertEqual("\($0)", "lion: lr is 0.0; it must be > 0") }
    let lion = try Lion([("w", p)], lr: 1)
    XCTAssertThrowsError(try lion.load(StateDict([("v", try Tensor.zeros([2]))]))) {
      XCTAssertEqual("\($0)", "optimizer state has 'v', which the model does not have")
    }
    XCTAssertThrowsError(try lion.load(StateDict([("w", try Tensor.zeros([3]))]))) {
      XCTAssertEqual("\($0)", "optimizer state for 'w' has shape [3], the model [2]")
    }
  }

  final class One: Classifier {
    let w: Parameter
    init(_ v: [Float]) throws { w = try Parameter(Tensor(v)) }
    func namedParameters(prefix: String) -> [(String, Parameter)] { [(prefix + "w", w)] }
    func setTraining(_ on: Bool) {}
    func callAsFunction(_ x: Tensor) throws -> Tensor { x }
  }

  /// e <- d e + (1 - d) w with the timm decay schedule, computed by hand in doubles.
  func testEMAFollowsTheFormulaWithAndWithoutWarmup() throws {
    for warmup in [nil, EMA.Warmup()] {
      let m = try One([1, -2])
      let ema = try EMA(m, decay: 0.9, warmup: warmup)
      var expected: [Double] = [1, -2]
      for step in 1...8 {
        let w = [Double(step), -Double(step) * 0.5]
        try withNoGrad { try m.w.value.copy_(Tensor(w.map(Float.init))) }
        try ema.update(m, step: step)
        let t = Double(step - 1)
        let d = t <= 0 ? 0 : (warmup == nil ? 0.9 : min(0.9, 1 - pow(1 + t, -2.0 / 3.0)))
        XCTAssertEqual(ema.decay(atStep: step), d, accuracy: 1e-15)
        expected = zip(expected, w).map { d * $0 + (1 - d) * $1 }
        let got = try ema.values[0].toArray(Float.self).map(Double.init)
        XCTAssertEqual(got[0], expected[0], accuracy: 1e-5)
        XCTAssertEqual(got[1], expected[1], accuracy: 1e-5)
      }
    }
  }

  /// Our decay schedule equals timm's `ModelEmaV3.get_decay`.
  func testEMADecayMatchesTimm() throws {
    let out = try Python.json("""
      import torch
      from timm.utils.model_ema import ModelEmaV3
      m = torch.nn.Linear(2, 2)
      a = ModelEmaV3(m, decay=0.9999)
      b = ModelEmaV3(m, decay=0.9999, use_warmup=True)
      print(json.dumps({'plain': [a.get_decay(s) for s in range(1, 40)], 'warm': [b.get_decay(s) for s in range(1, 40)]}))
      """) as! [String: [Double]]
    let m = try One([0])
    let plain = try EMA(m), warm = try EMA(m, warmup: EMA.Warmup())
    for s in 1..<40 {
      XCTAssertEqual(plain.decay(atStep: s), out["plain"]![s - 1], accuracy: 1e-15)
      XCTAssertEqual(warm.decay(atStep: s), out["warm"]![s - 1], accuracy: 1e-15)
    }
  }

  func testEMALoadChecksNames() throws {
    let ema = try EMA(try One([0, 0]))
    XCTAssertThrowsError(try ema.load(StateDict())) { XCTAssertEqual("\($0)", "ema state lacks 'w'") }
    XCTAssertThrowsError(try ema.load(StateDict([("w", try Tensor.zeros([2])), ("x", try Tensor.zeros([1]))]))) {
      XCTAssertEqual("\($0)", "ema state has 'x', which the model does not have")
    }
  }
}
