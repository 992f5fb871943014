import XCTest
@testable import Torch

/// cuDNN's autotuner is decided in one place (`Runtime.cuDNNBenchmark`) and set through
/// `Runtime.applyCuDNNBenchmark`, which the training loop, `cxr predict` and the benchmarks call.
final class CuDNNBenchmarkTests: XCTestCase {
  override func tearDownWithError() throws { try Runtime.setCuDNNBenchmark(false) }

  func testOnWithCUDAUnlessTurnedOffNeverOnTheCPU() {
    XCTAssertTrue(Runtime.cuDNNBenchmark(for: .cuda(0)))
    XCTAssertTrue(Runtime.cuDNNBenchmark(for: .cuda(1), requested: true))
    XCTAssertFalse(Runtime.cuDNNBenchmark(for: .cuda(0), requested: false))
    XCTAssertFalse(Runtime.cuDNNBenchmark(for: .cpu))
    XCTAssertFalse(Runtime.cuDNNBenchmark(for: .cpu, requested: true))
  }

  func testTheFlagRoundTripsAndTheCPULeavesItAlone() throws {
    for state in [true, false] {
      try Runtime.setCuDNNBenchmark(state)
      XCTAssertEqual(Runtime.cuDNNBenchmarkEnabled, state)
      // On the CPU, applying is a no-op that does not fail, whatever was asked.
      XCTAssertFalse(try Runtime.applyCuDNNBenchmark(for: .cpu))
      XCTAssertFalse(try Runtime.applyCuDNNBenchmark(for: .cpu, requested: true))
      XCTAssertEqual(Runtime.cuDNNBenchmarkEnabled, state)
    }
  }
}
