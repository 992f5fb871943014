import XCTest
@testable import Torch

/// A two-layer module with nested names, to check state_dict keys and strict loading.
private final class Tiny: Module {
  let w: Parameter, b: Parameter, inner: Inner
  final class Inner: Module {
    let scale: Parameter
    init() throws { scale = try Parameter(Tensor.ones([3])) }
    func namedParameters(prefix: String) -> [(String, Parameter)] { [(prefix + "scale", scale)] }
    func setTraining(_ on: Bool) {}
  }
  init() throws {
    w = try Parameter(Tensor.zeros([3, 2]))
    b = try Parameter(Tensor.zeros([3]))
    inner = try Inner()
  }
  func namedParameters(prefix: String) -> [(String, Parameter)] {
    [(prefix + "fc.weight", w), (prefix + "fc.bias", b)] + inner.namedParameters(prefix: prefix + "inner.")
  }
  func setTraining(_ on: Bool) {}
}

final class ModuleTests: XCTestCase {
  func testStateDictKeysAndStrictLoad() throws {
    let m = try Tiny()
    XCTAssertEqual(m.namedParameters().map(\.0), ["fc.weight", "fc.bias", "inner.scale"])
    XCTAssertEqual(m.parameterCount, 12)
    var sd = StateDict()
    sd["fc.weight"] = try Tensor.full([3, 2], 2)
    sd["fc.bias"] = try Tensor.full([3], 1)
    sd["inner.scale"] = try Tensor.full([3], 5)
    let r = try m.load(sd)
    XCTAssertEqual(r.loaded, 3)
    XCTAssertEqual(try m.w.value.sum().item(), 12)
    XCTAssertTrue(m.w.value.requiresGrad, "loading keeps parameters trainable")

    var bad = StateDict()
    bad["fc.weight"] = try Tensor.zeros([2, 2])
    bad["inner.scale"] = try Tensor.zeros([3])
    bad["extra.thing"] = try Tensor.zeros([1])
    XCTAssertThrowsError(try m.load(bad)) { e in
      XCTAssertEqual("\(e)", """
        state dict does not match the model:
          missing keys (1): fc.bias
          unexpected keys (1): extra.thing
          wrong shape for fc.weight: model has [3, 2], file has [2, 2]
        """)
    }
    let lenient = try m.load(bad, strict: false)
    XCTAssertEqual(lenient.loaded, 1)
  }

  func testMoveKeepsParameterIdentity() throws {
    let m = try Tiny()
    let box = m.w
    try m.to(dtype: .float64)
    XCTAssertTrue(box === m.w)
    XCTAssertEqual(m.w.value.dtype, .float64)
    XCTAssertTrue(m.w.value.requiresGrad)
  }
}
