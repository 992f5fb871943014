import Train
import Torch

/// A small conv classifier for tests and the CPU benchmark until ConvNeXt (Models layer) is
/// merged: conv 3x3/2 -> GELU -> conv 3x3/2 -> GELU -> global average pool -> channel scale
/// `gamma` -> dropout (default generator; 0 by default) -> linear. Parameter names follow PyTorch `state_dict` keys of the equivalent
/// `nn.Module` (see scripts/bench/train_reference.py).
public final class SmallConvNet: Classifier {
  public let stem: Parameter, stemBias: Parameter
  public let conv: Parameter, convBias: Parameter
  public let gamma: Parameter
  public let head: Parameter, headBias: Parameter
  private var training = true
  public let dropout: Double

  /// Weights ~ N(0, 2/fan_in) (He), biases 0, gamma 1, from a seeded generator.
  public init(inChannels: Int = 1, width: Int = 16, classes: Int, dropout: Double = 0, seed: UInt64 = 0) throws {
    self.dropout = dropout
    let g = try Generator(seed: seed)
    func he(_ shape: [Int], fanIn: Int) throws -> Parameter {
      try Parameter(Tensor.randn(shape, generator: g) * (2.0 / Double(fanIn)).squareRoot())
    }
    stem = try he([width, inChannels, 3, 3], fanIn: inChannels * 9)
    stemBias = try Parameter(Tensor.zeros([width]))
    conv = try he([2 * width, width, 3, 3], fanIn: width * 9)
    convBias = try Parameter(Tensor.zeros([2 * width]))
    gamma = try Parameter(Tensor.ones([2 * width]))
    head = try he([classes, 2 * width], fanIn: 2 * width)
    headBias = try Parameter(Tensor.zeros([classes]))
  }

  public func namedParameters(prefix: String) -> [(String, Parameter)] {
    [("stem.weight", stem), ("stem.bias", stemBias), ("conv.weight", conv), ("conv.bias", convBias),
     ("gamma", gamma), ("head.weight", head), ("head.bias", headBias)].map { (prefix + $0.0, $0.1) }
  }
  public func setTraining(_ on: Bool) { training = on }

  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    var h = try F.conv2d(x, weight: stem.value, bias: stemBias.value, stride: 2, padding: 1).gelu()
    h = try F.conv2d(h, weight: conv.value, bias: convBias.value, stride: 2, padding: 1).gelu()
    h = try F.adaptiveAvgPool2d(h, 1, 1).flatten(1) * gamma.value
    if dropout > 0 { h = try F.dropout(h, p: dropout, training: training) }
    return try F.linear(h, weight: head.value, bias: headBias.value)
  }
}
