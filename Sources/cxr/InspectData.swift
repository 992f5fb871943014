import ArgumentParser
import Common
import Data
import Experiment
import Foundation

/// `cxr inspect data`: a dry run over a dataset and its label schemas. It reads and checks
/// everything a training run would index, prints the counts, and writes nothing.
struct InspectData: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Dry run: images, patients and label counts per split and per schema, and bad files.",
    discussion: """
      Give a study config (its training data, schemas, findings, seed and split settings):
        cxr inspect data --config configs/study.yaml
      or one dataset (--mimic, --candid or --manifest) and any number of label schemas:
        cxr inspect data --mimic /data/mimic-cxr-jpg \\
          --schema chexpert=/data/mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv.gz \\
          --schema llama3-cot=/runs/labels/llama3_cot.csv:mapped --findings Pneumothorax,Fracture
      CANDID-PTX's mask labels are reported as schema 'masks'; a manifest's label columns as 'manifest'.
      """)

  @Option(help: "A study config: inspect its training data and every schema.")
  var config: String?
  @Option(name: .customLong("set"), help: "With --config: override a key (key.path=value).")
  var overrides: [String] = []
  @Option(name: .customLong("mimic"), help: "MIMIC-CXR-JPG root (holds files/ and the metadata CSV).")
  var mimicRoot: String?
  @Option(name: .customLong("candid"), help: "CANDID-PTX folder (holds Pneumothorax_reports.csv).")
  var candidRoot: String?
  @Option(name: .customLong("manifest"), help: "CSV manifest with path, patient, study columns.")
  var manifestFile: String?
  @Option(help: "MIMIC views to keep, comma-separated; 'all' keeps every view.")
  var views = "PA,AP"
  @Option(name: .customLong("schema"), parsing: .singleValue,
          help: ArgumentHelp("A label schema NAME=FILE[:chexpert|mapped] (repeatable).", valueName: "name=file[:format]"))
  var schemas: [String] = []
  @Option(help: "Findings, comma-separated.")
  var findings = "Pneumothorax,Fracture"
  @Option(help: "Uncertainty policy of the schemas: ones, zeros or ignore.")
  var uncertainty = "ones"
  @Option(help: "Value map of mapped schemas, e.g. 'Present->1, Absent->0, Uncertain->-1'.")
  var values = "Present->1, Absent->0, Uncertain->-1"
  @Option(name: .customLong("id-column"), help: "Id column of mapped schemas (default index).")
  var idColumn: String?
  @Option(help: "A split.csv to check and report; without it a split is made in memory.")
  var split: String?
  @Option(help: "The study seed of the in-memory split (its split stream, as cxr train draws it).")
  var seed: UInt64 = 0
  @Option(name: .customLong("tune-fraction"), help: "Share of patients in the tune split.")
  var tuneFraction = 0.2
  @Flag(help: "Stratify the in-memory split by the first schema's positives.")
  var stratify = false
  @Flag(inversion: .prefixedNo, help: "Check that every image file exists and looks like an image.")
  var checkFiles = true
  @Option(name: .customLong("bad-files"), help: "Also write every bad file found to this CSV (id,path,problem).")
  var badFilesOut: String?
  @Flag(help: "Print the seconds each step took to stderr (scripts/bench/index.sh reads them).")
  var timing = false

  // FileError is CustomStringConvertible: ArgumentParser prints "Error: <message>" and exits 1.
  func run() throws { print(try inspect(), terminator: "") }

  func inspect() throws -> String {
    if let config { return try inspect(config: config) }
    let given = [mimicRoot, candidRoot, manifestFile].compactMap { $0 }
    guard given.count == 1 else { throw FileError("give exactly one of --mimic, --candid or --manifest") }
    let policy = try UncertaintyPolicy(config: uncertainty, context: "--uncertainty")
    let findingList = findings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !findingList.isEmpty else { throw FileError("--findings is empty; name at least one finding") }
    let schemaList = try schemas.map { try parseSchema($0, policy: policy) }
    var clock = StepClock(enabled: timing)
    // The dataset and the label files are independent reads: index on another thread while
    // this one reads the labels.
    let indexing = Background { () throws -> DatasetIndex in
      if let mimicRoot {
        let v = views == "all" ? [] : Set(views.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        return try MIMICCXRJPG(root: URL(fileURLWithPath: mimicRoot), views: v).index()
      } else if let candidRoot {
        return try CANDIDPTX(root: URL(fileURLWithPath: candidRoot)).index()
      } else {
        let file = URL(fileURLWithPath: manifestFile!)
        let header = try TableFile.read(file).header
        return try CSVManifest(file: file, labelFindings: findingList.filter(header.contains), uncertainty: policy).index()
      }
    }
    let read = Result { try schemaList.map { try $0.read(findings: findingList) } }
    let index = try indexing.value()
    var tables: [LabelTable] = try index.builtInLabels.map { [try $0.selecting(findingList)] } ?? []
    tables += try read.get()
    clock.lap("index+labels")
    let patientSplit: PatientSplit
    let origin: String
    if let split {
      let url = URL(fileURLWithPath: split)
      patientSplit = try PatientSplit.load(url, checkedAgainst: index.records)
      origin = "read from \(url.path)"
    } else {
      var strata: [String: String]?
      if stratify, let first = tables.first {
        strata = PatientSplit.positiveStrata(Labelling(index: index, table: first).set)
      }
      patientSplit = try PatientSplit.make(records: index.records, tuneFraction: tuneFraction, seed: Seeds(seed).seed(.split), strata: strata)
      origin = "made in memory: seed \(seed), tune fraction \(tuneFraction)\(strata == nil ? "" : ", stratified by \(tables[0].schema)"); nothing written"
    }
    clock.lap("split")
    let bad = checkFiles ? FileCheck.scan(index.records) : nil
    if let badFilesOut {
      guard let bad else { throw FileError("--bad-files needs the file check; drop --no-check-files") }
      try FileCheck.write(bad, to: URL(fileURLWithPath: badFilesOut))
    }
    clock.lap("files")
    let report = DataInspection(index: index, tables: tables, split: patientSplit, splitOrigin: origin, badFiles: bad).render()
    clock.lap("join+report")
    clock.total()
    return report
  }

  /// The config form: the training dataset and schemas a `cxr run` would use.
  func inspect(config path: String) throws -> String {
    let study = try Study(try Config.load(URL(fileURLWithPath: path), overrides: overrides))
    let c = study.settings
    let index = try study.trainIndex()
    let tables = try c.schemas.indices.compactMap { try study.labelSchema(.schemas, $0)?.read(findings: study.findings) }
    var strata: [String: String]?
    if c.split.stratify, let first = tables.first {
      strata = PatientSplit.positiveStrata(Labelling(index: index, table: first).set)
    }
    let patientSplit: PatientSplit, origin: String
    if let file = c.split.file {
      patientSplit = try PatientSplit.load(URL(fileURLWithPath: file), checkedAgainst: index.records)
      origin = "read from \(file)"
    } else {
      let fraction = c.split.tuneFraction
      patientSplit = try PatientSplit.make(records: index.records, tuneFraction: fraction, seed: Seeds(study.seed).seed(.split), strata: strata)
      origin = "made in memory: seed \(study.seed), tune fraction \(fraction); nothing written"
    }
    let bad = checkFiles ? FileCheck.scan(index.records) : nil
    return DataInspection(index: index, tables: tables, split: patientSplit, splitOrigin: origin, badFiles: bad).render()
  }

  func parseSchema(_ spec: String, policy: UncertaintyPolicy) throws -> LabelSchema {
    let map = try LabelSchema.parseValueMap(values)
    return try LabelSchema(spec: spec, uncertainty: policy, values: map, mappedIDColumn: idColumn)
  }
}

/// Seconds per step, printed to stderr as `time STEP WALL CPU` (CPU: this process's CPU time,
/// the steadier figure on a shared machine).
struct StepClock {
  let enabled: Bool
  private let start: (wall: Double, cpu: Double)
  private var last: (wall: Double, cpu: Double)

  init(enabled: Bool) {
    self.enabled = enabled
    start = StepClock.now()
    last = start
  }

  static func now() -> (wall: Double, cpu: Double) {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return (Double(DispatchTime.now().uptimeNanoseconds) / 1e9, Double(t.tv_sec) + Double(t.tv_nsec) / 1e9)
  }

  mutating func lap(_ step: String) {
    guard enabled else { return }
    let now = StepClock.now()
    report(step, now.wall - last.wall, now.cpu - last.cpu)
    last = now
  }

  func total() {
    guard enabled else { return }
    let now = StepClock.now()
    report("total", now.wall - start.wall, now.cpu - start.cpu)
  }

  private func report(_ step: String, _ wall: Double, _ cpu: Double) {
    FileHandle.standardError.write(Data("time \(step) \(String(format: "%.3f %.3f", wall, cpu))\n".utf8))
  }
}

/// A computation started on a global queue; `value()` waits for it and rethrows its error.
final class Background<T>: @unchecked Sendable {
  private var result: Result<T, Error>?
  private let done = DispatchSemaphore(value: 0)

  init(_ work: @escaping () throws -> T) {
    DispatchQueue.global().async {
      self.result = Result { try work() }
      self.done.signal()
    }
  }

  func value() throws -> T {
    done.wait()
    done.signal()
    return try result!.get()
  }
}
