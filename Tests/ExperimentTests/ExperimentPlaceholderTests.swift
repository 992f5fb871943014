import XCTest
@testable import Experiment
// Replaced by the real tests of the Experiment layer.
final class ExperimentPlaceholderTests: XCTestCase { func testBuilds() {} }
