import XCTest
@testable import Torch

final class TensorTests: XCTestCase {
  func testCreationAndReadBack() throws {
    let t = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    XCTAssertEqual(t.shape, [2, 3])
    XCTAssertEqual(t.dtype, .float32)
    XCTAssertEqual(t.device, .cpu)
    XCTAssertEqual(t.count, 6)
    XCTAssertEqual(try t.toArray(Float.self), [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(try Tensor.arange(0, 5, dtype: .int64).toArray(Int64.self), [0, 1, 2, 3, 4])
    XCTAssertEqual(try Tensor.full([2], 7.5).toArray(Float.self), [7.5, 7.5])
  }

  func testEveryDTypeConvertsAndKeepsValues() throws {
    let src = try Tensor([0, 1, 2, 250] as [Float])
    for d in DType.allCases {
      let c = try src.to(dtype: d)
      XCTAssertEqual(c.dtype, d, "\(d)")
      let back = try c.to(dtype: .float32).toArray(Float.self)
      let expected: [Float] = d == .bool ? [0, 1, 1, 1] : [0, 1, 2, 250]
      XCTAssertEqual(back, expected, "\(d)")
      XCTAssertEqual(d.itemSize * 4, try c.bytes().count)
    }
  }

  func testElementwiseAndBroadcasting() throws {
    let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let b = try Tensor([10, 20] as [Float], shape: [1, 2])
    XCTAssertEqual(try (a + b).toArray(Float.self), [11, 22, 13, 24])
    XCTAssertEqual(try (a * 2 - 1).toArray(Float.self), [1, 3, 5, 7])
    XCTAssertEqual(try (1 - a).toArray(Float.self), [0, -1, -2, -3])
    XCTAssertEqual(try (2 / a).toArray(Float.self), [2, 1, 2.0 / 3.0, 0.5])
    XCTAssertEqual(try a.pow(2).toArray(Float.self), [1, 4, 9, 16])
    XCTAssertEqual(try a.clamp(min: 2, max: 3).toArray(Float.self), [2, 2, 3, 3])
    XCTAssertEqual(try a.clamp(max: 2).toArray(Float.self), [1, 2, 2, 2])
    XCTAssertEqual(try (-a).sign().toArray(Float.self), [-1, -1, -1, -1])
    XCTAssertEqual(try a.gt(2.5).toArray(UInt8.self), [0, 0, 1, 1])
    // exact GELU: x * Phi(x); Phi(1) = 0.841344746
    XCTAssertEqual(try Tensor([1] as [Float]).gelu().item(), 0.841344746, accuracy: 1e-6)
    XCTAssertEqual(try Tensor([0] as [Float]).sigmoid().item(), 0.5, accuracy: 1e-7)
    // round half to even, as torch.round
    XCTAssertEqual(try Tensor([0.5, 1.5, 2.5, -0.5] as [Float]).round().toArray(Float.self), [0, 2, 2, -0])
  }

  func testReductions() throws {
    let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    XCTAssertEqual(try a.sum().item(), 21)
    XCTAssertEqual(try a.sum(dims: [0]).toArray(Float.self), [5, 7, 9])
    XCTAssertEqual(try a.mean(dims: [1], keepDim: true).shape, [2, 1])
    XCTAssertEqual(try a.mean(dims: [1]).toArray(Float.self), [2, 5])
    XCTAssertEqual(try a.max().item(), 6)
    XCTAssertEqual(try a.min(dims: [1]).toArray(Float.self), [1, 4])
    XCTAssertEqual(try a.argmax(dim: 1).toArray(Int64.self), [2, 2])
    XCTAssertEqual(try a.variance().item(), 3.5, accuracy: 1e-6)
    XCTAssertEqual(try a.cumsum(dim: 1).toArray(Float.self), [1, 3, 6, 4, 9, 15])
    let (v, i) = try Tensor([3, 1, 2] as [Float]).sort()
    XCTAssertEqual(try v.toArray(Float.self), [1, 2, 3])
    XCTAssertEqual(try i.toArray(Int64.self), [1, 2, 0])
  }

  func testViewsAndIndexing() throws {
    let a = try Tensor.arange(0, 24).reshape([2, 3, 4])
    XCTAssertEqual(try a.permute([2, 0, 1]).shape, [4, 2, 3])
    XCTAssertEqual(try a.slice(dim: 2, 1, 3).toArray(Float.self), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
    XCTAssertEqual(try a.select(dim: 0, 1).shape, [3, 4])
    XCTAssertEqual(try a.indexSelect(dim: 1, Tensor([2, 0] as [Int64])).slice(dim: 0, 0, 1).toArray(Float.self),
                   [8, 9, 10, 11, 0, 1, 2, 3])
    XCTAssertEqual(try Tensor.cat([a, a], dim: 1).shape, [2, 6, 4])
    XCTAssertEqual(try Tensor.stack([a, a], dim: 0).shape, [2, 2, 3, 4])
    XCTAssertEqual(try a.flatten(1).shape, [2, 12])
    XCTAssertEqual(try Tensor([1, 2, 3] as [Float]).flip([0]).toArray(Float.self), [3, 2, 1])
    let v = try a.view([6, 4])
    XCTAssertTrue(v.sharesStorage(with: a))
  }

  func testChannelsLast() throws {
    let x = try Tensor.randn([2, 3, 4, 5])
    let cl = try x.contiguous(.channelsLast)
    XCTAssertTrue(cl.isContiguous(.channelsLast))
    XCTAssertFalse(cl.isContiguous())
    XCTAssertEqual(cl.strides, [60, 1, 15, 3])
    XCTAssertTrue(try cl.equal(x))
  }

  func testNNPrimitivesAgainstKnownValues() throws {
    // conv2d with groups: depthwise 1x1 scaling per channel
    let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8] as [Float], shape: [1, 2, 2, 2])
    let w = try Tensor([2, 3] as [Float], shape: [2, 1, 1, 1])
    let y = try F.conv2d(x, weight: w, groups: 2)
    XCTAssertEqual(try y.toArray(Float.self), [2, 4, 6, 8, 15, 18, 21, 24])
    // layer norm over last dim
    let ln = try F.layerNorm(Tensor([1, 3] as [Float], shape: [1, 2]), normalizedShape: [2], weight: nil, bias: nil, eps: 0)
    XCTAssertEqual(try ln.toArray(Float.self), [-1, 1])
    // linear
    let lin = try F.linear(Tensor([1, 2] as [Float], shape: [1, 2]), weight: Tensor([1, 1, 2, -1] as [Float], shape: [2, 2]),
                           bias: Tensor([0.5, 0] as [Float]))
    XCTAssertEqual(try lin.toArray(Float.self), [3.5, 0])
    XCTAssertEqual(try F.adaptiveAvgPool2d(x, 1, 1).toArray(Float.self), [2.5, 6.5])
    // BCE with logits: -log(sigmoid(0)) = log 2, pos_weight 3 on a positive -> 3 log 2
    let l = try F.binaryCrossEntropyWithLogits(Tensor([0, 0] as [Float]), Tensor([1, 0] as [Float]),
                                               posWeight: Tensor([3] as [Float]), reduction: .none)
    XCTAssertEqual(try l.toArray(Float.self)[0], Float(3 * log(2.0)), accuracy: 1e-6)
    XCTAssertEqual(try l.toArray(Float.self)[1], Float(log(2.0)), accuracy: 1e-6)
    // identity affine grid + grid_sample reproduces the image
    let img = try Tensor.randn([1, 1, 5, 7])
    let theta = try Tensor([1, 0, 0, 0, 1, 0] as [Float], shape: [1, 2, 3])
    let grid = try F.affineGrid(theta, size: [1, 1, 5, 7], alignCorners: false)
    let out = try F.gridSample(img, grid: grid, alignCorners: false)
    XCTAssertLessThan(try (out - img).abs().max().item(), 1e-5)
    XCTAssertEqual(try F.pad(Tensor.ones([1, 1, 1, 1]), [1, 2, 0, 1]).shape, [1, 1, 2, 4])
  }

  func testSeededGeneratorsAndStateRoundTrip() throws {
    let g1 = try Generator(seed: 42), g2 = try Generator(seed: 42)
    XCTAssertTrue(try Tensor.rand([8], generator: g1).equal(Tensor.rand([8], generator: g2)))
    let state = try g1.state()
    let a = try Tensor.randn([5], generator: g1)
    try g1.setState(state)
    XCTAssertTrue(try Tensor.randn([5], generator: g1).equal(a))
    // Beta(2, 2) has mean 0.5
    let b = try Tensor.beta(2, 2, shape: [20000], generator: g2)
    XCTAssertEqual(try b.mean().item(), 0.5, accuracy: 0.01)
    XCTAssertGreaterThanOrEqual(try b.min().item(), 0)
    XCTAssertLessThanOrEqual(try b.max().item(), 1)
    let bern = try Tensor.full([10000], 0.3).bernoulli(generator: g2)
    XCTAssertEqual(try bern.mean().item(), 0.3, accuracy: 0.02)
  }
}
