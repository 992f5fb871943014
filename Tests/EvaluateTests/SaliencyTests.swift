import Foundation
@testable import Evaluate
import XCTest

/// The choice of images for the saliency section and its HTML.
final class SaliencyTests: XCTestCase {
  func testSelectsTopTruePositivesFalsePositivesAndFalseNegatives() throws {
    // p5 and p4 positive with the highest scores, n1 the highest negative, p0 the lowest positive;
    // u is left out by the reference (uncertain -> nil under the policy) and never chosen.
    let ids = ["p0", "p4", "p5", "p2", "n1", "n2", "n3", "u", "x"]
    let scores = [0.05, 0.8, 0.9, 0.3, 0.7, 0.2, 0.7, 0.99, 0.95]
    let preds = Predictions(name: "m", source: "test", ids: ids, scores: ["A": scores])
    let values: [String: [String: Double?]] = [
      "p0": ["A": 1], "p4": ["A": 1], "p5": ["A": 1], "p2": ["A": 1], "n1": ["A": 0], "n2": ["A": 0], "n3": ["A": 0], "u": ["A": -1],
    ]
    let ref = try ReferenceLabels(name: "masks", source: "test", values: values, findings: ["A"], policy: .zeros)
    let ignoreU = try ReferenceLabels(name: "masks", source: "test", values: values, findings: ["A"], policy: .ignore)
    let picks = Saliency.select(preds, reference: ignoreU, finding: "A", top: 2)
    XCTAssertEqual(picks.map(\.id), ["p5", "p4", "n1", "n3", "p0", "p2"], "ties (0.7) by id; x has no reference label")
    XCTAssertEqual(picks.map(\.kind), [.truePositive, .truePositive, .falsePositive, .falsePositive, .falseNegative, .falseNegative])
    XCTAssertEqual(picks.map(\.rank), [1, 2, 1, 2, 1, 2])
    XCTAssertEqual(picks.map(\.reference), [true, true, false, false, true, true])
    XCTAssertEqual(picks[0].probability, 0.9)
    // Under U-zeros the uncertain image is a negative, and the top false positive.
    XCTAssertEqual(Saliency.select(preds, reference: ref, finding: "A", top: 1).map(\.id), ["p5", "u", "p0"])
    XCTAssertTrue(Saliency.select(preds, reference: ref, finding: "A", top: 0).isEmpty)
    XCTAssertTrue(Saliency.select(preds, reference: ref, finding: "B", top: 3).isEmpty)
  }

  func testSectionEmbedsOverlaysAsDataURIsWithEscapedCaptions() {
    let pick = Saliency.Pick(kind: .falsePositive, rank: 1, id: "img<1>", probability: 0.91234, reference: false)
    var f = Saliency.Figure(model: "truth", weights: "/runs/x/best.safetensors", weightsSHA256: String(repeating: "ab", count: 32),
                            finding: "Pneumothorax", pick: pick, referenceName: "masks", layer: "stages.3", overlay: "a.png", peak: [3, 4])
    XCTAssertEqual(Saliency.html([f]), "", "no PNG, no section")
    f.png = Data([0x89, 0x50, 0x4E, 0x47])
    let html = Saliency.html([f])
    XCTAssertTrue(html.contains("<h2>Saliency (Grad-CAM)</h2>"))
    XCTAssertTrue(html.contains("src=\"data:image/png;base64,iVBORw==\""))
    XCTAssertTrue(html.contains("truth · Pneumothorax · img&lt;1&gt; · p = 0.912 · masks: negative · weights best.safetensors (SHA-256 abababababab…)"), html)
    XCTAssertTrue(html.contains(Saliency.Kind.falsePositive.title))
    // The manifest's form leaves the PNG bytes out.
    let json = String(decoding: try! JSONEncoder().encode(f), as: UTF8.self)
    XCTAssertFalse(json.contains("\"png\""), json)
    XCTAssertEqual(try JSONDecoder().decode(Saliency.Figure.self, from: Data(json.utf8)).png, nil)
  }
}
