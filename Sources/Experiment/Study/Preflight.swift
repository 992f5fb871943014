import Common
import Data
import Foundation
import Models
import Torch

/// The cheap checks `cxr run`, `cxr train` and `cxr config resolve --check` make before any
/// training and before anything is written: every problem the config can be known to have is
/// listed at once, so a study does not fail after hours of training on a typo in a test path.
public struct Preflight {
  public let study: Study
  public init(study: Study) { self.study = study }

  /// What the command is about to do.
  public struct Scope {
    /// The schemas it trains (all for `cxr run`, one for `cxr train`).
    public var schemas: [String]
    /// Whether the test set is used (predict, evaluate).
    public var test: Bool
    /// `cxr run --force` stage names and `--retrain` schema names (or `all`).
    public var force: Set<String> = []
    public var retrain: Set<String> = []
    /// Whether a schema folder trained with other settings is a problem (`cxr run` without
    /// `--retrain` for it; `cxr train --resume` checks it itself).
    public var changedFoldersAreProblems = true
    public var stageNames: [String] = []
    public init(schemas: [String], test: Bool) { self.schemas = schemas; self.test = test }
  }

  /// Throws one `ConfigError` listing every problem found.
  public func check(_ scope: Scope) throws {
    let problems = self.problems(scope)
    guard !problems.isEmpty else { return }
    let list = problems.map { "  - \($0)" }.joined(separator: "\n")
    throw ConfigError("\(study.config.source): \(problems.count) problem\(problems.count == 1 ? "" : "s") found before anything was run or written:\n\(list)")
  }

  public func problems(_ scope: Scope) -> [String] {
    let c = study.config
    var out: [String] = []
    func attempt(_ prefix: String = "", _ body: () throws -> Void) {
      do { try body() } catch { out.append(prefix + "\(error)") }
    }
    func at(_ key: String) -> String { c.where_(key) }

    // Paths: every one the run will read, named by its key; FILL placeholders named as such.
    func path(_ key: String, folder: Bool = false, required: Bool = false, what: String) {
      guard let p = c.optionalString(key) else {
        if required { out.append("\(at(key)): \(key) must give \(what)") }
        return
      }
      if p.split(separator: "/").contains("FILL") {
        out.append("\(at(key)): \(key) is not filled in ('\(p)'): give \(what)")
        return
      }
      var isDir: ObjCBool = false
      guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
        out.append("\(at(key)): \(key): \(p) does not exist; give \(what)")
        return
      }
      if folder != isDir.boolValue {
        out.append("\(at(key)): \(key): \(p) is a \(isDir.boolValue ? "folder" : "file"); give \(what)")
      }
    }
    let trainKind = c.optionalString("train_data.kind") ?? ""
    if !scope.schemas.isEmpty {
      switch trainKind {
      case "mimic":
        path("train_data.root", folder: true, required: true, what: "the MIMIC-CXR-JPG folder (it holds files/ and the metadata CSV)")
        path("train_data.metadata", what: "the MIMIC-CXR-JPG metadata CSV")
      case "manifest":
        path("train_data.manifest", required: true, what: "the training manifest CSV (path, patient, study columns)")
      default:
        out.append("\(at("train_data.kind")): train_data.kind is '\(trainKind)'; use mimic or manifest")
      }
      path("split.file", what: "a split.csv to import")
      path("model.pretrained", what: "a safetensors file of pretrained weights (cxr reads local files only; see the README for timm's ImageNet weights)")
    }
    let testKind = c.optionalString("test_data.kind") ?? ""
    if scope.test {
      switch testKind {
      case "candid": path("test_data.root", folder: true, required: true, what: "the CANDID-PTX folder")
      case "manifest": path("test_data.manifest", required: true, what: "the test manifest CSV")
      case "none": break
      default: out.append("\(at("test_data.kind")): test_data.kind is '\(testKind)'; use candid, manifest or none")
      }
    }

    // Names: findings, schemas and references unique; every name a command line gives real.
    let findings = study.findings
    for f in Set(findings) where findings.filter({ $0 == f }).count > 1 {
      out.append("\(at("findings")): findings lists '\(f)' \(findings.filter { $0 == f }.count) times; each finding once")
    }
    let schemaNames = study.schemaNames
    for n in Set(schemaNames).sorted() where schemaNames.filter({ $0 == n }).count > 1 {
      out.append("\(at("schemas")): two schemas are named '\(n)'; each schema needs its own name (it names the run folder)")
    }
    // The references' names: each schema's test-set labels, then the extra `references`.
    let refNames = schemaNames.indices.compactMap { c.optionalString("schemas[\($0)].test_file") == nil ? nil : schemaNames[$0] }
      + (0..<c.count("references")).compactMap { c.optionalString("references[\($0)].name") }
    for n in Set(refNames).sorted() where refNames.filter({ $0 == n }).count > 1 && schemaNames.filter({ $0 == n }).count <= 1 {
      out.append("\(at("references")): the reference name '\(n)' is used twice (a schema's test_file is a reference of the schema's name); give each reference its own name")
    }
    for n in scope.retrain.sorted() where n != "all" && !schemaNames.contains(n) {
      out.append("--retrain \(n): no schema has that name (schemas: \(schemaNames.joined(separator: ", ")); or all)")
    }
    for f in scope.force.sorted() where !scope.stageNames.contains(f) && !scope.stageNames.contains(where: { $0.hasPrefix(f + ":") }) {
      out.append("--force \(f): no stage has that name (stages: \(scope.stageNames.joined(separator: ", ")); or train, predict)")
    }
    for f in scope.force.sorted() where f == "train" || f.hasPrefix("train:") {
      out.append("--force \(f): a finished training is never redone in place; use --retrain \(f == "train" ? "all" : String(f.dropFirst(6))) (it moves the old folder aside)")
    }

    // Settings with a range the config checker cannot know.
    attempt {
      let size = try c.int("preprocess.size")
      if !(32...4096).contains(size) {
        out.append("\(at("preprocess.size")): preprocess.size is \(size); it must lie in 32...4096 (ConvNeXt downsamples by 32)")
      }
    }
    attempt {
      let w = try c.string("predict.weights")
      if !["best", "ema", "raw"].contains(w) { out.append("\(at("predict.weights")): predict.weights is '\(w)'; use best, ema or raw") }
    }
    attempt {
      let b = try c.string("loader.bad_files")
      if BadFilePolicy(rawValue: b) == nil { out.append("\(at("loader.bad_files")): loader.bad_files is '\(b)'; use skip or fail") }
    }
    attempt {
      let f = try c.double("loader.max_bad_fraction")
      if !(0...1).contains(f) { out.append("\(at("loader.max_bad_fraction")): loader.max_bad_fraction is \(f); it must lie in 0...1") }
    }
    if !scope.schemas.isEmpty {
      attempt("\(at("model.arch")): model: ") { _ = try study.modelConfig() }
      attempt { _ = try study.trainOptions() }
      // The pretrained file: readable, and its tensors fit the configured model.
      if let p = c.optionalString("model.pretrained"), FileManager.default.fileExists(atPath: p) {
        attempt("\(at("model.pretrained")): model.pretrained: ") { _ = try study.makeModel(log: { _ in }) }
      }
    }
    if scope.test, !scope.schemas.isEmpty, testKind != "none" {
      attempt {
        let contract = try study.inputContract
        let test = try c.bool("test_data.equalize")
        if test != contract.equalize {
          out.append("\(at("test_data.equalize")): test_data.equalize is \(test) but the classifiers are trained on \(contract.equalize ? "equalized" : "unequalized") images (train_data: \(trainKind)\(trainKind == "mimic" ? ", equalized at conversion" : "")); set test_data.equalize: \(contract.equalize)")
        }
      }
    }

    // Label files: readable, with a column for every finding.
    func labels(_ list: String, _ i: Int, _ key: String) {
      let k = "\(list)[\(i)].\(key)"
      guard let p = c.optionalString(k) else { return }
      if p.split(separator: "/").contains("FILL") { out.append("\(at(k)): \(k) is not filled in ('\(p)')"); return }
      guard FileManager.default.fileExists(atPath: p) else { out.append("\(at(k)): \(k): \(p) does not exist"); return }
      attempt("\(at(k)): \(k): ") { _ = try study.labelSchema(list: list, i, fileKey: key)?.read(findings: findings) }
    }
    for (i, name) in schemaNames.enumerated() {
      if scope.schemas.contains(name) { labels("schemas", i, "file") }
      if scope.test { labels("schemas", i, "test_file") }
    }
    if scope.test { for i in 0..<c.count("references") { labels("references", i, "file") } }

    // The test set: indexable (CANDID-PTX's CSVs and DICOM folder, or the manifest).
    if scope.test, out.isEmpty || !out.contains(where: { $0.contains("test_data.") }) {
      if (testKind == "candid" && c.optionalString("test_data.root").map({ FileManager.default.fileExists(atPath: $0) }) == true)
          || (testKind == "manifest" && c.optionalString("test_data.manifest").map({ FileManager.default.fileExists(atPath: $0) }) == true) {
        attempt { _ = try study.testIndex() }
      }
    }

    // Folders trained with other settings: never continued or replaced without being asked.
    if scope.changedFoldersAreProblems {
      for name in scope.schemas where !scope.retrain.contains(name) && !scope.retrain.contains("all") {
        attempt {
          let t = SchemaTraining(study: study, schema: name)
          if let why = t.refusal(try t.state()) { out.append("train:\(name): \(why)") }
        }
      }
    }
    return out
  }
}
