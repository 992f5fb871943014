import Common
import Torch
import XCTest
@testable import Experiment

/// The config's `device` key on each kind of libtorch: `auto` picks, a device that cannot be used
/// is one error naming the key's origin, and the CUDA build without a GPU says it fell back.
final class DeviceResolutionTests: XCTestCase {
  func resolve(_ text: String, shim: Bool, avail: Bool, n: Int) throws -> (device: Device, note: String?) {
    try Study.resolveDevice(text, at: "study.yaml:4", shimHasCUDA: shim, cudaAvailable: avail, deviceCount: n)
  }
  func error(_ text: String, shim: Bool, avail: Bool, n: Int) -> String {
    do { _ = try resolve(text, shim: shim, avail: avail, n: n); return "no error" } catch { return "\(error)" }
  }

  func testAutoOnEachKindOfLibtorch() throws {
    XCTAssertEqual(try resolve("auto", shim: true, avail: true, n: 2).device, .cuda(0))
    XCTAssertNil(try resolve("auto", shim: true, avail: true, n: 2).note)
    let fallback = try resolve("auto", shim: true, avail: false, n: 0)
    XCTAssertEqual(fallback.device, .cpu)
    XCTAssertEqual(fallback.note, "device auto: this CUDA build of libtorch sees no CUDA device (check nvidia-smi and CUDA_VISIBLE_DEVICES); running on the CPU")
    XCTAssertEqual(try resolve("auto", shim: false, avail: false, n: 0).device, .cpu)
    XCTAssertNil(try resolve("auto", shim: false, avail: false, n: 0).note)
  }

  func testCUDAThatCannotBeUsedIsAnErrorNamingTheKey() {
    XCTAssertEqual(error("cuda", shim: true, avail: false, n: 0),
                   "study.yaml:4: device: cuda cannot be used: this is a CUDA build of libtorch, but it sees no CUDA device "
                   + "(no GPU visible, or no driver: check nvidia-smi and CUDA_VISIBLE_DEVICES). "
                   + "Set device: cpu, or auto (a GPU when there is one, else the CPU)")
    XCTAssertEqual(error("cuda:0", shim: false, avail: false, n: 0),
                   "study.yaml:4: device: cuda:0 cannot be used: this cxr runs on a CPU-only libtorch (libcxt.so was built "
                   + "without CUDA); to use a GPU, rebuild the shim against a CUDA PyTorch (TORCH_DIR=.../torch make shim; "
                   + "README, \"libtorch builds\"). Set device: cpu, or auto (a GPU when there is one, else the CPU)")
    XCTAssertEqual(error("cuda:1", shim: true, avail: true, n: 1),
                   "study.yaml:4: device: cuda:1 cannot be used: cuda:1 does not exist: this machine has 1 CUDA device(s), "
                   + "cuda:0 to cuda:0. Set device: cpu, or auto (a GPU when there is one, else the CPU)")
    XCTAssertEqual(error("tpu", shim: true, avail: true, n: 1), "study.yaml:4: unknown device 'tpu': use cpu, cuda or cuda:N")
    XCTAssertEqual(try resolve("cuda:1", shim: true, avail: true, n: 2).device, .cuda(1))
    XCTAssertEqual(try resolve("cpu", shim: true, avail: false, n: 0).device, .cpu)
    XCTAssertNil(try resolve("cpu", shim: true, avail: false, n: 0).note, "an explicit cpu needs no note")
  }
}
