import ArgumentParser
import Foundation
import Models
import Torch

/// `cxr bench forward`: the cxr side of the forward-parity check with timm
/// (scripts/bench/gpu_forward.py). Loads timm-named weights, runs them on the tensor "input" of
/// a safetensors file through the Predictor that `cxr predict` uses (bf16 autocast and
/// channels_last on CUDA, float32 on the CPU) and writes the logits, float32, as "logits".
struct BenchForward: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "forward",
    abstract: "One forward pass of timm-named weights on a saved input; writes the logits (parity check with timm).",
    discussion: """
      python3 scripts/bench/gpu_forward.py prepare DIR --arch A ...   (weights, input, timm's logits)
      cxr bench forward --arch A --weights DIR/weights.safetensors --input DIR/input.safetensors --output DIR/cxr.safetensors
      python3 scripts/bench/gpu_forward.py compare DIR DIR/cxr.safetensors
      Prints one JSON line; its images_per_s is of this one cold call (use bench predict for throughput).
      """)
  @Option(help: "ConvNeXt architecture of the weights.") var arch: String
  @Option(help: "Weights with timm's names (safetensors).") var weights: String
  @Option(help: "Safetensors file holding \"input\": images [batch, channels, height, width].") var input: String
  @Option(help: "Safetensors file to write with \"logits\" [batch, outputs], float32.") var output: String
  @Option(help: "Names of the head's outputs, one per output (A,B).") var findings = BenchModel.findings.joined(separator: ",")
  @Option(help: "cpu, cuda or cuda:N.") var device = "cuda"

  func run() throws {
    let dev = try Device(parsing: device)
    let loaded = try ConvNeXt.load(checkpoint: URL(fileURLWithPath: weights), arch: arch,
                                   findings: findings.split(separator: ",").map(String.init))
    let x = try SafeTensorsFile(URL(fileURLWithPath: input)).tensor("input")
    let predictor = try Predictor(loaded, on: dev)
    try Runtime.synchronize(dev)
    let t0 = DispatchTime.now().uptimeNanoseconds
    let logits = try predictor.logits(x)
    try Runtime.synchronize(dev)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    try SafeTensors.write([("logits", try logits.to(.cpu, dtype: .float32))], to: URL(fileURLWithPath: output))
    try printJSONLine(ForwardRecord(arch: loaded.model.config.arch, device: dev.description, inputShape: x.shape,
                                    bf16: predictor.autocast == .bfloat16, channelsLast: predictor.channelsLast,
                                    adaptations: loaded.adaptations, output: output, forwardMs: seconds * 1000,
                                    imagesPerS: imagesPerSecond(x.shape.first ?? 0, seconds)))
  }
}

/// `cxr bench forward`'s line (the forward parity check and scripts/gpu-check.sh read it).
struct ForwardRecord: Codable {
  var check = "forward", impl = "cxr"
  var arch: String, device: String, inputShape: [Int], bf16: Bool, channelsLast: Bool, adaptations: [String]
  var output: String, forwardMs: Double, imagesPerS: Double
  enum CodingKeys: String, CodingKey {
    case check, impl, arch, device, inputShape = "input_shape", bf16, channelsLast = "channels_last", adaptations
    case output, forwardMs = "forward_ms", imagesPerS = "images_per_s"
  }
}
