import Foundation
import TestSupport
import XCTest
@testable import Torch

final class SafeTensorsTests: XCTestCase {
  func testRoundTripOfEverySupportedDType() throws {
    let dir = try TestEnv.scratch()
    let url = dir.appendingPathComponent("all.safetensors")
    let base = try Tensor([0, 1, 2, 3, 4, 5] as [Float], shape: [2, 3])
    var tensors: [(String, Tensor)] = []
    for d in DType.allCases { tensors.append(("t.\(d)", try base.to(dtype: d))) }
    tensors.append(("scalar", try Tensor([7] as [Float], shape: [])))
    tensors.append(("empty", try Tensor.zeros([0, 3])))
    try SafeTensors.write(tensors, metadata: ["arch": "convnext_atto", "findings": "A,B"], to: url)
    let (back, meta) = try SafeTensors.read(url)
    XCTAssertEqual(meta, ["arch": "convnext_atto", "findings": "A,B"])
    XCTAssertEqual(back.count, tensors.count)
    for (name, t) in tensors {
      let r = try XCTUnwrap(back[name], name)
      XCTAssertEqual(r.dtype, t.dtype, name)
      XCTAssertEqual(r.shape, t.shape, name)
      XCTAssertTrue(try r.equal(t), name)
    }
    // data section is 8-byte aligned, as the reference writer requires
    let data = try Data(contentsOf: url)
    let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    XCTAssertEqual((8 + Int(n)) % 8, 0)
  }

  func testReadsAFileWrittenByPythonsSafetensorsAndPythonReadsOurs() throws {
    let dir = try TestEnv.scratch()
    let theirs = dir.appendingPathComponent("py.safetensors")
    try Python.run("""
      import torch
      from safetensors.torch import save_file
      save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                 "h": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
                 "i": torch.tensor([[1, 2]], dtype=torch.int64),
                 "m": torch.tensor([True, False])}, sys.argv[1], metadata={"k": "v"})
      """, args: [theirs.path])
    let f = try SafeTensorsFile(theirs)
    XCTAssertEqual(f.metadata, ["k": "v"])
    XCTAssertEqual(try f.tensor("w").toArray(Float.self), [0, 1, 2, 3, 4, 5])
    XCTAssertEqual(try f.tensor("h").dtype, .bfloat16)
    XCTAssertEqual(try f.tensor("h").toArray(Float.self), [1.5, -2])
    XCTAssertEqual(try f.tensor("i").toArray(Int64.self), [1, 2])
    XCTAssertEqual(try f.tensor("m").to(dtype: .uint8).toArray(UInt8.self), [1, 0])

    let ours = dir.appendingPathComponent("ours.safetensors")
    try SafeTensors.write([("a", try Tensor([1, 2, 3] as [Float])), ("b", try Tensor([4] as [Float]).to(dtype: .float16))],
                          metadata: ["arch": "x"], to: ours)
    let out = try Python.json("""
      from safetensors import safe_open
      with safe_open(sys.argv[1], framework="pt") as f:
          print(json.dumps({"a": f.get_tensor("a").tolist(), "b": str(f.get_tensor("b").dtype), "meta": f.metadata()}))
      """, args: [ours.path]) as? [String: Any]
    XCTAssertEqual(out?["a"] as? [Double], [1, 2, 3])
    XCTAssertEqual(out?["b"] as? String, "torch.float16")
    XCTAssertEqual(out?["meta"] as? [String: String], ["arch": "x"])
  }

  func testTruncatedOrLyingHeadersGiveClearErrors() throws {
    let dir = try TestEnv.scratch()
    let good = dir.appendingPathComponent("good.safetensors")
    try SafeTensors.write([("w", try Tensor.ones([16]))], to: good)
    let bytes = try Data(contentsOf: good)

    func expectError(_ data: Data, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
      let url = dir.appendingPathComponent("bad-\(UUID().uuidString.prefix(6)).safetensors")
      try data.write(to: url)
      XCTAssertThrowsError(try SafeTensorsFile(url), file: file, line: line) { e in
        let msg = "\(e)"
        XCTAssertTrue(msg.contains(url.path) && msg.contains(fragment), msg, file: file, line: line)
      }
    }
    try expectError(bytes.prefix(5), "fewer than the 8-byte header length")
    try expectError(bytes.prefix(bytes.count - 10), "truncated")
    var huge = bytes
    huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
    try expectError(huge, "does not fit in the file")
    var notJSON = bytes
    notJSON[8] = UInt8(ascii: "[")
    try expectError(notJSON, "not a JSON object")
    func withHeader(_ json: String) -> Data {
      var d = Data()
      let h = Data(json.utf8)
      withUnsafeBytes(of: UInt64(h.count).littleEndian) { d.append(contentsOf: $0) }
      d.append(h)
      d.append(Data(count: 64))
      return d
    }
    try expectError(withHeader(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#), "needs 16")
    try expectError(withHeader(#"{"w":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}}"#), "unsupported dtype Q7")
    try expectError(withHeader(#"{"w":{"dtype":"F32","shape":[32],"data_offsets":[0,128]}}"#), "past the data section")
    try expectError(withHeader(#"{"w":{"shape":[4]}}"#), "lacks dtype")
    try expectError(withHeader(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#), "lacks dtype")
    try expectError(withHeader(#"{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#), "bad shape")
    try expectError(withHeader(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#), "bad data_offsets")
    try expectError(withHeader(#"{"w":3}"#), "entry 'w' lacks dtype")
    try expectError(withHeader(#"{"__metadata__":[1]}"#), "__metadata__ is not an object of strings")
    try expectError(withHeader(#"{"__metadata__":{"k":1}}"#), "__metadata__ value for 'k' is not a string")
    XCTAssertThrowsError(try SafeTensorsFile(dir.appendingPathComponent("missing.safetensors"))) { e in
      XCTAssertTrue("\(e)".contains("cannot open"), "\(e)")
    }
  }

  /// Fields a writer adds that this reader does not know are ignored (as before the header
  /// became a Codable type), and the key order of the header carries no meaning.
  func testUnknownFieldsAreIgnoredAndKeyOrderDoesNotMatter() throws {
    let dir = try TestEnv.scratch()
    let url = dir.appendingPathComponent("extra.safetensors")
    let json = #"{"b":{"shape":[2],"data_offsets":[8,16],"dtype":"F32","note":"x"},"#
      + #""__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2],"extra":[1,{"y":null}]}}"#
    var d = Data()
    withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { d.append(contentsOf: $0) }
    d.append(Data(json.utf8))
    for v in [1, 2, 3, 4] as [Float] { withUnsafeBytes(of: v) { d.append(contentsOf: $0) } }
    try d.write(to: url)
    let f = try SafeTensorsFile(url)
    XCTAssertEqual(f.metadata, ["k": "v"])
    XCTAssertEqual(f.names, ["a", "b"])
    XCTAssertEqual(try f.tensor("a").toArray(Float.self), [1, 2])
    XCTAssertEqual(try f.tensor("b").toArray(Float.self), [3, 4])
  }

  /// The header is byte for byte what the writer before the Codable header wrote
  /// (JSONSerialization with sorted keys), so a checkpoint written again is the same file.
  func testHeaderBytesMatchTheEarlierWriter() throws {
    let names = ["stages.10.w", "stages.2.w", "Ab", "ab", "a_b", "a.b", "head.fc.weight", "Z", "x1", "x01", "a/b"]
    var header = SafeTensors.Header(metadata: ["findings": "A,B", "Arch": "c/\"q\"", "n10": "1", "n9": "é"])
    var old: [String: Any] = ["__metadata__": header.metadata]
    for (i, name) in names.enumerated() {
      header.tensors[name] = .init(dtype: "F32", shape: [i, 2], dataOffsets: [8 * i, 8 * i + 8])
      old[name] = ["dtype": "F32", "shape": [i, 2], "data_offsets": [8 * i, 8 * i + 8]]
    }
    let expected = try JSONSerialization.data(withJSONObject: old, options: [.sortedKeys])
    let ours = try header.encoded()
    XCTAssertEqual(String(decoding: ours, as: UTF8.self), String(decoding: expected, as: UTF8.self))
    let back = try SafeTensors.Header(json: ours)
    XCTAssertEqual(back.metadata, header.metadata)
    XCTAssertEqual(back.tensors, header.tensors)
  }
}
