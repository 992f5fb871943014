import Foundation
import TestSupport
import XCTest

/// Deterministic test data without Foundation's unseeded generators.
struct TestRandom {
  var state: UInt64
  init(_ seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Runs a Python reference script that reads its input from a JSON file (argv[1]).
func pythonJSON(_ script: String, input: Any) throws -> Any {
  let dir = try TestEnv.scratch("cxr-eval-py")
  defer { try? FileManager.default.removeItem(at: dir) }
  let file = dir.appendingPathComponent("input.json")
  try JSONSerialization.data(withJSONObject: input).write(to: file)
  return try Python.json(script, args: [file.path])
}

func write(_ text: String, _ name: String, in dir: URL) throws -> String {
  let url = dir.appendingPathComponent(name)
  try text.write(to: url, atomically: true, encoding: .utf8)
  return url.path
}

/// Asserts that `body` throws an error whose description is exactly `message`.
func XCTAssertThrowsMessage<T>(_ body: @autoclosure () throws -> T, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
  do {
    _ = try body()
    XCTFail("expected an error: \(message)", file: file, line: line)
  } catch {
    XCTAssertEqual("\(error)", message, file: file, line: line)
  }
}
