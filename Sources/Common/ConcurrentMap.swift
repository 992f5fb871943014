import Foundation

extension Array {
  /// `map` with the calls spread over all cores (`DispatchQueue.concurrentPerform`); the results
  /// keep the elements' order. For independent, CPU-bound work of some size per element: the
  /// calls must not share mutable state. `workers`: at most that many calls at once, each on a
  /// contiguous run of the elements (nil: one per element, as the cores allow).
  public func concurrentMap<T>(workers: Int? = nil, _ transform: (Element) -> T) -> [T] {
    var slots = [T?](repeating: nil, count: count)
    let runs = Swift.max(1, Swift.min(workers ?? count, count))
    slots.withUnsafeMutableBufferPointer { out in
      // Each index is written by exactly one call, into storage that does not move.
      nonisolated(unsafe) let out = out
      self.withUnsafeBufferPointer { items in
        DispatchQueue.concurrentPerform(iterations: runs) { r in
          for k in (items.count * r / runs)..<(items.count * (r + 1) / runs) { out[k] = transform(items[k]) }
        }
      }
    }
    return slots.map { $0! }
  }
}
