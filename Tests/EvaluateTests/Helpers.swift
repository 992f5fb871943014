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

/// As `pythonJSON`, for comparisons to the last bit. Foundation's JSON reader on Linux rounds some
/// decimals an ulp or two off (0.7000000000000001 reads as 0.7000000000000003), so the script
/// prints `json.dumps(exact(obj))`, which writes every float as its repr string ("f:0.1", "f:inf"),
/// and this turns those back into Doubles with Swift's correctly rounded parser.
func pythonExact(_ script: String, input: Any) throws -> Any {
  let prelude = """
    import numpy as _np
    def exact(o):
        if isinstance(o, (float, _np.floating)): return 'f:' + repr(float(o))
        if isinstance(o, (bool, _np.bool_)): return bool(o)
        if isinstance(o, (int, _np.integer)): return int(o)
        if isinstance(o, dict): return {k: exact(v) for k, v in o.items()}
        if isinstance(o, (list, tuple, _np.ndarray)): return [exact(v) for v in o]
        return o

    """
  func decode(_ v: Any) -> Any {
    if let s = v as? String, s.hasPrefix("f:") { return Double(s.dropFirst(2))! }
    if let a = v as? [Any] { return a.map(decode) }
    if let d = v as? [String: Any] { return d.mapValues(decode) }
    return v
  }
  return decode(try pythonJSON(prelude + script, input: input))
}
