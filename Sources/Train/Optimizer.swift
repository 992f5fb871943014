import Foundation
import Torch

/// What the loop needs of an optimizer: the rate it sets each step, the step itself, and its
/// state for checkpoints (stored under `optimizer/<name>` in `state.safetensors`). Lion is the
/// study's; another optimizer plugs in here without touching the loop.
public protocol Optimizer: AnyObject {
  /// The learning rate of the next step (the schedule sets it before each step).
  var lr: Double { get set }
  /// One update from the parameters' gradients.
  func step() throws
  /// The state tensors keyed by parameter name (e.g. Lion's `exp_avg`).
  func stateDict() -> StateDict
  /// Restores what `stateDict` gave; unknown names or wrong shapes are errors naming the key.
  func load(_ state: StateDict) throws
}

extension Lion: Optimizer {}
