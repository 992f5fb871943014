import XCTest
@testable import Models
// Replaced by the real tests of the Models layer.
final class ModelsPlaceholderTests: XCTestCase { func testBuilds() {} }
