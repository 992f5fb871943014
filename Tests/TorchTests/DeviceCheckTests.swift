import Foundation
import XCTest
@testable import Torch

/// Whether a device can be used, for each kind of libtorch (CPU-only, CUDA build with and without
/// a GPU): decided from the three facts `cxr info` prints, so every case runs on any machine.
final class DeviceCheckTests: XCTestCase {
  let cpuOnly = "this cxr runs on a CPU-only libtorch (libcxt.so was built without CUDA); to use a GPU, "
    + "rebuild the shim against a CUDA PyTorch (TORCH_DIR=.../torch make shim; README, \"libtorch builds\")"
  let noDevice = "this is a CUDA build of libtorch, but it sees no CUDA device (no GPU visible, or no driver: "
    + "check nvidia-smi and CUDA_VISIBLE_DEVICES)"

  func testCUDAProblemsForEachKindOfLibtorch() {
    XCTAssertEqual(Device.cuda(0).problem(shimHasCUDA: false, cudaAvailable: false, deviceCount: 0), cpuOnly)
    XCTAssertEqual(Device.cuda(0).problem(shimHasCUDA: true, cudaAvailable: false, deviceCount: 0), noDevice)
    XCTAssertEqual(Device.cuda(1).problem(shimHasCUDA: true, cudaAvailable: true, deviceCount: 0), noDevice,
                   "available but no device counted is no device")
    XCTAssertEqual(Device.cuda(2).problem(shimHasCUDA: true, cudaAvailable: true, deviceCount: 2),
                   "cuda:2 does not exist: this machine has 2 CUDA device(s), cuda:0 to cuda:1")
    XCTAssertNil(Device.cuda(1).problem(shimHasCUDA: true, cudaAvailable: true, deviceCount: 2))
    for (shim, avail, n) in [(false, false, 0), (true, false, 0), (true, true, 1)] {
      XCTAssertNil(Device.cpu.problem(shimHasCUDA: shim, cudaAvailable: avail, deviceCount: n), "the CPU is always usable")
    }
  }

  func testAutoFallsBackToTheCPUWithANoteOnlyOnACUDABuild() {
    let gpu = Device.auto(shimHasCUDA: true, cudaAvailable: true, deviceCount: 1)
    XCTAssertEqual(gpu.device, .cuda(0)); XCTAssertNil(gpu.note)
    let cudaBuildNoGPU = Device.auto(shimHasCUDA: true, cudaAvailable: false, deviceCount: 0)
    XCTAssertEqual(cudaBuildNoGPU.device, .cpu)
    XCTAssertEqual(cudaBuildNoGPU.note, "device auto: this CUDA build of libtorch sees no CUDA device (check nvidia-smi and "
      + "CUDA_VISIBLE_DEVICES); running on the CPU")
    let cpuBuild = Device.auto(shimHasCUDA: false, cudaAvailable: false, deviceCount: 0)
    XCTAssertEqual(cpuBuild.device, .cpu); XCTAssertNil(cpuBuild.note, "a CPU-only build falls back to nothing")
  }

  /// This process's own libtorch: what the checks above say for the facts it reports.
  func testThisLibtorchIsJudgedByItsOwnFacts() throws {
    let shim = Runtime.shimHasCUDA, avail = Runtime.cudaAvailable, n = Runtime.cudaDeviceCount
    XCTAssertEqual(Device.cuda(0).problem, Device.cuda(0).problem(shimHasCUDA: shim, cudaAvailable: avail, deviceCount: n))
    if !shim { XCTAssertEqual(Device.cuda(0).problem, cpuOnly) }
    if shim && !avail { XCTAssertEqual(Device.cuda(0).problem, noDevice); XCTAssertEqual(Device.auto.device, .cpu) }
    XCTAssertNil(Device.cpu.problem)
  }
}
