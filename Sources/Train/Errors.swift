/// A training error a user can act on: the message names the setting, step or file.
public struct TrainError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
