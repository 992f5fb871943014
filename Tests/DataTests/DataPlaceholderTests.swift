import XCTest
@testable import Data
// Replaced by the real tests of the Data layer.
final class DataPlaceholderTests: XCTestCase { func testBuilds() {} }
