import Data
import Foundation
import Models
import Torch

// The batch seam (`Batch`, `BatchSource`, `BatchIterator`) belongs to the Data layer; the loop
// consumes it.

/// What the loop trains: a module that maps images [B,C,H,W] to logits [B,K].
/// ConvNeXt (Models layer) conforms at merge; tests use small conv nets.
public protocol Classifier: Module {
  func callAsFunction(_ x: Tensor) throws -> Tensor
  /// The generator the model's own randomness (drop path, dropout) draws from, if it has one;
  /// a checkpoint keeps its state so a resumed run draws what an uninterrupted one would.
  var generator: Generator? { get }
}

extension Classifier {
  public var generator: Generator? { nil }
}

/// ConvNeXt (Models layer) is what the loop trains.
extension ConvNeXt: Classifier {}
