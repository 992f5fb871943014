import XCTest
@testable import Torch

final class DeviceFeedTests: XCTestCase {
  // MARK: the CPU path: a pass-through

  func testCPUSendReturnsTheSameTensorsInOrder() throws {
    let feed = try DeviceFeed(device: .cpu)
    let images = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 1, 3])
    let targets = try Tensor([0, 1] as [Int64])
    let out = try feed.send([images, targets])
    XCTAssertEqual(out.count, 2)
    XCTAssertTrue(out[0] === images, "CPU feed passes tensors through without copying")
    XCTAssertTrue(out[1] === targets)
    XCTAssertEqual(try out[0].toArray(Float.self), [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(try out[1].toArray(Int64.self), [0, 1])
    XCTAssertEqual(try feed.send([]).count, 0)
    XCTAssertEqual(feed.stagingAllocations, 0, "the CPU path stages nothing")
  }

  func testDepthBelowOneIsRejected() {
    XCTAssertThrowsError(try DeviceFeed(device: .cpu, depth: 0)) { e in
      XCTAssertEqual("\(e)", "DeviceFeed: depth must be at least 1, got 0")
    }
  }

  // MARK: the CUDA path's errors when CUDA is absent

  /// On the CPU-only shim, and on a CUDA build of the shim without a GPU (make test-cuda-build).
  func testCUDAFeedWithoutAGPUSaysWhy() throws {
    if Runtime.shimHasCUDA && Runtime.cudaAvailable { throw XCTSkip("this machine has a GPU") }
    XCTAssertThrowsError(try DeviceFeed(device: .cuda(0))) { e in
      if Runtime.shimHasCUDA {
        XCTAssertEqual("\(e)", "DeviceFeed: device cuda:0 requested but CUDA is not available (no GPU visible, or no driver): "
          + "check nvidia-smi and CUDA_VISIBLE_DEVICES, or use device cpu")
      } else {
        XCTAssertEqual("\(e)", "DeviceFeed: device cuda:0 needs libcxt.so built against a CUDA libtorch, and this one is "
          + "CPU-only: rebuild it with TORCH_DIR set to a CUDA PyTorch's torch folder (scripts/gpu-check.sh does), "
          + "or use device cpu")
      }
    }
  }

  func testCUDAProblemsAreNamedInOrder() {
    XCTAssertEqual(DeviceFeed.cudaProblem(device: 0, shimHasCUDA: true, cudaAvailable: false, deviceCount: 0),
                   "DeviceFeed: device cuda:0 requested but CUDA is not available (no GPU visible, or no driver): "
                   + "check nvidia-smi and CUDA_VISIBLE_DEVICES, or use device cpu")
    XCTAssertEqual(DeviceFeed.cudaProblem(device: 2, shimHasCUDA: true, cudaAvailable: true, deviceCount: 1),
                   "DeviceFeed: device cuda:2 does not exist: this machine has 1 CUDA device(s), cuda:0 to cuda:0")
    XCTAssertNil(DeviceFeed.cudaProblem(device: 0, shimHasCUDA: true, cudaAvailable: true, deviceCount: 1))
    XCTAssertNotNil(DeviceFeed.cudaProblem(device: 0, shimHasCUDA: false, cudaAvailable: true, deviceCount: 1),
                    "a CPU-only shim is the first problem named")
  }

  // MARK: the staging ring that the CUDA path copies through (plain host buffers here)

  private func batch(_ base: Float, rows: Int = 4) throws -> [Tensor] {
    let images = try Tensor((0..<(rows * 6)).map { base + Float($0) }, shape: [rows, 2, 3])
    let targets = try Tensor((0..<rows).map { Int64(base) * 10 + Int64($0) })
    return [images, targets]
  }

  func testRingPreservesValuesAndOrderAndAllocatesOnlyDepthSets() throws {
    var ring = StagingRing(depth: 2) { shape, dtype in try Tensor.empty(shape, dtype: dtype) }
    var reused: [Int] = []
    var previous: [[Tensor]] = []
    for n in 0..<7 {
      let b = try batch(Float(n * 100))
      let staged = try ring.stage(b) { reused.append($0) }
      XCTAssertEqual(staged.slot, n % 2)
      XCTAssertEqual(staged.tensors.count, 2)
      XCTAssertEqual(staged.tensors[0].shape, [4, 2, 3])
      XCTAssertEqual(try staged.tensors[0].toArray(Float.self), try b[0].toArray(Float.self))
      XCTAssertEqual(try staged.tensors[1].toArray(Int64.self), try b[1].toArray(Int64.self))
      XCTAssertFalse(staged.tensors[0].sharesStorage(with: b[0]), "staged into the ring's own buffers")
      if n >= 2 {
        XCTAssertTrue(staged.tensors[0].sharesStorage(with: previous[n - 2][0]),
                      "batch \(n) reuses the buffers of batch \(n - 2)")
        XCTAssertFalse(staged.tensors[0].sharesStorage(with: previous[n - 1][0]),
                       "batch \(n) leaves the other slot (still being copied) alone")
      }
      previous.append(staged.tensors)
    }
    XCTAssertEqual(reused, [0, 1, 0, 1, 0, 1, 0], "every slot is announced before it is written")
    XCTAssertEqual(ring.allocations, 4, "2 slots x 2 tensors, however many batches")
  }

  func testRingGivesAShorterLastBatchAViewAndReallocatesOnlyWhenABatchOutgrowsItsSlot() throws {
    var ring = StagingRing(depth: 1) { shape, dtype in try Tensor.empty(shape, dtype: dtype) }
    _ = try ring.stage(try batch(0)) { _ in }
    XCTAssertEqual(ring.allocations, 2)

    let short = try batch(500, rows: 3)
    let staged = try ring.stage(short) { _ in }
    XCTAssertEqual(ring.allocations, 2, "a shorter batch fits in the front of the slot's buffers")
    XCTAssertEqual(staged.tensors[0].shape, [3, 2, 3])
    XCTAssertEqual(staged.tensors[1].shape, [3])
    XCTAssertEqual(try staged.tensors[0].toArray(Float.self), try short[0].toArray(Float.self))
    XCTAssertEqual(try staged.tensors[1].toArray(Int64.self), [5000, 5001, 5002])

    let long = try batch(900, rows: 6)
    let grown = try ring.stage(long) { _ in }
    XCTAssertEqual(ring.allocations, 4, "a longer batch needs new buffers")
    XCTAssertEqual(try grown.tensors[0].toArray(Float.self), try long[0].toArray(Float.self))

    let halfPrecision = [try long[0].to(dtype: .bfloat16), long[1]]
    let converted = try ring.stage(halfPrecision) { _ in }
    XCTAssertEqual(ring.allocations, 5, "another dtype needs a new buffer; the targets' buffer is reused")
    XCTAssertEqual(converted.tensors[0].dtype, .bfloat16)
    XCTAssertEqual(try converted.tensors[0].to(dtype: .float32).toArray(Float.self),
                   try halfPrecision[0].to(dtype: .float32).toArray(Float.self))
  }

  func testRingStagesNonContiguousSourcesByValue() throws {
    var ring = StagingRing(depth: 2) { shape, dtype in try Tensor.empty(shape, dtype: dtype) }
    let m = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let transposed = try m.transpose(0, 1)  // [3, 2], not contiguous
    let staged = try ring.stage([transposed]) { _ in }
    XCTAssertEqual(staged.tensors[0].shape, [3, 2])
    XCTAssertEqual(try staged.tensors[0].toArray(Float.self), [1, 4, 2, 5, 3, 6])
  }
}

final class CUDAGraphTests: XCTestCase {
  /// On the CPU-only shim, and on a CUDA build of the shim without a GPU (make test-cuda-build).
  func testCUDAGraphWithoutAGPUSaysWhatItNeeds() throws {
    if Runtime.shimHasCUDA && Runtime.cudaAvailable { throw XCTSkip("this machine has a GPU") }
    XCTAssertThrowsError(try CUDAGraph()) { e in
      XCTAssertEqual("\(e)", Runtime.shimHasCUDA ? "CUDA graphs need a CUDA device, and none is available"
                                                 : "CUDA graphs need a shim built against a CUDA libtorch")
    }
  }
}
