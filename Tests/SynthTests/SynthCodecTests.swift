import Data
import Common
import Foundation
import TestSupport
import XCTest
@testable import Synth

/// The synthetic study's encoders, read back by the reference readers (pydicom, PIL) and
/// by SIIM's RLE decoding.
final class SynthCodecTests: XCTestCase {
  static let uidA = "2.25.1234567890123456789", uidB = "2.25.42", uidC = "1.2.3.4.5"

  func testDicomFilesReadByPydicomWithTheirPixelsRescaleAndPhotometric() throws {
    let dir = try TestEnv.scratch("synth-dicom")
    defer { try? FileManager.default.removeItem(at: dir) }
    let images = [
      DicomImage(rows: 3, columns: 5, bitsAllocated: 16, bitsStored: 12, photometric: .monochrome1,
                 rescaleSlope: 2, rescaleIntercept: -100, pixels: (0..<15).map { UInt16($0 * 273) },
                 sopInstanceUID: Self.uidA, studyInstanceUID: Self.uidB, seriesInstanceUID: Self.uidC, patientID: "SYNTH1"),
      DicomImage(rows: 3, columns: 3, bitsAllocated: 8, bitsStored: 8, photometric: .monochrome2,
                 pixels: [0, 1, 2, 50, 100, 150, 200, 254, 255], sopInstanceUID: "2.25.7",
                 studyInstanceUID: Self.uidB, seriesInstanceUID: Self.uidC, patientID: "SYNTH2", viewPosition: "AP"),
      DicomImage(rows: 2, columns: 2, bitsAllocated: 16, bitsStored: 16, photometric: .monochrome2,
                 rescaleSlope: 0.5, rescaleIntercept: -1024, pixels: [0, 1, 65534, 65535], sopInstanceUID: "2.25.8",
                 studyInstanceUID: Self.uidB, seriesInstanceUID: Self.uidC, patientID: "SYNTH3"),
    ]
    var files: [String] = []
    for (i, image) in images.enumerated() {
      let url = dir.appendingPathComponent("\(i).dcm")
      try DicomWriter.write(image, to: url)
      files.append(url.path)
    }
    let out = try Python.json("""
      import pydicom, struct
      from pydicom.pixels import apply_modality_lut
      res = []
      for path in sys.argv[1:]:
          raw = open(path, "rb").read()
          # File meta group: walk its explicit-VR elements to check the declared group length.
          declared = struct.unpack("<I", raw[140:144])[0]
          pos = 144
          while struct.unpack("<H", raw[pos:pos+2])[0] == 2:
              vr = raw[pos+4:pos+6]
              if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ"):
                  pos += 12 + struct.unpack("<I", raw[pos+8:pos+12])[0]
              else:
                  pos += 8 + struct.unpack("<H", raw[pos+6:pos+8])[0]
          ds = pydicom.dcmread(path)  # without force: needs the preamble and DICM
          a = ds.pixel_array
          res.append({"preamble": ds.preamble == b"\\0" * 128, "declared": declared, "actual": pos - 144,
                      "ts": str(ds.file_meta.TransferSyntaxUID), "msop": str(ds.file_meta.MediaStorageSOPInstanceUID),
                      "sop": str(ds.SOPInstanceUID), "study": str(ds.StudyInstanceUID), "patient": str(ds.PatientID),
                      "rows": ds.Rows, "cols": ds.Columns, "shape": list(a.shape), "dtype": str(a.dtype),
                      "pixels": a.ravel().tolist(), "modality": apply_modality_lut(a, ds).ravel().tolist(),
                      "photometric": ds.PhotometricInterpretation, "bits": [ds.BitsAllocated, ds.BitsStored, ds.HighBit],
                      "repr": ds.PixelRepresentation, "spp": ds.SamplesPerPixel,
                      "slope": float(ds.RescaleSlope), "intercept": float(ds.RescaleIntercept),
                      "comments": str(ds.ImageComments), "view": str(ds.ViewPosition)})
      print(json.dumps(res))
      """, args: files) as! [[String: Any]]
    XCTAssertEqual(out.count, images.count)
    for (image, r) in zip(images, out) {
      XCTAssertEqual(r["preamble"] as? Bool, true)
      XCTAssertEqual(r["declared"] as? Int, r["actual"] as? Int, "file meta group length")
      XCTAssertEqual(r["ts"] as? String, "1.2.840.10008.1.2.1")
      XCTAssertEqual(r["msop"] as? String, image.sopInstanceUID)
      XCTAssertEqual(r["sop"] as? String, image.sopInstanceUID)
      XCTAssertEqual(r["study"] as? String, image.studyInstanceUID)
      XCTAssertEqual(r["patient"] as? String, image.patientID)
      XCTAssertEqual(r["shape"] as? [Int], [image.rows, image.columns])
      XCTAssertEqual(r["dtype"] as? String, image.bitsAllocated == 8 ? "uint8" : "uint16")
      XCTAssertEqual(r["pixels"] as? [Int], image.pixels.map(Int.init))
      XCTAssertEqual(r["modality"] as? [Double], image.pixels.map { Double($0) * image.rescaleSlope + image.rescaleIntercept })
      XCTAssertEqual(r["photometric"] as? String, image.photometric.rawValue)
      XCTAssertEqual(r["bits"] as? [Int], [image.bitsAllocated, image.bitsStored, image.bitsStored - 1])
      XCTAssertEqual(r["repr"] as? Int, 0)
      XCTAssertEqual(r["spp"] as? Int, 1)
      XCTAssertEqual(r["slope"] as? Double, image.rescaleSlope)
      XCTAssertEqual(r["intercept"] as? Double, image.rescaleIntercept)
      XCTAssertEqual(r["comments"] as? String, "SYNTHETIC image made by cxr synth; not patient data")
      XCTAssertEqual(r["view"] as? String, image.viewPosition)
    }
  }

  func testDicomWriterRefusesBadImagesWithClearMessages() throws {
    func image(_ change: (inout DicomImage) -> Void) -> DicomImage {
      var i = DicomImage(rows: 2, columns: 2, bitsAllocated: 16, bitsStored: 12, photometric: .monochrome2,
                         pixels: [0, 1, 2, 3], sopInstanceUID: Self.uidA, studyInstanceUID: Self.uidB,
                         seriesInstanceUID: Self.uidC, patientID: "P")
      change(&i)
      return i
    }
    let cases: [(DicomImage, String)] = [
      (image { $0.bitsAllocated = 12 }, "BitsAllocated 12 is not supported; use 8 or 16"),
      (image { $0.bitsStored = 17 }, "BitsStored 17 must be 1...16 (BitsAllocated)"),
      (image { $0.pixels = [0, 1, 2] }, "3 pixel values given for 2 rows x 2 columns"),
      (image { $0.pixels = [0, 4096, 2, 3] }, "pixel 1 has value 4096, above 4095, the largest that BitsStored 12 holds"),
      (image { $0.sopInstanceUID = "1.02.3" }, "SOPInstanceUID '1.02.3' is not a DICOM UID (digits and dots, at most 64 characters, no empty or zero-led parts)"),
      (image { $0.studyInstanceUID = "1..2" }, "StudyInstanceUID '1..2' is not a DICOM UID (digits and dots, at most 64 characters, no empty or zero-led parts)"),
      (image { $0.rows = 0 }, "DICOM image size 2x0 must be 1...65535 on each side"),
      (image { $0.rescaleSlope = 0 }, "RescaleSlope must not be 0"),
      (image { $0.rescaleIntercept = 0.123456789012345 }, "RescaleIntercept 0.123456789012345 does not fit a DICOM decimal string (16 characters)"),
    ]
    for (bad, message) in cases {
      XCTAssertThrowsError(try DicomWriter.encode(bad)) { XCTAssertEqual("\($0)", message) }
    }
    let dir = try TestEnv.scratch("synth-dicom-bad")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("x.dcm")
    XCTAssertThrowsError(try DicomWriter.write(image { $0.bitsAllocated = 12 }, to: url)) {
      XCTAssertEqual("\($0)", "\(url.path): BitsAllocated 12 is not supported; use 8 or 16")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
  }

  func testJPEGEncoderErrors() {
    XCTAssertThrowsError(try JPEGWriter.encodeGray([1, 2, 3], width: 2, height: 2)) {
      XCTAssertEqual("\($0)", "JPEG encoder: 3 pixels given for a 2x2 image")
    }
    XCTAssertThrowsError(try JPEGWriter.encodeGray([1, 2, 3, 4], width: 2, height: 2, quality: 0)) {
      XCTAssertEqual("\($0)", "JPEG encoder failed: quality must be 1..100")
    }
  }

  func testSmallEncodersAgainstKnownValues() {
    // Mask 3 wide x 2 high, row-major [0 1 0 / 1 1 0]: column-major order 0 1 | 1 1 | 0 0.
    XCTAssertEqual(SynthEncoding.rle([0, 1, 0, 1, 1, 0], width: 3, height: 2), "1 3")
    XCTAssertEqual(SynthEncoding.rle([1, 0, 0, 0, 0, 1], width: 3, height: 2), "0 1 4 1")
    XCTAssertEqual(SynthEncoding.rle([0, 0, 0, 0], width: 2, height: 2), "-1")
    XCTAssertEqual(SynthEncoding.crc32(Array("123456789".utf8)), 0xCBF4_3926)
    // SplitMix64 reference outputs for seed 0 (Vigna's splitmix64.c).
    var rng = SplitMix64(seed: 0)
    XCTAssertEqual([rng.next(), rng.next(), rng.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    var u = SplitMix64(seed: 5)
    for _ in 0..<20 {
      let uid = SynthEncoding.uid(&u)
      XCTAssertTrue(DicomWriter.isValidUID(uid), uid)
      XCTAssertTrue(uid.hasPrefix("2.25.") && uid.count == 44, uid)
    }
    // OpenCV equalizeHist: 4 levels, counts 1,1,1,1 -> 0, 85, 170, 255.
    XCTAssertEqual(SynthEncoding.equalize([10, 20, 30, 40]), [0, 85, 170, 255])
    XCTAssertEqual(SynthEncoding.equalize([7, 7]), [7, 7])
    XCTAssertEqual(SynthEncoding.minMax8([0.25, 0.5, 0.75]), [0, 128, 255])
  }

  /// Every generated file read back: JPEGs by PIL (size, comment, pixels near the equalized
  /// rendering), DICOMs by pydicom (stored pixels exactly, photometric, rescale), masks
  /// decoded the SIIM way (column-major) equal to the drawn signs, and the pneumothorax
  /// region dark in the displayed image.
  func testGeneratedFilesReadBackByReferenceReaders() throws {
    let root = try TestEnv.scratch("synth-read")
    defer { try? FileManager.default.removeItem(at: root) }
    let seed: UInt64 = 5
    let paths = try SyntheticStudy.generate(to: root, seed: seed, size: .tiny)
    let plan = SynthPlan(seed: seed, size: .tiny)
    let out = try Python.json("""
      import csv, numpy as np, pydicom
      from PIL import Image
      from pydicom.pixels import apply_modality_lut
      root, jpegs = sys.argv[1], sys.argv[2:]
      res = {"jpeg": {}, "dicom": {}}
      for p in jpegs:
          im = Image.open(p)
          res["jpeg"][p] = {"mode": im.mode, "size": list(im.size), "comment": im.info.get("comment", b"").decode(),
                            "pixels": np.asarray(im).ravel().tolist()}
      def rle2mask(rle, width, height):  # SIIM-ACR mask_functions.rle2mask
          mask = np.zeros(width * height, np.uint8)
          if rle.strip() == "-1":
              return mask.reshape(width, height).T
          array = np.asarray([int(x) for x in rle.split()])
          position = 0
          for start, length in zip(array[0::2], array[1::2]):
              position += start
              mask[position:position + length] = 1
              position += length
          return mask.reshape(width, height).T
      fractures = {r["anon_SOPUID"]: r["mask_rle"] for r in csv.DictReader(open(root + "/candid/acute_rib_fracture.csv"))}
      for r in csv.DictReader(open(root + "/candid/Pneumothorax_reports.csv")):
          ds = pydicom.dcmread(root + "/candid/dataset/" + r["SOPInstanceUID"] + ".dcm")
          a = ds.pixel_array.astype(np.int64)
          shown = apply_modality_lut(ds.pixel_array, ds).astype(float)
          if ds.PhotometricInterpretation == "MONOCHROME1":
              shown = shown.max() - shown
          shown = (shown - shown.min()) / (shown.max() - shown.min())
          ptx = rle2mask(r["EncodedPixels"], ds.Columns, ds.Rows)
          fx = rle2mask(fractures.get(r["SOPInstanceUID"], "-1"), ds.Columns, ds.Rows)
          res["dicom"][r["SOPInstanceUID"]] = {
              "photometric": ds.PhotometricInterpretation, "bits": [ds.BitsAllocated, ds.BitsStored],
              "slope": float(ds.RescaleSlope), "intercept": float(ds.RescaleIntercept), "shape": list(a.shape),
              "sum": int(a.sum()), "weighted": int((a.ravel() * np.arange(1, a.size + 1)).sum()),
              "comments": str(ds.ImageComments), "ptx": np.flatnonzero(ptx.ravel()).tolist(),
              "fracture": np.flatnonzero(fx.ravel()).tolist(),
              "ptxMean": float(shown[ptx == 1].mean()) if ptx.any() else None,
              "lungMean": float(shown[shown.shape[0] // 4: shown.shape[0] // 2].mean())}
      print(json.dumps(res))
      """, args: [root.path] + paths.mimicImages.map(\.path)) as! [String: [String: [String: Any]]]

    // JPEGs
    var jpegIndex = 0
    for study in plan.mimic {
      for image in study.images {
        let url = paths.mimicImages[jpegIndex]
        jpegIndex += 1
        let r = try XCTUnwrap(out["jpeg"]?[url.path])
        XCTAssertEqual(r["mode"] as? String, "L")
        XCTAssertEqual(r["size"] as? [Int], [image.spec.width, image.spec.height])
        XCTAssertEqual(r["comment"] as? String, "SYNTHETIC image made by cxr synth (seed \(seed)); not patient data")
        let expected = SynthEncoding.equalize(SynthEncoding.minMax8(ChestRenderer.render(image.spec).pixels))
        let decoded = try XCTUnwrap(r["pixels"] as? [Int])
        XCTAssertEqual(decoded.count, expected.count)
        let meanError = zip(decoded, expected).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(expected.count)
        XCTAssertLessThan(meanError, 3, "\(url.lastPathComponent): JPEG quality 95 should stay close to the equalized image")
      }
    }
    // DICOMs and masks
    var positives = (ptx: 0, fracture: 0)
    for image in plan.candid {
      let r = try XCTUnwrap(out["dicom"]?[image.sopUID])
      let rendered = ChestRenderer.render(image.spec)
      let stored = image.variant.stored(rendered.pixels).map(Int.init)
      XCTAssertEqual(r["photometric"] as? String, image.variant.photometric.rawValue)
      XCTAssertEqual(r["bits"] as? [Int], [image.variant.bitsAllocated, image.variant.bitsStored])
      XCTAssertEqual(r["slope"] as? Double, image.variant.slope)
      XCTAssertEqual(r["intercept"] as? Double, image.variant.intercept)
      XCTAssertEqual(r["shape"] as? [Int], [rendered.height, rendered.width])
      XCTAssertEqual(r["sum"] as? Int, stored.reduce(0, +))
      XCTAssertEqual(r["weighted"] as? Int, stored.enumerated().reduce(0) { $0 + ($1.offset + 1) * $1.element })
      XCTAssertEqual(r["comments"] as? String, "SYNTHETIC image made by cxr synth (seed \(seed)); not patient data")
      let ptx = rendered.pneumothoraxMask.indices.filter { rendered.pneumothoraxMask[$0] != 0 }
      let fracture = rendered.fractureMask.indices.filter { rendered.fractureMask[$0] != 0 }
      XCTAssertEqual(r["ptx"] as? [Int], ptx)
      XCTAssertEqual(r["fracture"] as? [Int], fracture)
      XCTAssertEqual(!ptx.isEmpty, image.truth.pneumothorax != nil)
      XCTAssertEqual(!fracture.isEmpty, image.truth.fracture != nil)
      if !ptx.isEmpty {
        positives.ptx += 1
        // The pneumothorax mask covers air: darker than the lung band around it once displayed.
        let ptxMean = try XCTUnwrap(r["ptxMean"] as? Double), lungMean = try XCTUnwrap(r["lungMean"] as? Double)
        XCTAssertLessThan(ptxMean, lungMean - 0.1, image.sopUID)
      }
      if !fracture.isEmpty { positives.fracture += 1 }
    }
    XCTAssertGreaterThan(positives.ptx, 1)
    XCTAssertGreaterThan(positives.fracture, 1)
  }
}
