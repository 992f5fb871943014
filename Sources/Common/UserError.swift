/// An error a user can act on: it names the file (and line), the key or row, and what to do.
/// The one error type of that kind: `FileError`, `ConfigError`, `ModelError`, `LoaderError`,
/// `CacheError` and `LabelError` are its names in the layers. Errors that carry more than a
/// message keep their own type (`TrainError` names its setting, `ImageError` its file and
/// kind, `TorchError` is what libtorch said through the C ABI).
public struct UserError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
