import Foundation
import TestSupport
import XCTest
@testable import Data

/// The DICOM header reader: View Position (0018,5101) from the header alone, unknown (nil) when
/// the attribute is absent or blank, a named error for a non-DICOM file and for a
/// libcxt_dicom.so built before the reader existed.
final class DICOMViewPositionTests: XCTestCase {
  static var fixtures: ImagingFixtures.Set?
  override class func setUp() {
    super.setUp()
    do { fixtures = try ImagingFixtures.make() } catch { fixtures = nil; print("fixture error: \(error)") }
  }
  var fx: ImagingFixtures.Set { get throws { try XCTUnwrap(Self.fixtures, "the Python fixtures could not be written") } }

  func testViewPositionFromTheHeaderUpperCasedAndTrimmed() throws {
    let dir = try TestEnv.scratch("dicom-view")
    defer { try? FileManager.default.removeItem(at: dir) }
    // pydicom writes the values as given (padded to even length with a space).
    _ = try Python.run("""
      import numpy as np
      from pydicom.dataset import Dataset, FileMetaDataset
      from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
      for name, view in [("ll.dcm", "LL"), ("pa.dcm", "PA"), ("ap-lower.dcm", " ap"), ("blank.dcm", "  "), ("empty.dcm", "")]:
          meta = FileMetaDataset()
          meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
          meta.MediaStorageSOPInstanceUID = generate_uid()
          meta.TransferSyntaxUID = ExplicitVRLittleEndian
          ds = Dataset(); ds.file_meta = meta
          ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
          ds.Modality = "CR"; ds.PatientID = "P1"; ds.ViewPosition = view
          ds.Rows, ds.Columns = 4, 3
          ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
          ds.BitsAllocated = 16; ds.BitsStored = 12; ds.HighBit = 11; ds.PixelRepresentation = 0
          ds.PixelData = np.arange(12, dtype=np.uint16).tobytes()
          ds.save_as(f"{sys.argv[1]}/{name}", enforce_file_format=True)
      """, args: [dir.path])
    XCTAssertEqual(try DICOMDecoder.viewPosition(path: dir.appendingPathComponent("ll.dcm").path), "LL")
    XCTAssertEqual(try DICOMDecoder.viewPosition(path: dir.appendingPathComponent("pa.dcm").path), "PA")
    XCTAssertEqual(try DICOMDecoder.viewPosition(path: dir.appendingPathComponent("ap-lower.dcm").path), "AP", "normalised: trimmed, upper case")
    XCTAssertNil(try DICOMDecoder.viewPosition(path: dir.appendingPathComponent("blank.dcm").path), "blank is unknown")
    XCTAssertNil(try DICOMDecoder.viewPosition(path: dir.appendingPathComponent("empty.dcm").path), "empty is unknown")
  }

  func testAbsentViewPositionIsUnknownAndTheHeaderAloneIsRead() throws {
    let fx = try fx
    // The fixtures carry no View Position: unknown, whatever the pixel encoding.
    for name in ["plain.dcm", "rle.dcm", "j2k.dcm", "mono1.dcm"] {
      XCTAssertNil(try DICOMDecoder.viewPosition(path: fx.url(name).path), name)
    }
    // Truncated pixel data fails a decode, not the header read: the pixels are never read.
    XCTAssertThrowsError(try DICOMDecoder.decode(path: fx.url("truncated.dcm").path))
    XCTAssertNil(try DICOMDecoder.viewPosition(path: fx.url("truncated.dcm").path))
    XCTAssertThrowsError(try DICOMDecoder.viewPosition(path: fx.url("garbage.jpg").path)) { e in
      let e = e as! ImageError
      XCTAssertEqual(e.kind, .corrupt)
      XCTAssertEqual(e.description, fx.url("garbage.jpg").path + ": cannot read the DICOM header: not a readable DICOM file (truncated header or not DICOM)")
    }
  }

  /// A libcxt_dicom.so from before the header reader: it still loads (pixels decode) and the
  /// View Position read is a named error saying to rebuild, not a crash.
  func testLibraryWithoutTheHeaderReaderSaysToRebuildIt() throws {
    guard case .success(let current) = DICOMDecoder.library else { return XCTFail("libcxt_dicom.so should be built by `make shim`") }
    XCTAssertNotNil(current.readViewPosition, "the current build has \(DICOMDecoder.viewPositionSymbol)")
    let old = DICOMDecoder.Library(path: "/opt/old/libcxt_dicom.so", read: current.read, free: current.free, readViewPosition: nil)
    let fx = try fx
    XCTAssertThrowsError(try DICOMDecoder.viewPosition(path: fx.url("plain.dcm").path, library: old)) { e in
      let e = e as! ImageError
      XCTAssertEqual(e.kind, .dicomUnavailable)
      XCTAssertEqual(e.reason, "/opt/old/libcxt_dicom.so was built before cxr read DICOM headers: it has no cxt_dicom_read_view_position, so the View Position cannot be read (pixels still can). Rebuild it with `make shim` (or point CXR_DICOM_LIB at a current build)")
    }
  }

  /// The adapter reads every header (in parallel), counts unknown and unreadable ones, and stops
  /// at once when the reader is unavailable, with a note instead of subgroups.
  func testCANDIDViewPositionsCountUnknownsAndReportAMissingReader() {
    let records = (0..<9).map { ImageRecord(id: "1.2.\($0)", path: "/x/\($0).dcm", subjectID: "p", studyID: "s", view: nil) }
    let views: [String?] = ["PA", "AP", nil, "PA", "LL", nil, "AP", "PA", "AP"]
    for threads in [1, 3, 8] {
      let v = CANDIDPTX.viewPositions(of: records, threads: threads) { path in
        let i = Int(path.dropFirst(3).dropLast(4))!
        if i == 7 { throw ImageError(path: path, kind: .corrupt, reason: "cannot read the DICOM header: damaged") }
        return views[i]
      }
      XCTAssertEqual(v.values, ["1.2.0": "PA", "1.2.1": "AP", "1.2.3": "PA", "1.2.4": "LL", "1.2.6": "AP", "1.2.8": "AP"], "threads \(threads)")
      XCTAssertEqual([v.blank, v.unreadable], [2, 1])
      XCTAssertNil(v.readerError)
      XCTAssertEqual(v.note, "view position: 2 image(s) have no View Position (0018,5101) in their DICOM header; 1 DICOM header(s) could not be read (e.g. /x/7.dcm: cannot read the DICOM header: damaged); those images are left out of the view-position subgroups")
    }
    let none = CANDIDPTX.viewPositions(of: records) { _ in nil }
    XCTAssertEqual(none.values, [:])
    XCTAssertEqual(none.note, "view position: no test image has a known View Position (9 image(s) have no View Position (0018,5101) in their DICOM header), so the view-position subgroups are skipped")
    let unavailable = CANDIDPTX.viewPositions(of: records) { path in
      throw ImageError(path: path, kind: .dicomUnavailable, reason: "libcxt_dicom.so is too old")
    }
    XCTAssertEqual(unavailable.values, [:])
    XCTAssertEqual(unavailable.readerError, "libcxt_dicom.so is too old")
    XCTAssertEqual(unavailable.note, "view position not read from the DICOM headers, so there are no view-position subgroups: libcxt_dicom.so is too old")
    let all = CANDIDPTX.viewPositions(of: records) { _ in usleep(2000); return "PA" }
    XCTAssertNil(all.note)
    XCTAssertGreaterThan(all.seconds, 0.002, "the time spent reading is measured")
  }
}
