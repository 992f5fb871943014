import Common
import Data
import Foundation
import TestSupport
import XCTest
@testable import Synth

/// Chest tubes: drawn where the truth has one, mostly with pneumothoraces (as in real data, in
/// training and test alike), written to chest_tube.csv in CANDID-PTX's RLE, named in the reports.
final class SynthChestTubeTests: XCTestCase {
  func testTheChanceOfATubeFallsWithThePneumothoraxSize() {
    let sizes = PneumothoraxSign.collapseRange
    XCTAssertEqual(SynthPlan.chestTubeChance(PneumothoraxSign(side: 0, collapse: sizes.lowerBound)), 0.85, accuracy: 1e-12, "the largest")
    XCTAssertEqual(SynthPlan.chestTubeChance(PneumothoraxSign(side: 1, collapse: sizes.upperBound)), 0.15, accuracy: 1e-12, "the smallest")
    XCTAssertEqual(SynthPlan.chestTubeChance(PneumothoraxSign(side: 0, collapse: (sizes.lowerBound + sizes.upperBound) / 2)), 0.5, accuracy: 1e-12)
    XCTAssertEqual(SynthPlan.chestTubeWithPneumothorax, 0.5, accuracy: 1e-12, "half of them on average")
  }

  func testTubesFollowPneumothoracesAtThePlannedRateInTrainingAndTest() {
    let plan = SynthPlan(seed: 2, size: .medium)
    let sets: [(String, [ReportTruth])] = [("training", plan.mimic.map(\.truth)), ("test", plan.candid.map(\.truth))]
    for (name, truths) in sets {
      let withPTX = truths.filter { $0.pneumothorax != nil }, without = truths.filter { $0.pneumothorax == nil }
      let rateWith = Double(withPTX.filter { $0.chestTube != nil }.count) / Double(withPTX.count)
      let rateWithout = Double(without.filter { $0.chestTube != nil }.count) / Double(without.count)
      // Binomial standard errors: about 0.02-0.05 with and 0.005-0.01 without; three of them allowed.
      XCTAssertEqual(rateWith, SynthPlan.chestTubeWithPneumothorax, accuracy: 0.12, "\(name): \(withPTX.count) with pneumothorax")
      XCTAssertEqual(rateWithout, SynthPlan.chestTubeWithoutPneumothorax, accuracy: 0.025, "\(name): \(without.count) without")
      XCTAssertGreaterThan(without.filter { $0.chestTube != nil }.count, 0, "\(name): rarely, not never, without a pneumothorax")
      // Large pneumothoraces are drained, small ones watched: the chance falls linearly with the
      // size, so the larger half of the drawn sizes has a tube about 0.675 of the time and the
      // smaller half about 0.325 (the means of the line over each half).
      let middle = (PneumothoraxSign.collapseRange.lowerBound + PneumothoraxSign.collapseRange.upperBound) / 2
      let large = withPTX.filter { $0.pneumothorax!.collapse < middle }, small = withPTX.filter { $0.pneumothorax!.collapse >= middle }
      let rateLarge = Double(large.filter { $0.chestTube != nil }.count) / Double(large.count)
      let rateSmall = Double(small.filter { $0.chestTube != nil }.count) / Double(small.count)
      XCTAssertEqual(rateLarge, 0.675, accuracy: 0.15, "\(name): \(large.count) larger pneumothoraces")
      XCTAssertEqual(rateSmall, 0.325, accuracy: 0.15, "\(name): \(small.count) smaller pneumothoraces")
      XCTAssertGreaterThan(rateLarge, rateSmall + 0.15, "\(name): the larger ones are the drained ones")
      for t in truths where t.chestTube != nil {
        XCTAssertTrue(t.present.contains("Support Devices"), "a tube is a support device")
        if let p = t.pneumothorax { XCTAssertEqual(t.chestTube?.side, p.side, "the tube treats the pneumothorax on its side") }
      }
    }
    // Training images carry the tube on frontal views only (the lateral renderer draws no sign).
    for study in plan.mimic {
      for image in study.images {
        XCTAssertEqual(image.spec.chestTube, image.view == "LATERAL" ? nil : study.truth.chestTube)
      }
    }
    for image in plan.candid {
      XCTAssertEqual(image.spec.chestTube, image.truth.chestTube)
      XCTAssertEqual(image.report.contains("chest tube is in place"), image.truth.chestTube != nil, image.report)
    }
  }

  func testTubeIsABrightLineOnItsSideFromTheChestWallToTheApex() {
    let w = 128, h = 140
    for (seed, side) in [(UInt64(4), 0), (9, 1)] {
      let tube = ChestTubeSign(side: side, entry: 0.4, tip: 0.7)
      let plain = ChestRenderer.render(ImageSpec(width: w, height: h, lateral: false, pneumothorax: nil, fracture: nil, seed: seed))
      let drawn = ChestRenderer.render(ImageSpec(width: w, height: h, lateral: false, pneumothorax: nil, fracture: nil,
                                                 chestTube: tube, seed: seed))
      let inside = drawn.chestTubeMask.indices.filter { drawn.chestTubeMask[$0] == 1 }
      XCTAssertGreaterThan(inside.count, 100, "seed \(seed)")
      XCTAssertLessThan(inside.count, w * h / 20, "seed \(seed): a thin line")
      XCTAssertTrue(inside.allSatisfy { ($0 % w < w / 2) == (side == 0) }, "seed \(seed): on its side")
      // Outside the mask nothing changed (the noise is drawn alike); inside it is brighter.
      for i in drawn.pixels.indices where drawn.chestTubeMask[i] == 0 { XCTAssertEqual(drawn.pixels[i], plain.pixels[i]) }
      let gain = inside.map { Double(drawn.pixels[$0] - plain.pixels[$0]) }.reduce(0, +) / Double(inside.count)
      XCTAssertGreaterThan(gain, 0.2, "seed \(seed)")
      // From low on the chest wall (outside the lung) up to the apex.
      let rows = inside.map { $0 / w }
      XCTAssertLessThan(Double(rows.min()!) / Double(h), 0.3, "seed \(seed): the tip reaches the apex")
      XCTAssertGreaterThan(Double(rows.max()!) / Double(h), 0.55, "seed \(seed): it enters low")
    }
  }

  func testChestTubeCSVDecodesToTheDrawnTubesAndTheAdapterReadsIt() throws {
    // A seed whose tiny test set holds at least one tube (the plan alone is cheap).
    let seed = try XCTUnwrap((UInt64(1)...UInt64(200)).first { s in
      SynthPlan(seed: s, size: .tiny).candid.contains { $0.truth.chestTube != nil }
    })
    let root = try TestEnv.scratch("synth-tubes")
    defer { try? FileManager.default.removeItem(at: root) }
    let paths = try SyntheticStudy.generate(to: root, seed: seed, size: .tiny)
    let plan = SynthPlan(seed: seed, size: .tiny)
    let table = try CSVTable.read(paths.candidChestTubes)
    XCTAssertEqual(table.header, ["anon_SOPUID", "annotation_id", "mask_rle"])
    XCTAssertEqual(Set(table.rows.map { $0[0] }), Set(plan.candid.filter { $0.truth.chestTube != nil }.map(\.sopUID)))
    for row in table.rows {
      let image = try XCTUnwrap(plan.candid.first { $0.sopUID == row[0] })
      let mask = try RLE.decode(row[2], width: image.spec.width, height: image.spec.height)
      XCTAssertEqual(mask.encoding, .relative, "CANDID-PTX's (SIIM) reading")
      let rendered = ChestRenderer.render(image.spec)
      XCTAssertEqual(mask.pixels, rendered.chestTubeMask, "the mask is the drawn tube")
      var plainSpec = image.spec
      plainSpec.chestTube = nil
      let plain = ChestRenderer.render(plainSpec)
      let on = mask.pixels.indices.filter { mask.pixels[$0] == 1 }
      XCTAssertGreaterThan(on.filter { rendered.pixels[$0] > plain.pixels[$0] }.count, on.count * 9 / 10, "the mask lies on the bright tube")
    }
    let candid = CANDIDPTX(root: paths.candidRoot, maskWidth: nil, maskHeight: nil)
    let tubes = try XCTUnwrap(candid.chestTubeAttribute(try candid.index()))
    XCTAssertEqual(tubes.count, plan.candid.count)
    XCTAssertEqual(Set(tubes.filter { $0.value == "yes" }.keys), Set(table.rows.map { $0[0] }))
  }
}
