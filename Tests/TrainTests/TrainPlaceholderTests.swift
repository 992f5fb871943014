import XCTest
@testable import Train
// Replaced by the real tests of the Train layer.
final class TrainPlaceholderTests: XCTestCase { func testBuilds() {} }
