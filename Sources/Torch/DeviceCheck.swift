/// Whether a device can be used here, decided before any work is queued on it, so that a CUDA
/// device on a CPU-only libtorch, or on a CUDA build of libtorch that sees no GPU, is one clear
/// error (said by whoever asked for it: the config's `device` key, `--device`) rather than
/// libtorch's own message from deep inside the first copy.
extension Device {
  /// Why `self` cannot be used, as a sentence a user can act on; nil when it can. `shimHasCUDA`:
  /// libcxt.so was compiled against a CUDA libtorch; `cudaAvailable`, `deviceCount`: what that
  /// libtorch sees now (`cxr info` prints all three).
  public func problem(shimHasCUDA: Bool, cudaAvailable: Bool, deviceCount: Int) -> String? {
    guard case .cuda(let index) = self else { return nil }
    if !shimHasCUDA {
      return "this cxr runs on a CPU-only libtorch (libcxt.so was built without CUDA); to use a GPU, "
        + "rebuild the shim against a CUDA PyTorch (TORCH_DIR=.../torch make shim; README, \"libtorch builds\")"
    }
    if !cudaAvailable || deviceCount == 0 {
      return "this is a CUDA build of libtorch, but it sees no CUDA device (no GPU visible, or no driver: "
        + "check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    }
    if index >= deviceCount {
      return "\(self) does not exist: this machine has \(deviceCount) CUDA device(s), cuda:0 to cuda:\(deviceCount - 1)"
    }
    return nil
  }

  /// `problem(shimHasCUDA:cudaAvailable:deviceCount:)` for this process's libtorch.
  public var problem: String? {
    guard isCUDA else { return nil }
    return problem(shimHasCUDA: Runtime.shimHasCUDA, cudaAvailable: Runtime.cudaAvailable,
                   deviceCount: Runtime.cudaDeviceCount)
  }

  /// What `auto` means: the first CUDA device when there is one, else the CPU. `note` is one
  /// line to show when a CUDA build of libtorch falls back to the CPU (a GPU was probably
  /// expected); a CPU-only build runs on the CPU without a note, as it always does.
  public static func auto(shimHasCUDA: Bool, cudaAvailable: Bool, deviceCount: Int) -> (device: Device, note: String?) {
    if shimHasCUDA && cudaAvailable && deviceCount > 0 { return (.cuda(0), nil) }
    if shimHasCUDA {
      return (.cpu, "device auto: this CUDA build of libtorch sees no CUDA device (check nvidia-smi and "
        + "CUDA_VISIBLE_DEVICES); running on the CPU")
    }
    return (.cpu, nil)
  }

  /// `auto(shimHasCUDA:cudaAvailable:deviceCount:)` for this process's libtorch.
  public static var auto: (device: Device, note: String?) {
    auto(shimHasCUDA: Runtime.shimHasCUDA, cudaAvailable: Runtime.cudaAvailable, deviceCount: Runtime.cudaDeviceCount)
  }
}
