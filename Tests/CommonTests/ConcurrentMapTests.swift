import Common
import Foundation
import XCTest

final class ConcurrentMapTests: XCTestCase {
  /// The results keep the elements' order whatever the number of workers (one per element, fewer
  /// than the elements, more than them), and every element is transformed exactly once.
  func testOrderAndEachElementOnce() {
    let items = Array(0..<103)
    for workers in [nil, 1, 3, 8, 500] as [Int?] {
      let calls = NSLock()
      nonisolated(unsafe) var seen = [Int](repeating: 0, count: items.count)
      let out = items.concurrentMap(workers: workers) { i -> String in
        calls.lock(); seen[i] += 1; calls.unlock()
        return "#\(i * i)"
      }
      XCTAssertEqual(out, items.map { "#\($0 * $0)" }, "workers \(String(describing: workers))")
      XCTAssertEqual(seen, [Int](repeating: 1, count: items.count), "workers \(String(describing: workers))")
    }
    XCTAssertEqual([Int]().concurrentMap(workers: 4) { $0 + 1 }, [])
    XCTAssertEqual([7].concurrentMap(workers: 4) { $0 + 1 }, [8])
  }
}
