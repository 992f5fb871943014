import XCTest
@testable import Label
// Replaced by the real tests of the Label layer.
final class LabelPlaceholderTests: XCTestCase { func testBuilds() {} }
