import Data
import Common
import Foundation

/// Where a synthetic study's files are.
public struct SyntheticStudyPaths: Sendable {
  public let root: URL
  public let readme: URL
  /// MIMIC-CXR-JPG-like training set: `files/`, the metadata file.
  public let mimicRoot: URL
  public let mimicMetadata: URL
  public let mimicImages: [URL]
  /// CANDID-PTX-like test set: `dataset/` DICOMs and the mask CSVs.
  public let candidRoot: URL
  public let candidImages: [URL]
  public let candidReports: URL
  public let candidFractures: URL
  /// `chest_tube.csv`: the drawn tubes' masks (SIIM RLE, as CANDID-PTX's).
  public let candidChestTubes: URL
  /// Schema name -> label file, for the training studies and for the test images' reports.
  public let trainLabels: [String: URL]
  public let testLabels: [String: URL]
}

/// A synthetic chest-radiograph study in the real datasets' layouts, deterministic for a seed.
/// Every file says it is synthetic: README.txt and SYNTHETIC.txt, the label file names, the
/// JPEG comment marker, DICOM ImageComments/PatientName/Manufacturer, the report texts and the
/// RadPrompter header.
public enum SyntheticStudy {
  /// First line of README.txt; also how an earlier study in the same folder is recognised.
  public static let marker = "SYNTHETIC DATA made by `cxr synth`: not patient data, not real labels."
  public static let schemas = SynthSchema.all

  /// Makes the study under `root` (created if missing). A folder that already holds a
  /// synthetic study is replaced; any other non-empty folder is refused.
  @discardableResult
  public static func generate(to root: URL, seed: UInt64, size: SynthSize) throws -> SyntheticStudyPaths {
    try generate(to: root, seed: seed, size: size, writeImages: true)
  }

  static func generate(to root: URL, seed: UInt64, size: SynthSize, writeImages: Bool) throws -> SyntheticStudyPaths {
    try prepare(root)
    let plan = SynthPlan(seed: seed, size: size)
    let mimicRoot = root.appendingPathComponent("mimic"), candidRoot = root.appendingPathComponent("candid")
    let labelsRoot = root.appendingPathComponent("labels")
    let note = "\(marker)\nSee ../README.txt. Seed \(seed), size \(size.rawValue).\n"
    try AtomicFile.write(note, to: mimicRoot.appendingPathComponent("SYNTHETIC.txt"))
    try AtomicFile.write(note, to: candidRoot.appendingPathComponent("SYNTHETIC.txt"))
    try AtomicFile.write(note.replacingOccurrences(of: "../README", with: "../../README"),
                         to: labelsRoot.appendingPathComponent("SYNTHETIC.txt"))

    let mimicImages = try writeMimic(plan, root: mimicRoot, writeImages: writeImages)
    // Without images (tests of the label files only) the test set's CSVs are left out too,
    // since its masks come from drawing the images.
    let reports = candidRoot.appendingPathComponent("Pneumothorax_reports.csv")
    let fractures = candidRoot.appendingPathComponent("acute_rib_fracture.csv")
    let tubes = candidRoot.appendingPathComponent("chest_tube.csv")
    let candidImages = writeImages ? try writeCandid(plan, root: candidRoot, reports: reports, fractures: fractures, tubes: tubes) : []

    var trainLabels: [String: URL] = [:], testLabels: [String: URL] = [:]
    var measured: [String: [String: MeasuredRates]] = [:]
    var trainRates: [String: [String: MeasuredRates]] = [:]
    for schema in schemas {
      let name = "synthetic-\(schema.name).csv"
      let mimicRows = plan.mimic.enumerated().map { i, study -> (ids: [String], truth: ReportTruth, rng: SplitMix64) in
        ([String(study.subjectID), String(study.studyID)], study.truth,
         SplitMix64(seed: seed, stream: "labels-mimic-\(schema.name)", index: i))
      }
      let candidRows = plan.candid.enumerated().map { i, image -> (ids: [String], truth: ReportTruth, rng: SplitMix64) in
        ([String(image.patient), image.sopUID], image.truth,
         SplitMix64(seed: seed, stream: "labels-candid-\(schema.name)", index: i))
      }
      let train = labelsRoot.appendingPathComponent("mimic").appendingPathComponent(name)
      let test = labelsRoot.appendingPathComponent("candid").appendingPathComponent(name)
      var rates = MeasuredRates.Tally()
      try writeLabels(schema, rows: mimicRows, to: train, seed: seed, tally: &rates)
      trainRates[schema.name] = rates.rates
      try writeLabels(schema, rows: candidRows, to: test, seed: seed, tally: &rates)
      trainLabels[schema.name] = train
      testLabels[schema.name] = test
      measured[schema.name] = rates.rates
    }
    // The labellers' known error rates on the training reports, as Dawid-Skene estimates them.
    let ratesFile = labelsRoot.appendingPathComponent("mimic").appendingPathComponent(SyntheticStudy.labellerRatesName)
    try AtomicFile.write(MeasuredRates.csv(trainRates, labellers: schemas.map(\.name)), to: ratesFile)
    let readme = root.appendingPathComponent("README.txt")
    try AtomicFile.write(SynthReadme.text(plan: plan, measured: measured, mimicImages: mimicImages.count), to: readme)
    return SyntheticStudyPaths(
      root: root, readme: readme, mimicRoot: mimicRoot,
      mimicMetadata: mimicRoot.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz"), mimicImages: mimicImages,
      candidRoot: candidRoot, candidImages: candidImages, candidReports: reports, candidFractures: fractures, candidChestTubes: tubes,
      trainLabels: trainLabels, testLabels: testLabels)
  }

  /// Creates `root`, or clears the synthetic study already there; refuses other contents.
  static func prepare(_ root: URL) throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: root.path, isDirectory: &isDir) {
      guard isDir.boolValue else { throw FileError("\(root.path) is a file; give a folder for the synthetic study") }
      let contents = try fm.contentsOfDirectory(atPath: root.path)
      if contents.isEmpty { return }
      let readme = root.appendingPathComponent("README.txt")
      guard let text = try? String(contentsOf: readme, encoding: .utf8), text.hasPrefix(marker) else {
        throw FileError("\(root.path) is not empty and holds no synthetic study (no README.txt from cxr synth); give an empty or new folder")
      }
      for name in ["mimic", "candid", "labels", "README.txt"] {
        let url = root.appendingPathComponent(name)
        if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
      }
    } else {
      do { try fm.createDirectory(at: root, withIntermediateDirectories: true) } catch {
        throw FileError("cannot create \(root.path): \(error.localizedDescription)")
      }
    }
  }

  // MARK: MIMIC-CXR-JPG-like

  static let metadataColumns = ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                                "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                                "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"]

  static func mimicPath(_ root: URL, study: MimicStudyPlan, image: MimicImagePlan) -> URL {
    let subject = String(study.subjectID)
    return root.appendingPathComponent("files/p\(subject.prefix(2))/p\(subject)/s\(study.studyID)/\(image.dicomID).jpg")
  }

  static func writeMimic(_ plan: SynthPlan, root: URL, writeImages: Bool) throws -> [URL] {
    var meta = CSVWriter(header: metadataColumns)
    var jobs: [(url: URL, spec: ImageSpec)] = []
    for study in plan.mimic {
      let portable = study.images.first?.view == "AP"
      let procedure = portable ? "CHEST (PORTABLE AP)" : "CHEST (PA AND LAT)"
      for image in study.images {
        let viewMeaning = ["PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"][image.view] ?? ""
        meta.append([image.dicomID, String(study.subjectID), String(study.studyID), procedure, image.view,
                     String(image.spec.height), String(image.spec.width), study.date, study.time, procedure,
                     viewMeaning, portable ? "Recumbent" : "Erect"])
        jobs.append((mimicPath(root, study: study, image: image), image.spec))
      }
    }
    try AtomicFile.write(Data(SynthEncoding.gzip(Array(meta.text.utf8))),
                         to: root.appendingPathComponent("mimic-cxr-2.0.0-metadata.csv.gz"))
    guard writeImages else { return jobs.map(\.url) }
    for dir in Set(jobs.map { $0.url.deletingLastPathComponent() }) {
      try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    let comment = "SYNTHETIC image made by cxr synth (seed \(plan.seed)); not patient data"
    try parallel(jobs.count) { i in
      let rendered = ChestRenderer.render(jobs[i].spec)
      // As MIMIC-CXR-JPG was made: min-max to 8 bits, histogram-equalized, JPEG quality 95.
      let gray = SynthEncoding.equalize(SynthEncoding.minMax8(rendered.pixels))
      let jpeg = try JPEGWriter.encodeGray(gray, width: rendered.width, height: rendered.height, quality: 95, comment: comment)
      try write(jpeg, to: jobs[i].url)
    }
    return jobs.map(\.url)
  }

  // MARK: CANDID-PTX-like

  static func writeCandid(_ plan: SynthPlan, root: URL, reports reportsURL: URL, fractures fracturesURL: URL, tubes tubesURL: URL) throws -> [URL] {
    let dataset = root.appendingPathComponent("dataset")
    try FileManager.default.createDirectory(at: dataset, withIntermediateDirectories: true)
    let urls = plan.candid.map { dataset.appendingPathComponent("\($0.sopUID).dcm") }
    let masks = Slots<(ptx: String, fracture: String, tube: String)>(count: plan.candid.count)
    try parallel(plan.candid.count) { i in
      let image = plan.candid[i]
      let rendered = ChestRenderer.render(image.spec)
      masks[i] = (SynthEncoding.rle(rendered.pneumothoraxMask, width: rendered.width, height: rendered.height),
                  SynthEncoding.rle(rendered.fractureMask, width: rendered.width, height: rendered.height),
                  SynthEncoding.rle(rendered.chestTubeMask, width: rendered.width, height: rendered.height))
      let v = image.variant
      let dicom = DicomImage(
        rows: rendered.height, columns: rendered.width, bitsAllocated: v.bitsAllocated, bitsStored: v.bitsStored,
        photometric: v.photometric, rescaleSlope: v.slope, rescaleIntercept: v.intercept,
        pixels: v.stored(rendered.pixels), sopInstanceUID: image.sopUID, studyInstanceUID: image.studyUID,
        seriesInstanceUID: image.seriesUID, patientID: "SYNTH\(image.patient)", viewPosition: image.view,
        imageComments: "SYNTHETIC image made by cxr synth (seed \(plan.seed)); not patient data")
      try write(try DicomWriter.encode(dicom), to: urls[i])
    }
    var reports = CSVWriter(header: ["SOPInstanceUID", "StudyInstanceUID", "filename", "EncodedPixels", "Report"])
    var fractures = CSVWriter(header: ["anon_SOPUID", "annotation_id", "mask_rle"])
    var tubes = CSVWriter(header: ["anon_SOPUID", "annotation_id", "mask_rle"])
    for (i, image) in plan.candid.enumerated() {
      let m = masks[i]!
      reports.append([image.sopUID, image.studyUID, image.filename, m.ptx, image.report])
      if m.fracture != "-1" { fractures.append([image.sopUID, "synthetic-fracture-\(i + 1)", m.fracture]) }
      if m.tube != "-1" { tubes.append([image.sopUID, "synthetic-chest-tube-\(i + 1)", m.tube]) }
    }
    try reports.write(to: reportsURL)
    try fractures.write(to: fracturesURL)
    try tubes.write(to: tubesURL)
    return urls
  }

  // MARK: labels

  static func writeLabels(_ schema: SynthSchema, rows: [(ids: [String], truth: ReportTruth, rng: SplitMix64)],
                          to url: URL, seed: UInt64, tally: inout MeasuredRates.Tally) throws {
    switch schema.format {
    case .chexpert:
      var w = CSVWriter(header: ["subject_id", "study_id"] + SynthFindings.all)
      for row in rows {
        var rng = row.rng
        let labels = schema.label(row.truth, rng: &rng)
        tally.add(row.truth, labels)
        w.append(row.ids + SynthFindings.all.map { labels[$0]!.chexpert })
      }
      try w.write(to: url)
    case .radprompter:
      // RadPrompter quotes every field and starts version-2 files with `#Key: value` lines.
      var text = "#Synthetic: yes - made by cxr synth (seed \(seed)); not real reports or labels\n"
      text += "#Model: synthetic-\(schema.name)\n#Prompt: simulated chain-of-thought\n#Version: 2\n"
      let header = ["index"] + SynthFindings.all.map(SynthFindings.responseColumn)
      text += header.map { "\"\($0)\"" }.joined(separator: ",") + "\n"
      for row in rows {
        var rng = row.rng
        let labels = schema.label(row.truth, rng: &rng)
        tally.add(row.truth, labels)
        let fields = [row.ids.last!] + SynthFindings.all.map { labels[$0]!.radprompter }
        text += fields.map { "\"\($0)\"" }.joined(separator: ",") + "\n"
      }
      try AtomicFile.write(text, to: url)
    }
  }

  // MARK: helpers

  static func write(_ data: Data, to url: URL) throws {
    do { try data.write(to: url, options: .atomic) } catch {
      throw FileError("cannot write \(url.path): \(error.localizedDescription)")
    }
  }

  /// Runs `body` for 0..<count on all cores; rethrows the first error.
  static func parallel(_ count: Int, _ body: (Int) throws -> Void) throws {
    let firstError = Slots<Error>(count: 1)
    DispatchQueue.concurrentPerform(iterations: count) { i in
      if firstError[0] != nil { return }
      do { try body(i) } catch { firstError.setIfEmpty(0, error) }
    }
    if let e = firstError[0] { throw e }
  }
}

/// Results written by parallel workers, one slot each.
final class Slots<T>: @unchecked Sendable {
  private var values: [T?]
  private let lock = NSLock()
  init(count: Int) { values = Array(repeating: nil, count: count) }
  subscript(_ i: Int) -> T? {
    get { lock.lock(); defer { lock.unlock() }; return values[i] }
    set { lock.lock(); values[i] = newValue; lock.unlock() }
  }
  func setIfEmpty(_ i: Int, _ v: T) { lock.lock(); if values[i] == nil { values[i] = v }; lock.unlock() }
}

extension SyntheticStudy {
  /// `labels/mimic/labeller-rates.csv`: each labeller's sensitivity and specificity per finding on
  /// the training reports, measured against what was drawn, under U-ones with blank = negative
  /// (what `cxr labels compare` and a `dawid_skene` schema estimate without the truth).
  public static let labellerRatesName = "labeller-rates.csv"
}

/// A schema's error rates as measured on the labels it wrote (U-ones not applied: uncertain
/// is counted on its own).
struct MeasuredRates {
  var positives = 0, negatives = 0, missed = 0, falsePositives = 0, uncertain = 0
  /// Uncertain labels of true negatives (positive under U-ones).
  var uncertainNegatives = 0

  /// Under U-ones: a true positive called positive or uncertain; a true negative called negative or blank.
  var sensitivityOnes: Double? { positives == 0 ? nil : Double(positives - missed) / Double(positives) }
  var specificityOnes: Double? {
    negatives == 0 ? nil : Double(negatives - falsePositives - uncertainNegatives) / Double(negatives)
  }

  static func csv(_ rates: [String: [String: MeasuredRates]], labellers: [String]) -> String {
    var w = CSVWriter(header: ["labeller", "finding", "sensitivity", "specificity", "positives", "negatives"])
    for l in labellers {
      for f in ["Pneumothorax", "Fracture"] {
        let r = rates[l]?[f] ?? MeasuredRates()
        w.append([l, f, r.sensitivityOnes.map { "\($0)" } ?? "", r.specificityOnes.map { "\($0)" } ?? "", "\(r.positives)", "\(r.negatives)"])
      }
    }
    return w.text
  }

  var missRate: Double { positives == 0 ? 0 : Double(missed) / Double(positives) }
  var falsePositiveRate: Double { negatives == 0 ? 0 : Double(falsePositives) / Double(negatives) }
  var uncertainRate: Double { positives + negatives == 0 ? 0 : Double(uncertain) / Double(positives + negatives) }

  struct Tally {
    var byFinding: [String: MeasuredRates] = [:]
    mutating func add(_ truth: ReportTruth, _ labels: [String: SynthLabel]) {
      for finding in ["Pneumothorax", "Fracture"] {
        var r = byFinding[finding] ?? MeasuredRates()
        let label = labels[finding]!
        if label == .uncertain { r.uncertain += 1 }
        if label == .uncertain && !truth.isPositive(finding) { r.uncertainNegatives += 1 }
        if truth.isPositive(finding) {
          r.positives += 1
          if label == .negative || label == .blank { r.missed += 1 }
        } else {
          r.negatives += 1
          if label == .positive { r.falsePositives += 1 }
        }
        byFinding[finding] = r
      }
    }
    var rates: [String: MeasuredRates] { byFinding }
  }
}
