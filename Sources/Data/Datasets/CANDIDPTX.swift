import Common
import Foundation

/// CANDID-PTX: DICOM files named by SOPInstanceUID (with or without `.dcm`, possibly in
/// nested folders), `Pneumothorax_reports.csv` (one or more rows per image), and the rib
/// fracture and chest tube mask files. Image-level labels come from the masks: positive when
/// an image has a mask row that is not `-1`. Column names are checked, since they are known
/// from code that reads the dataset rather than from its documentation.
public struct CANDIDPTX: Sendable {
  /// Folder with the CSV files.
  public var root: URL
  /// Folder with the DICOM files; nil means `root/dataset` when it exists, else `root`.
  public var images: URL?
  /// Image size assumed when checking masks (CANDID-PTX images are 1024x1024); nil checks
  /// only the syntax.
  public var maskWidth: Int?
  public var maskHeight: Int?

  public static let reportsName = "Pneumothorax_reports.csv"
  public static let fractureNames = ["acute_rib_fracture.csv", "Rib_fracture_mask_rle.csv"]
  public static let chestTubeName = "chest_tube.csv"
  /// The findings the masks label (the names CheXpert uses where one exists).
  public static let findings = ["Pneumothorax", "Fracture", "Chest Tube"]

  public init(root: URL, images: URL? = nil, maskWidth: Int? = 1024, maskHeight: Int? = 1024) {
    self.root = root
    self.images = images
    self.maskWidth = maskWidth
    self.maskHeight = maskHeight
  }

  var maskPixelCount: Int? {
    guard let maskWidth, let maskHeight else { return nil }
    return maskWidth * maskHeight
  }

  public func index() throws -> DatasetIndex {
    let reportsURL = root.appendingPathComponent(Self.reportsName)
    guard FileManager.default.fileExists(atPath: reportsURL.path) else {
      throw FileError("\(root.path) has no \(Self.reportsName); give the CANDID-PTX folder that holds it")
    }
    let reports = try TableFile.read(reportsURL)
    let cSOP = try reports.require("SOPInstanceUID")
    let cStudy = try reports.require("StudyInstanceUID")
    let cFile = try reports.require("filename")
    let cPixels = try reports.require("EncodedPixels")
    let cReport = try reports.require("Report")

    let imageFolder = images ?? {
      let d = root.appendingPathComponent("dataset")
      var isDir: ObjCBool = false
      return FileManager.default.fileExists(atPath: d.path, isDirectory: &isDir) && isDir.boolValue ? d : root
    }()
    var notes: [String] = []
    let files = try Self.findDICOMs(in: imageFolder, notes: &notes)

    var records: [ImageRecord] = []
    var rowOfID: [String: Int] = [:]
    var reportOf: [String: String] = [:]
    var masks = MaskTally(findings: Self.findings.count)
    var missing = 0
    for (r, row) in reports.rows.enumerated() {
      let line = reports.lines[r]
      let sop = row[cSOP].trimmingCharacters(in: .whitespaces)
      guard !sop.isEmpty else { throw FileError("\(reports.source):\(line): SOPInstanceUID is blank; fix or remove that row") }
      let study = row[cStudy].trimmingCharacters(in: .whitespaces)
      let index: Int
      if let known = rowOfID[sop] {
        index = known
        let r = records[known]
        guard r.studyID == study else {
          throw FileError("\(reports.source):\(line): image \(sop) has StudyInstanceUID \(study) here but \(r.studyID) on an earlier row; the rows of one image must agree")
        }
      } else {
        let patient = try Self.patient(fromFilename: row[cFile], source: reports.source, line: line)
        guard !study.isEmpty else { throw FileError("\(reports.source):\(line): StudyInstanceUID is blank; fix or remove that row") }
        let path = files[sop] ?? { missing += 1; return imageFolder.appendingPathComponent(sop + ".dcm").path }()
        index = records.count
        rowOfID[sop] = index
        records.append(ImageRecord(id: sop, path: path, subjectID: patient, studyID: study, view: nil))
        masks.addImage()
      }
      if reportOf[sop, default: ""].isEmpty, !row[cReport].isEmpty { reportOf[sop] = row[cReport] }
      try masks.add(row[cPixels], finding: 0, image: index, pixelCount: maskPixelCount, source: reports.source, line: line, column: "EncodedPixels")
    }
    if missing > 0 { notes.append("\(missing) images listed in \(Self.reportsName) have no DICOM file under \(imageFolder.path)") }

    let fractureURL = Self.fractureNames.lazy.map { self.root.appendingPathComponent($0) }
      .first { FileManager.default.fileExists(atPath: $0.path) }
    let tubeURL = root.appendingPathComponent(Self.chestTubeName)
    for (finding, url, name) in [(1, fractureURL, Self.fractureNames.joined(separator: " or ")),
                                 (2, FileManager.default.fileExists(atPath: tubeURL.path) ? tubeURL : nil, Self.chestTubeName)] {
      guard let url else {
        notes.append("no \(name) in \(root.path): \(Self.findings[finding]) is labelled negative for every image")
        continue
      }
      let t = try TableFile.read(url)
      let cID = try t.require("anon_SOPUID")
      let cMask = try t.require("mask_rle")
      var unknown = 0
      for (r, row) in t.rows.enumerated() {
        guard let image = rowOfID[row[cID].trimmingCharacters(in: .whitespaces)] else { unknown += 1; continue }
        try masks.add(row[cMask], finding: finding, image: image, pixelCount: maskPixelCount, source: t.source, line: t.lines[r], column: "mask_rle")
      }
      if unknown > 0 { notes.append("\(unknown) rows of \(url.lastPathComponent) name images not in \(Self.reportsName); ignored") }
    }
    notes.append(contentsOf: masks.encodingNotes(Self.findings))

    let labels = LabelTable(schema: "masks", source: root.path, findings: Self.findings, uncertainty: .ones,
                            join: .image, keyedBySubject: false, values: masks.values,
                            rowOfKey: Dictionary(uniqueKeysWithValues: records.enumerated().map { (LabelKey(subject: nil, id: $1.id), $0) }))
    return DatasetIndex(name: "candid-ptx", records: records, labelJoin: .image, builtInLabels: labels,
                        reports: reportOf, notes: notes)
  }

  public static let chestTubeAttributeName = "chest tube"

  /// Image-level chest tube as a subgroup attribute: "yes" for an image with a chest_tube.csv
  /// mask, "no" for every other image of `index` (CANDID-PTX lists mainly positive images, so an
  /// image it does not list has no tube). Nil when the folder has no chest_tube.csv.
  public func chestTubeAttribute(_ index: DatasetIndex) -> [String: String]? {
    guard FileManager.default.fileExists(atPath: root.appendingPathComponent(Self.chestTubeName).path),
          let labels = index.builtInLabels, let column = labels.findings.firstIndex(of: "Chest Tube") else { return nil }
    var out: [String: String] = [:]
    for record in index.records {
      guard let row = labels.rowOfKey[LabelKey(subject: nil, id: record.id)] else { continue }
      out[record.id] = labels.values[row * labels.findings.count + column] == .positive ? "yes" : "no"
    }
    return out
  }

  public static let viewPositionAttributeName = "view position"

  /// The View Positions (0018,5101) read from the test images' DICOM headers.
  public struct ViewPositions: Sendable, Equatable {
    /// Image id -> view, upper-cased ("PA", "AP", "LL"); images of unknown view are absent.
    public var values: [String: String] = [:]
    /// Images whose header has no View Position, or a blank one.
    public var blank = 0
    /// Images whose header could not be read (a missing or damaged file); the first reason.
    public var unreadable = 0
    public var firstError: String?
    /// Set when nothing could be read: DICOM support is missing, or libcxt_dicom.so predates
    /// the header reader. `values` is then empty.
    public var readerError: String?
    /// Wall-clock seconds spent reading the headers.
    public var seconds = 0.0

    public init() {}

    /// What the evaluation's notes say about the reading (nil when every image has a view).
    public var note: String? {
      if let readerError { return "view position not read from the DICOM headers, so there are no view-position subgroups: \(readerError)" }
      var parts: [String] = []
      if blank > 0 { parts.append("\(blank) image(s) have no View Position (0018,5101) in their DICOM header") }
      if unreadable > 0 { parts.append("\(unreadable) DICOM header(s) could not be read (e.g. \(firstError ?? "unknown error"))") }
      if values.isEmpty {
        return "view position: no test image has a known View Position" + (parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")")
          + ", so the view-position subgroups are skipped"
      }
      guard !parts.isEmpty else { return nil }
      return "view position: " + parts.joined(separator: "; ") + "; those images are left out of the view-position subgroups"
    }
  }

  /// Reads each image's View Position from its DICOM header (the header only: stops before the
  /// pixel data), in parallel over `threads` (default: every core). Unknown views (absent or
  /// blank attribute, unreadable header) are counted, never thrown; a missing or too old DICOM
  /// library is reported in `readerError`.
  public func viewPositions(_ index: DatasetIndex, threads: Int? = nil) -> ViewPositions {
    Self.viewPositions(of: index.records, threads: threads)
  }

  static func readViewPosition(_ path: String) throws -> String? {
    guard FileManager.default.fileExists(atPath: path) else { throw ImageError(path: path, kind: .missing, reason: "no such file") }
    return try DICOMDecoder.viewPosition(path: path)
  }

  static func viewPositions(of records: [ImageRecord], threads: Int? = nil,
                            read: @Sendable (String) throws -> String? = { try CANDIDPTX.readViewPosition($0) }) -> ViewPositions {
    let start = DispatchTime.now().uptimeNanoseconds
    var out = readViewPositions(of: records, threads: threads, read: read)
    out.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return out
  }

  private static func readViewPositions(of records: [ImageRecord], threads: Int?,
                                        read: @Sendable (String) throws -> String?) -> ViewPositions {
    var out = ViewPositions()
    guard !records.isEmpty else { return out }
    // One header first: a missing or old library fails the same way for every file.
    func readOne(_ i: Int) -> Result<String?, ImageError> {
      do { return .success(try read(records[i].path)) } catch let e as ImageError { return .failure(e) } catch {
        return .failure(ImageError(path: records[i].path, kind: .corrupt, reason: "\(error)"))
      }
    }
    let first = readOne(0)
    if case .failure(let e) = first, e.kind == .dicomUnavailable {
      out.readerError = e.reason
      return out
    }
    let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, records.count - 1))
    let results = [first] + Array(1..<records.count).concurrentMap(workers: workers, readOne)
    for (i, r) in results.enumerated() {
      switch r {
      case .success(let v?): out.values[records[i].id] = v
      case .success(nil): out.blank += 1
      case .failure(let e):
        out.unreadable += 1
        if out.firstError == nil { out.firstError = "\(e.path): \(e.reason)" }
      }
    }
    return out
  }

  /// `P<patient>_...` -> patient (a folder before the name is ignored). CANDID-PTX has no
  /// patient column; the file name carries it.
  static func patient(fromFilename name: String, source: String, line: Int) throws -> String {
    let t = (name.trimmingCharacters(in: .whitespaces) as NSString).lastPathComponent
    guard t.first == "P", let underscore = t.firstIndex(of: "_"), t.index(after: t.startIndex) < underscore else {
      throw FileError("\(source):\(line): filename '\(name)' does not start with P<patient>_; the patient id is read from it, so fix that row")
    }
    return String(t[t.index(after: t.startIndex)..<underscore])
  }

  /// SOPInstanceUID -> path for every file whose name (without `.dcm`) looks like a UID.
  static func findDICOMs(in folder: URL, notes: inout [String]) throws -> [String: String] {
    guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey],
                                                      options: [.skipsHiddenFiles]) else {
      throw FileError("cannot list \(folder.path); check that the DICOM folder exists")
    }
    var out: [String: String] = [:]
    var duplicates = 0
    var paths: [String] = []
    for case let url as URL in walker {
      var name = url.lastPathComponent
      if name.lowercased().hasSuffix(".dcm") { name.removeLast(4) }
      guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 }) else { continue }
      paths.append(url.path)
    }
    // Sorted so that a UID found twice always resolves to the same file.
    for p in paths.sorted() {
      var name = (p as NSString).lastPathComponent
      if name.lowercased().hasSuffix(".dcm") { name.removeLast(4) }
      if out[name] == nil { out[name] = p } else { duplicates += 1 }
    }
    if duplicates > 0 { notes.append("\(duplicates) DICOM files repeat a SOPInstanceUID found earlier; the first path in sorted order is used") }
    return out
  }
}

/// Image-level mask labels and the encodings seen, while reading the mask files.
struct MaskTally {
  let findings: Int
  var values: [LabelValue] = []
  var encodings: [[RLEEncoding: Int]]

  init(findings: Int) {
    self.findings = findings
    encodings = Array(repeating: [:], count: findings)
  }

  mutating func addImage() { values.append(contentsOf: repeatElement(.negative, count: findings)) }

  /// Marks `image` positive for `finding` unless `rle` is `-1`; checks the RLE, and when the
  /// image size is known, which reading (relative or absolute) fits it.
  mutating func add(_ rle: String, finding: Int, image: Int, pixelCount: Int?, source: String, line: Int, column: String) throws {
    do {
      let pairs = try RLE.parse(rle)
      if pairs.isEmpty { return }
      values[image * findings + finding] = .positive
      if let pixelCount {
        encodings[finding][try RLE.detectEncoding(pairs, pixelCount: pixelCount), default: 0] += 1
      }
    } catch let e as RLEError {
      throw FileError("\(source):\(line): column '\(column)': \(e.message)")
    }
  }

  func encodingNotes(_ names: [String]) -> [String] {
    names.indices.compactMap { f in
      let e = encodings[f]
      guard !e.isEmpty else { return nil }
      let relative = e[.relative] ?? 0, absolute = e[.absolute] ?? 0
      return "\(names[f]) masks: \(relative) rows read as relative (SIIM) RLE, \(absolute) as absolute" +
        (absolute > 0 ? " (only the absolute reading fits those rows)" : "")
    }
  }
}
