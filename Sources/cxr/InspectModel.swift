import ArgumentParser
import Bench
import Foundation
import Models
import Torch

struct InspectModel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "model",
    abstract: "Parameter count and per-stage summary of a ConvNeXt; optionally time training steps.")

  @Option(help: "Architecture: \(ConvNeXtConfig.architectures.joined(separator: ", ")) (or atto ... large).")
  var arch: String
  @Option(help: "Outputs of the classifier head.")
  var classes: Int = 1000
  @Option(name: .customLong("in-chans"), help: "Input channels: 1 (grayscale) or 3.")
  var inChans: Int = 3
  @Option(help: "Square input size used for the feature-map sizes (and for timing).")
  var size: Int = 224
  @Option(help: "Time this many forward+backward training steps on random input and print them as JSON (0: no timing).")
  var timeSteps: Int = 0
  @Option(help: "Batch size for timing.")
  var batch: Int = 8
  @Option(help: "Untimed steps before timing.")
  var warmup: Int = 2
  @Option(help: "CPU threads for libtorch (default: libtorch's choice).")
  var threads: Int?
  @Option(help: "Device for timing: cpu, cuda, cuda:N.")
  var device: String = "cpu"
  @Flag(help: "Time with weights and input in channels_last memory format.")
  var channelsLast = false
  @Flag(help: ArgumentHelp("After the warmup, print 'ready', then run one timed step per line read from standard input and print its milliseconds.",
                           discussion: "Lets a benchmark driver interleave steps with another implementation (scripts/bench/model.sh)."))
  var stepOnStdin = false

  func validate() throws {
    if timeSteps < 0 || warmup < 0 { throw ValidationError("--time-steps and --warmup must not be negative") }
    if batch < 1 { throw ValidationError("--batch must be at least 1") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
  }

  func run() throws {
    let config = try ConvNeXtConfig.named(arch, numClasses: classes, inChannels: inChans)
    print(try ModelSummary(config, inputSize: size).text)
    guard timeSteps > 0 || stepOnStdin else { return }
    if let threads { try Runtime.setThreads(threads) }
    let dev = try usableDevice(device)
    let timer = try StepTimer(config: config, batch: batch, size: size, device: dev, channelsLast: channelsLast)
    if stepOnStdin {
      for _ in 0..<warmup { try timer.step() }
      print("ready")
      fflush(stdout)
      while readLine() != nil {
        print(String(format: "%.3f", try timer.timedStep() * 1000))
        fflush(stdout)
      }
      return
    }
    let times = try timer.run(steps: timeSteps, warmup: warmup)
    let sorted = times.sorted()
    try printJSONLine(ModelStepRecord(arch: config.arch, batch: batch, size: size, inChans: inChans, classes: classes,
                                      threads: Runtime.threads, device: dev.description, channelsLast: channelsLast,
                                      steps: timeSteps, msMedian: (sorted[sorted.count / 2] * 1000).rounded3,
                                      msMin: (sorted[0] * 1000).rounded3))
  }
}

/// Times one training step: forward, binary cross-entropy on random targets, backward,
/// gradients cleared (set to none) before each step, as `optimizer.zero_grad()` does.
struct StepTimer {
  let model: ConvNeXt
  let x: Tensor, target: Tensor
  let device: Device

  init(config: ConvNeXtConfig, batch: Int, size: Int, device: Device, channelsLast: Bool) throws {
    let g = try Generator(seed: 0)
    model = try ConvNeXt(config, generator: g)
    try model.to(device)
    if channelsLast { try model.toChannelsLast() }
    model.setTraining(true)
    var input = try Tensor.randn([batch, config.inChannels, size, size], generator: g).to(device)
    if channelsLast { input = try input.contiguous(.channelsLast) }
    x = input
    target = try Tensor.rand([batch, config.numClasses], generator: g).to(device)
    self.device = device
  }

  func step() throws {
    try model.zeroGrad()
    let loss = try F.binaryCrossEntropyWithLogits(model(x), target)
    try loss.backward()
    try Runtime.synchronize(device)
  }

  /// Seconds of one step.
  func timedStep() throws -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try step()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
  }

  /// Seconds per timed step.
  func run(steps: Int, warmup: Int) throws -> [Double] {
    for _ in 0..<warmup { try step() }
    return try (0..<steps).map { _ in try timedStep() }
  }
}

private extension Double {
  var rounded3: Double { (self * 1000).rounded() / 1000 }
}

/// `cxr inspect model --time-steps`'s line (scripts/bench/model_timm.py prints the timm side's alike).
struct ModelStepRecord: Codable {
  var bench = "model_step", impl = "cxr"
  var arch: String, batch: Int, size: Int, inChans: Int, classes: Int, threads: Int, device: String
  var channelsLast: Bool, steps: Int, msMedian: Double, msMin: Double
  enum CodingKeys: String, CodingKey {
    case bench, impl, arch, batch, size, inChans = "in_chans", classes, threads, device
    case channelsLast = "channels_last", steps, msMedian = "ms_median", msMin = "ms_min"
  }
}
