import Foundation
import Torch

/// Parameter counts of a ConvNeXt by part (stem, stages, head) and the feature-map size each
/// part produces for a square input, for `cxr inspect model`.
public struct ModelSummary {
  public struct Part: Equatable {
    public let name: String
    public let blocks: Int
    public let channels: Int
    /// Output [C, H, W], or [classes] for the head.
    public let output: [Int]
    public let parameters: Int
    public let tensors: Int
  }

  public let config: ConvNeXtConfig
  public let inputSize: Int
  public let parts: [Part]
  public var parameters: Int { parts.reduce(0) { $0 + $1.parameters } }
  public var tensors: Int { parts.reduce(0) { $0 + $1.tensors } }

  public init(_ config: ConvNeXtConfig, inputSize: Int = 224) throws {
    guard inputSize >= 32 else { throw ModelError("the input size must be at least 32 pixels, not \(inputSize)") }
    self.config = config
    self.inputSize = inputSize
    let model = try ConvNeXt(uninitialized: config)   // storage is never touched: counting is cheap
    let named = model.namedParameters()
    func count(_ prefix: String) -> (Int, Int) {
      let ps = named.filter { $0.0.hasPrefix(prefix) }
      return (ps.reduce(0) { $0 + $1.1.value.count }, ps.count)
    }
    var parts: [Part] = []
    var side = inputSize / 4
    let stem = count("stem.")
    parts.append(Part(name: "stem", blocks: 0, channels: config.dims[0], output: [config.dims[0], side, side],
                      parameters: stem.0, tensors: stem.1))
    for i in 0..<4 {
      if i > 0 { side /= 2 }
      let c = count("stages.\(i).")
      parts.append(Part(name: "stage \(i)", blocks: config.depths[i], channels: config.dims[i],
                        output: [config.dims[i], side, side], parameters: c.0, tensors: c.1))
    }
    let head = count("head.")
    parts.append(Part(name: "head", blocks: 0, channels: config.numClasses, output: [config.numClasses],
                      parameters: head.0, tensors: head.1))
    self.parts = parts
  }

  /// A short table, one line per part.
  public var text: String {
    let mlp = config.convMLP ? "1x1-conv MLP" : "linear MLP"
    var lines = [
      "\(config.arch): \(grouped(parameters)) parameters in \(tensors) tensors",
      "in_chans \(config.inChannels), \(config.numClasses) classes, depths \(config.depths.map(String.init).joined(separator: ",")), dims \(config.dims.map(String.init).joined(separator: ",")), \(mlp)",
      pad("part", 8) + lpad("blocks", 7) + lpad("output (\(inputSize)x\(inputSize) input)", 26) + lpad("parameters", 14),
    ]
    for p in parts {
      lines.append(pad(p.name, 8) + lpad(p.blocks > 0 ? String(p.blocks) : "-", 7)
                   + lpad(p.output.map(String.init).joined(separator: "x"), 26) + lpad(grouped(p.parameters), 14))
    }
    return lines.joined(separator: "\n")
  }
}

/// 88591464 -> "88,591,464".
public func grouped(_ n: Int) -> String {
  let s = String(n.magnitude)
  var out = ""
  for (i, ch) in s.enumerated() {
    if i > 0, (s.count - i) % 3 == 0 { out.append(",") }
    out.append(ch)
  }
  return (n < 0 ? "-" : "") + out
}

private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
