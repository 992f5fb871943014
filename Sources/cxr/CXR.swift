import ArgumentParser
import Bench
import Foundation
import Torch

@main
struct CXR: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cxr",
    abstract: "Train chest X-ray classifiers from report-extracted labels, predict, evaluate.",
    subcommands: subcommands)

  /// stdout is line-buffered even into a pipe or file, so a log interleaves with stderr in the
  /// order things happened (C stdio would otherwise buffer 4 KiB of it).
  static func main() {
    setvbuf(stdout, nil, _IOLBF, 0)
    main(nil)
  }

  static var subcommands: [ParsableCommand.Type] {
    var list: [ParsableCommand.Type] = [Info.self, RunCommand.self, TrainCommand.self, PredictCommand.self, ExplainCommand.self, EvaluateCommand.self,
                                        AgreeCommand.self, LabelsCommand.self, ExportCommand.self, ConfigCommand.self, Bench.self, Inspect.self, CacheCommand.self, SynthCommand.self]
    list.append(AnnotateCommand.self)
    list.append(LabelCommand.self)
    return list
  }
}

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the libtorch cxr runs on, its kind (CPU-only or CUDA) and the devices it sees.")
  func run() throws {
    let cuda = Runtime.shimHasCUDA, available = Runtime.cudaAvailable, count = Runtime.cudaDeviceCount
    let kind = !cuda ? "CPU-only build" : (available && count > 0 ? "CUDA build, \(count) device(s)" : "CUDA build, no device")
    print("cxr with libtorch \(Runtime.version), \(kind)")
    print("libtorch: \(libtorchFile() ?? "(not found in /proc/self/maps)")")
    print("shim built with CUDA: \(cuda ? "yes" : "no")")
    print("CUDA available: \(available ? "yes (\(count) device(s))" : "no")")
    print("CPU threads: \(Runtime.threads)")
    let backends = [ProcessGroup.Backend.gloo, .nccl].filter(ProcessGroup.isAvailable).map(\.rawValue)
    let off = "off (\(ProcessGroup.glooUnavailableReason ?? "no backend"))"
    print("data-parallel training: \(backends.isEmpty ? off : backends.joined(separator: ", "))")
  }
}

/// The file of the libtorch this process runs on (its libtorch_cpu shared object, as the dynamic
/// loader mapped it), from /proc/self/maps: which of several installed libtorches (pinned wheel,
/// CUDA wheel, a distribution's package) the shim's rpath found. Read with getline: /proc files
/// report size 0, which Foundation's whole-file readers take at its word.
func libtorchFile() -> String? {
  guard let f = fopen("/proc/self/maps", "r") else { return nil }
  defer { fclose(f) }
  var line: UnsafeMutablePointer<CChar>? = nil
  var cap = 0
  defer { free(line) }
  while getline(&line, &cap, f) > 0, let line {
    let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
    guard let slash = text.firstIndex(of: "/") else { continue }
    let path = String(text[slash...])
    if (path as NSString).lastPathComponent.hasPrefix("libtorch_cpu.so") { return path }
  }
  return nil
}

/// A `--device` value that this process can use, or one error naming the option and what to do
/// (a CUDA device on a CPU-only libtorch, or on a CUDA build that sees no GPU).
func usableDevice(_ text: String, option: String = "--device") throws -> Device {
  let d: Device
  do { d = try Device(parsing: text) } catch let e as TorchError { throw ValidationError("\(option): \(e.message)") }
  if let problem = d.problem { throw ValidationError("\(option) \(text) cannot be used: \(problem). Use \(option) cpu") }
  return d
}
