import XCTest
@testable import Torch

final class ErrorAndMemoryTests: XCTestCase {
  func testShapeMismatchThrowsLibtorchMessageAndProcessKeepsWorking() throws {
    let a = try Tensor.ones([2, 3]), b = try Tensor.ones([4, 5])
    XCTAssertThrowsError(try F.matmul(a, b)) { e in
      let msg = (e as? TorchError)?.message ?? ""
      XCTAssertTrue(msg.contains("cannot be multiplied"), msg)
      XCTAssertFalse(msg.contains("Exception raised from"), "no C++ backtrace in the message: \(msg)")
    }
    XCTAssertThrowsError(try a + b) { e in
      XCTAssertTrue("\(e)".contains("must match the size"), "\(e)")
    }
    XCTAssertEqual(try (a + a).sum().item(), 12, "still works after errors")
  }

  func testWrongDTypeThrows() throws {
    let idx = try Tensor([0.0, 1.0] as [Float])
    XCTAssertThrowsError(try Tensor.ones([3]).indexSelect(dim: 0, idx)) { e in
      XCTAssertTrue("\(e)".contains("index_select"), "\(e)")
    }
    XCTAssertThrowsError(try F.conv2d(Tensor.ones([1, 1, 3, 3]), weight: Tensor.ones([1, 1, 1, 1], dtype: .float64))) { e in
      XCTAssertTrue("\(e)".lowercased().contains("type"), "\(e)")
    }
  }

  func testOutOfRangeIndexThrows() throws {
    let t = try Tensor.arange(0, 4)
    XCTAssertThrowsError(try t.select(dim: 0, 10)) { e in
      XCTAssertTrue("\(e)".contains("out of range"), "\(e)")
    }
    XCTAssertThrowsError(try t.indexSelect(dim: 0, Tensor([7] as [Int64]))) { e in
      XCTAssertTrue("\(e)".lowercased().contains("out of range"), "\(e)")
    }
    XCTAssertThrowsError(try t.reshape([3])) { e in
      XCTAssertTrue("\(e)".contains("invalid for input of size 4"), "\(e)")
    }
    XCTAssertThrowsError(try Tensor([1, 2, 3] as [Float], shape: [2, 2])) { e in
      XCTAssertEqual("\(e)", "buffer holds 12 bytes but shape and dtype need 16")
    }
  }

  func testErrorMessagesAreThreadLocal() throws {
    let group = DispatchGroup()
    var messages = [String](repeating: "", count: 4)
    let lock = NSLock()
    for i in 0..<4 {
      group.enter()
      DispatchQueue.global().async {
        defer { group.leave() }
        do {
          _ = try Tensor.arange(0, Double(i + 2)).select(dim: 0, 100 + i)
        } catch {
          lock.lock(); messages[i] = "\(error)"; lock.unlock()
        }
      }
    }
    group.wait()
    for i in 0..<4 { XCTAssertTrue(messages[i].contains("\(100 + i)"), messages[i]) }
  }

  func testDevicesParseAndCUDAReportsHonestly() throws {
    XCTAssertEqual(try Device(parsing: "cuda:1"), .cuda(1))
    XCTAssertEqual(try Device(parsing: "CPU"), .cpu)
    XCTAssertThrowsError(try Device(parsing: "tpu")) { e in
      XCTAssertEqual("\(e)", "unknown device 'tpu': use cpu, cuda or cuda:N")
    }
    if !Runtime.cudaAvailable {
      XCTAssertEqual(Runtime.cudaDeviceCount, 0)
      XCTAssertThrowsError(try Tensor.ones([2]).to(.cuda(0)))
      XCTAssertThrowsError(try Runtime.synchronize(.cuda(0)))
    }
    // The pinned wheels (2.13, CPU and CUDA) or Debian 12's libtorch-dev (its headers say 1.13.0).
    XCTAssertTrue(Runtime.version.hasPrefix("2.") || Runtime.version.hasPrefix("1.13."), Runtime.version)
  }

  /// Resident set size in bytes, from /proc/self/statm.
  private func rss() throws -> Int {
    let s = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
    let pages = Int(s.split(separator: " ")[1])!
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  func testTenThousandTensorsLeaveResidentMemoryFlat() throws {
    // Warm up allocator caches first, then measure a second, identical round.
    for _ in 0..<2_000 { _ = try Tensor.ones([256]) + 1 }
    let before = try rss()
    for _ in 0..<10_000 {
      let t = try Tensor.ones([256])  // 1 KiB each: 10,000 leaked would be > 10 MiB
      _ = try t * 2
    }
    let after = try rss()
    XCTAssertLessThan(after - before, 4 << 20, "RSS grew by \(after - before) bytes")
  }
}
