import Foundation

extension Array {
  /// `map` with the calls spread over all cores (`DispatchQueue.concurrentPerform`); the results
  /// keep the elements' order. For independent, CPU-bound work of some size per element: the
  /// calls must not share mutable state.
  public func concurrentMap<T>(_ transform: (Element) -> T) -> [T] {
    var slots = [T?](repeating: nil, count: count)
    slots.withUnsafeMutableBufferPointer { out in
      // Each index is written by exactly one call, into storage that does not move.
      nonisolated(unsafe) let out = out
      self.withUnsafeBufferPointer { items in
        DispatchQueue.concurrentPerform(iterations: items.count) { k in out[k] = transform(items[k]) }
      }
    }
    return slots.map { $0! }
  }
}
