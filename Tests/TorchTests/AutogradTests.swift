import XCTest
@testable import Torch

final class AutogradTests: XCTestCase {
  func testGradientsOfACompositeFunctionMatchAnalyticValues() throws {
    // f(x, w) = sum(sigmoid(w * x) ^ 2); df/dw = 2 s (s (1 - s)) x
    let x = try Tensor([0.5, -1, 2] as [Float])
    let w = try Tensor([1.5, 0.25, -0.75] as [Float]).requiresGrad(true)
    let s = try (w * x).sigmoid()
    let f = try s.square().sum()
    try f.backward()
    let grad = try XCTUnwrap(w.grad).toArray(Float.self)
    let xs: [Float] = [0.5, -1, 2], ws: [Float] = [1.5, 0.25, -0.75]
    for i in 0..<3 {
      let sv = 1 / (1 + Foundation.exp(-ws[i] * xs[i]))
      XCTAssertEqual(grad[i], 2 * sv * sv * (1 - sv) * xs[i], accuracy: 1e-6)
    }
    // gradients accumulate until cleared
    try (w * x).sum().backward()
    XCTAssertEqual(try XCTUnwrap(w.grad).toArray(Float.self)[0], grad[0] + 0.5, accuracy: 1e-6)
    try w.setGrad(nil)
    XCTAssertNil(w.grad)
  }

  func testMatmulAndConvGradients() throws {
    // d/dA sum(A @ B) = 1 @ B^T
    let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]).requiresGrad(true)
    let b = try Tensor([5, 6, 7, 8] as [Float], shape: [2, 2])
    try F.matmul(a, b).sum().backward()
    XCTAssertEqual(try XCTUnwrap(a.grad).toArray(Float.self), [11, 15, 11, 15])
    // conv weight gradient of a 1x1 conv is the sum of the input per channel
    let x = try Tensor.ones([1, 1, 3, 3])
    let w = try Tensor([2] as [Float], shape: [1, 1, 1, 1]).requiresGrad(true)
    try F.conv2d(x, weight: w).sum().backward()
    XCTAssertEqual(try XCTUnwrap(w.grad).item(), 9)
  }

  func testNoGradRecordsNoGraph() throws {
    let w = try Tensor([1, 2] as [Float]).requiresGrad(true)
    let y = try withNoGrad { try w * 3 }
    XCTAssertFalse(y.requiresGrad)
    XCTAssertFalse(y.hasGradFn)
    XCTAssertTrue(isGradEnabled, "mode restored after the scope")
    let z = try w * 3
    XCTAssertTrue(z.hasGradFn)
    // in-place update of a leaf is allowed inside no-grad
    try withNoGrad { try w.mul_(0.5) }
    XCTAssertEqual(try w.toArray(Float.self), [0.5, 1])
    XCTAssertThrowsError(try w.mul_(2), "in-place on a leaf that requires grad outside no-grad")
  }

  func testAutocastChangesMatmulAndConvDType() throws {
    let a = try Tensor.randn([4, 4]), b = try Tensor.randn([4, 4])
    let x = try Tensor.randn([1, 2, 8, 8]), w = try Tensor.randn([3, 2, 3, 3])
    let (mm, conv) = try withAutocast(.cpu, dtype: .bfloat16) {
      (try F.matmul(a, b), try F.conv2d(x, weight: w))
    }
    XCTAssertEqual(mm.dtype, .bfloat16)
    XCTAssertEqual(conv.dtype, .bfloat16)
    XCTAssertEqual(try F.matmul(a, b).dtype, .float32, "autocast is off again after the scope")
    // disabled autocast leaves float32
    let off = try withAutocast(.cpu, dtype: .bfloat16, enabled: false) { try F.matmul(a, b) }
    XCTAssertEqual(off.dtype, .float32)
  }

  func testForeachOps() throws {
    let ps = [try Tensor([1, -2] as [Float]), try Tensor([3] as [Float])]
    let gs = [try Tensor([0.5, 0.5] as [Float]), try Tensor([-1] as [Float])]
    try Foreach.mul_(ps, 2)
    try Foreach.add_(ps, gs, alpha: -2)
    XCTAssertEqual(try ps[0].toArray(Float.self), [1, -5])
    XCTAssertEqual(try ps[1].toArray(Float.self), [8])
    let c = try Foreach.clone(ps)
    try Foreach.sign_(c)
    XCTAssertEqual(try c[0].toArray(Float.self), [1, -1])
    XCTAssertEqual(try ps[0].toArray(Float.self), [1, -5], "clone is a copy")
    try Foreach.lerp_(ps, gs, weight: 0.5)
    XCTAssertEqual(try ps[1].toArray(Float.self), [3.5])
    let norms = try Foreach.norm([try Tensor([3, 4] as [Float])])
    XCTAssertEqual(try norms[0].item(), 5)
    try Foreach.zero_(ps)
    XCTAssertEqual(try ps[0].toArray(Float.self), [0, 0])
  }
}
