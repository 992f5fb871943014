import Torch
import XCTest

/// `Generator.defaultGenerator` (cxt_generator_default) shares the generator that ops use when
/// given none, so saving and restoring its state replays their draws.
final class DefaultGeneratorTests: XCTestCase {
  func testDefaultGeneratorStateReplaysDrawsOfOpsWithoutAGenerator() throws {
    let g = try Generator.defaultGenerator(.cpu)
    try g.setState(Generator(seed: 5).state())
    let a = try Tensor.rand([6])
    XCTAssertTrue(try a.equal(Tensor.rand([6], generator: Generator(seed: 5))))
    let saved = try g.state()
    let b = try F.dropout(Tensor.ones([64]), p: 0.5, training: true)
    try Generator.defaultGenerator().setState(saved)
    XCTAssertTrue(try F.dropout(Tensor.ones([64]), p: 0.5, training: true).equal(b))
  }
}
