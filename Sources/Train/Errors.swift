/// A training error a user can act on: the message names the setting, step or file.
public struct TrainError: Error, CustomStringConvertible, Equatable {
  public let message: String
  /// The setting the message is about (`train.epochs`), when it is about one: the config layer
  /// puts the file and line of that key in front.
  public let key: String?
  public init(_ message: String, key: String? = nil) { self.message = message; self.key = key }
  public var description: String { message }
}
