import XCTest
@testable import Evaluate
// Replaced by the real tests of the Evaluate layer.
final class EvaluatePlaceholderTests: XCTestCase { func testBuilds() {} }
