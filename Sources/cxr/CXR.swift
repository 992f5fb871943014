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
    var list: [ParsableCommand.Type] = [Info.self, RunCommand.self, TrainCommand.self, PredictCommand.self, EvaluateCommand.self,
                                        AgreeCommand.self, LabelsCommand.self, ExportCommand.self, ConfigCommand.self, Bench.self, Inspect.self, CacheCommand.self, SynthCommand.self]
    list.append(AnnotateCommand.self)
    #if !CXR_NO_LABEL  // the GPU bundle is built without the LLM labeller (Package.swift)
    list.append(LabelCommand.self)
    #endif
    return list
  }
}

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the libtorch version and the devices it sees.")
  func run() throws {
    print("cxr with libtorch \(Runtime.version)")
    print("shim built with CUDA: \(Runtime.shimHasCUDA ? "yes" : "no")")
    print("CUDA available: \(Runtime.cudaAvailable ? "yes (\(Runtime.cudaDeviceCount) device(s))" : "no")")
    print("CPU threads: \(Runtime.threads)")
    let backends = [ProcessGroup.Backend.gloo, .nccl].filter(ProcessGroup.isAvailable).map(\.rawValue)
    print("data-parallel training: \(backends.isEmpty ? "off (libcxt.so built without Gloo's headers: apt-get install libgloo-dev, make shim)" : backends.joined(separator: ", "))")
  }
}
