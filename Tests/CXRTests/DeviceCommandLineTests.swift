import Foundation
import TestSupport
import XCTest

/// The device a user asks for, through the real binary on whatever libtorch this build has (the
/// pinned CPU wheel, the CUDA wheel on a machine without a GPU, Debian's libtorch): `cxr info`
/// names the libtorch and its kind, `device: cuda` that cannot be used is one error naming the
/// key, and `device: auto` on a CUDA build without a GPU says in one line that it runs on the CPU.
final class DeviceCommandLineTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws { dir = try TestEnv.scratch("cxr-device") }
  override func tearDown() { try? FileManager.default.removeItem(at: dir) }
  func cxr(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CXRBinary.run(args, for: Self.self) }

  enum Kind { case cpuOnly, cudaNoDevice, cudaWithDevice }
  func kind() throws -> (Kind, [String]) {
    let info = try cxr(["info"])
    XCTAssertEqual(info.status, 0, info.err)
    let lines = info.out.split(separator: "\n").map(String.init)
    let first = try XCTUnwrap(lines.first)
    if first.hasSuffix(", CPU-only build") { return (.cpuOnly, lines) }
    if first.hasSuffix(", CUDA build, no device") { return (.cudaNoDevice, lines) }
    XCTAssertTrue(first.range(of: #", CUDA build, [1-9][0-9]* device\(s\)$"#, options: .regularExpression) != nil, first)
    return (.cudaWithDevice, lines)
  }

  func testInfoNamesTheLibtorchAndItsKind() throws {
    let (k, lines) = try kind()
    XCTAssertTrue(lines[0].range(of: #"^cxr with libtorch [0-9]+\.[0-9]+\.[0-9]+"#, options: .regularExpression) != nil, lines[0])
    let lib = try XCTUnwrap(lines.first { $0.hasPrefix("libtorch: ") }).dropFirst("libtorch: ".count)
    XCTAssertTrue(lib.contains("/libtorch_cpu.so"), String(lib))
    XCTAssertTrue(FileManager.default.fileExists(atPath: String(lib)), String(lib))
    XCTAssertTrue(lines.contains("shim built with CUDA: \(k == .cpuOnly ? "no" : "yes")"), "\(lines)")
    if k != .cudaWithDevice { XCTAssertTrue(lines.contains("CUDA available: no"), "\(lines)") }
  }

  func testDeviceKeyOnThisLibtorch() throws {
    let (k, _) = try kind()
    guard k != .cudaWithDevice else { throw XCTSkip("this machine has a GPU: device cuda is usable here") }
    // A config that loads; its data does not exist, so --check stops after the device is resolved.
    let config = dir.appendingPathComponent("study.yaml")
    try """
      name: device
      out: \(dir.path)/out
      findings: [Pneumothorax]
      train_data:
        root: \(dir.path)/missing
      schemas:
        - name: truth
          file: \(dir.path)/missing.csv
      """.write(to: config, atomically: true, encoding: .utf8)
    let cuda = try cxr(["config", "resolve", config.path, "--check", "--set", "device=cuda"])
    XCTAssertNotEqual(cuda.status, 0)
    let why = k == .cpuOnly
      ? "this cxr runs on a CPU-only libtorch (libcxt.so was built without CUDA); to use a GPU, rebuild the shim against "
        + "a CUDA PyTorch (TORCH_DIR=.../torch make shim; README, \"libtorch builds\")"
      : "this is a CUDA build of libtorch, but it sees no CUDA device (no GPU visible, or no driver: check nvidia-smi and "
        + "CUDA_VISIBLE_DEVICES)"
    XCTAssertTrue(cuda.err.contains("--set device=cuda: device: cuda cannot be used: \(why). "
      + "Set device: cpu, or auto (a GPU when there is one, else the CPU)"), cuda.err)

    let auto = try cxr(["config", "resolve", config.path, "--check", "--set", "device=auto"])
    let note = "cxr: device auto: this CUDA build of libtorch sees no CUDA device (check nvidia-smi and "
      + "CUDA_VISIBLE_DEVICES); running on the CPU"
    XCTAssertFalse(auto.err.contains("device: auto cannot"), auto.err)
    XCTAssertTrue(auto.err.contains("missing"), "the check goes on to the data: \(auto.err)")
    if k == .cudaNoDevice {
      XCTAssertEqual(auto.err.components(separatedBy: note).count - 1, 1, "one line says so: \(auto.err)")
    } else {
      XCTAssertFalse(auto.err.contains("device auto"), "a CPU-only build says nothing: \(auto.err)")
    }
  }
}
