import Common
import Data
import Foundation
import TestSupport
import XCTest
@testable import Synth

/// The test set's View Position: mostly PA, AP more often for treated (tubed) and pneumothorax
/// images, a few absent; drawn from a stream of its own, written into the DICOM headers, read
/// back by the shim's header reader and the CANDID-PTX adapter.
final class SynthViewPositionTests: XCTestCase {
  func testViewsAreMostlyPAAndAPMoreOftenWithTubesAndPneumothoraces() {
    let images = SynthPlan(seed: 2, size: .medium).candid
    XCTAssertTrue(images.allSatisfy { ["PA", "AP", ""].contains($0.view) })
    func apShare(_ set: [CandidImagePlan]) -> Double {
      let known = set.filter { !$0.view.isEmpty }
      return Double(known.filter { $0.view == "AP" }.count) / Double(known.count)
    }
    let tubed = images.filter { $0.truth.chestTube != nil }
    let ptxOnly = images.filter { $0.truth.chestTube == nil && $0.truth.pneumothorax != nil }
    let plain = images.filter { $0.truth.chestTube == nil && $0.truth.pneumothorax == nil }
    // Binomial standard errors about 0.04 (tubed, ~130), 0.05 (~110) and 0.015 (~560); three allowed.
    XCTAssertEqual(apShare(tubed), SynthPlan.apShareWithChestTube, accuracy: 0.13, "\(tubed.count) tubed")
    XCTAssertEqual(apShare(ptxOnly), SynthPlan.apShareWithPneumothorax, accuracy: 0.15, "\(ptxOnly.count) pneumothorax only")
    XCTAssertEqual(apShare(plain), SynthPlan.apShare, accuracy: 0.05, "\(plain.count) others")
    XCTAssertLessThan(apShare(images), 0.5, "mostly PA")
    let blank = Double(images.filter { $0.view.isEmpty }.count) / Double(images.count)
    XCTAssertEqual(blank, SynthPlan.absentViewShare, accuracy: 0.015)
    XCTAssertGreaterThan(blank, 0, "a few headers lack it, as in real data")
  }

  /// The view comes from a stream of its own: the files of a seed other than the View Position
  /// bytes are pinned (hashes of `cxr synth --size tiny --seed 0`): the reports, masks and labels,
  /// and every DICOM's pixel data element. First pinned at 5a0a6c7, before views followed the
  /// truth; re-pinned when chest tubes came to follow the pneumothorax's size (a tube's presence
  /// changes the plan stream's later draws) and the sizes reached smaller pneumothoraces.
  func testTheViewDrawLeavesTheImagesAndLabelsOfASeedAsTheyWere() throws {
    let dir = try TestEnv.scratch("synth-view-stream")
    defer { try? FileManager.default.removeItem(at: dir) }
    let paths = try SyntheticStudy.generate(to: dir, seed: 0, size: .tiny)
    let expected = [
      "candid/Pneumothorax_reports.csv": "bfc19a8c1b14998e7969678db997c78a7003dd24c561816bc8787e118ed5b666",
      "candid/acute_rib_fracture.csv": "28cafecb6675b16eeb42c5c5e690a0516829a2fa1738735f7b13e633017b6fb1",
      "candid/chest_tube.csv": "8bfde029489c8b6047f76d0a6dfdf5fb5fceb588b06ba34f9005b1fc14d3311e",
      "labels/candid/synthetic-truth.csv": "b464fbebeee4bdd2041034d029d1698ffd9881bda07ab217d6121b425656cb07",
      "labels/mimic/synthetic-truth.csv": "26b7058cb110f3f7be139f5e301c4d2cd968cd5c7aa958ad3ac576033356e91b",
      "mimic/mimic-cxr-2.0.0-metadata.csv.gz": "cb373ff312d6c17b5aeea96f7ef7f2264a1e19d89e6690bbf9dbf6a7409d0b2e",
    ]
    for (file, hash) in expected {
      XCTAssertEqual(try SHA256.file(dir.appendingPathComponent(file)), hash, file)
    }
    // Each DICOM's PixelData element (tag, VR, length, pixels) in the reports' order.
    let reports = try CSVTable.read(paths.candidReports)
    var ids: [String] = []
    for row in reports.rows where !ids.contains(row[0]) { ids.append(row[0]) }
    var pixels = SHA256()
    for id in ids {
      let bytes = [UInt8](try Data(contentsOf: paths.candidRoot.appendingPathComponent("dataset/\(id).dcm")))
      let tag: [UInt8] = [0xE0, 0x7F, 0x10, 0x00]
      let at = try XCTUnwrap(bytes.indices.dropLast(3).last { Array(bytes[$0..<($0 + 4)]) == tag }, id)
      pixels.update(bytes[at...])
    }
    XCTAssertEqual(ids.count, 16)
    XCTAssertEqual(SHA256.hex(pixels.finalize()), "3000ceab331bf605f897cc5ab0cb10cea999a21e68a898224bd24a3cd9a63684")
  }

  func testTheHeadersCarryThePlannedViewsAndTheAdapterReadsThem() throws {
    let dir = try TestEnv.scratch("synth-view")
    defer { try? FileManager.default.removeItem(at: dir) }
    // A seed whose 16 test images include an absent view.
    let seed = try XCTUnwrap((UInt64(0)...UInt64(500)).first { s in
      SynthPlan(seed: s, size: .tiny).candid.contains { $0.view.isEmpty }
    })
    let paths = try SyntheticStudy.generate(to: dir, seed: seed, size: .tiny)
    let plan = SynthPlan(seed: seed, size: .tiny)
    let candid = CANDIDPTX(root: paths.candidRoot, maskWidth: nil, maskHeight: nil)
    let index = try candid.index()
    for record in index.records {
      let image = try XCTUnwrap(plan.candid.first { $0.sopUID == record.id })
      XCTAssertEqual(try DICOMDecoder.viewPosition(path: record.path), image.view.isEmpty ? nil : image.view, record.id)
      // Absent means no (0018,5101) element at all, not an empty one.
      let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: record.path)))
      let tag: [UInt8] = [0x18, 0x00, 0x01, 0x51]
      let hasTag = bytes.indices.dropLast(3).contains { Array(bytes[$0..<($0 + 4)]) == tag }
      if image.view.isEmpty { XCTAssertFalse(hasTag, record.id) }
    }
    let views = candid.viewPositions(index)
    XCTAssertEqual(views.values, Dictionary(uniqueKeysWithValues: plan.candid.filter { !$0.view.isEmpty }.map { ($0.sopUID, $0.view) }))
    XCTAssertEqual(views.blank, plan.candid.filter { $0.view.isEmpty }.count)
    XCTAssertEqual(views.unreadable, 0)
    XCTAssertNotNil(views.note, "the absent views are noted")
  }

  func testWriterLeavesOutAnEmptyViewAndReaderTrimsABlankOne() throws {
    let dir = try TestEnv.scratch("synth-view-writer")
    defer { try? FileManager.default.removeItem(at: dir) }
    for (view, expected) in [("AP", "AP"), ("LL", "LL"), ("", nil), ("  ", nil)] as [(String, String?)] {
      let url = dir.appendingPathComponent("v\(view.count)\(view).dcm")
      try DicomWriter.write(DicomImage(rows: 2, columns: 2, bitsAllocated: 8, bitsStored: 8, photometric: .monochrome2,
                                       pixels: [0, 1, 2, 3], sopInstanceUID: "2.25.9", studyInstanceUID: "2.25.10",
                                       seriesInstanceUID: "2.25.11", patientID: "SYNTH9", viewPosition: view), to: url)
      XCTAssertEqual(try DICOMDecoder.viewPosition(path: url.path), expected, "'\(view)'")
      XCTAssertEqual(try DICOMDecoder.decode(path: url.path).image.floats, [0, 1, 2, 3], "'\(view)': the pixels read as before")
    }
  }
}
