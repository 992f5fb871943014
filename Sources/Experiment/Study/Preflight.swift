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
    /// Data-parallel processes that will train each schema (`cxr run` with run.parallel ddp).
    public var processes = 1
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
    let c = study.settings
    var out: [String] = []
    func attempt(_ prefix: String = "", _ body: () throws -> Void) {
      do { try body() } catch { out.append(prefix + "\(error)") }
    }
    func at(_ key: String) -> String { study.config.where_(key) }

    // Paths: every one the run will read, named by its key; FILL placeholders named as such.
    func path(_ key: String, _ value: String?, folder: Bool = false, required: Bool = false, what: String) {
      guard let p = value else {
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
    let trainKind = c.trainData.kind
    if !scope.schemas.isEmpty {
      switch trainKind {
      case .mimic:
        path("train_data.root", c.trainData.root, folder: true, required: true, what: "the MIMIC-CXR-JPG folder (it holds files/ and the metadata CSV)")
        path("train_data.metadata", c.trainData.metadata, what: "the MIMIC-CXR-JPG metadata CSV")
      case .manifest:
        path("train_data.manifest", c.trainData.manifest, required: true, what: "the training manifest CSV (path, patient, study columns)")
      }
      path("split.file", c.split.file, what: "a split.csv to import")
      path("model.pretrained", c.model.pretrained, what: "a safetensors file of pretrained weights (cxr reads local files only; see the README for timm's ImageNet weights)")
    }
    let testKind = c.testData.kind
    if scope.test {
      switch testKind {
      case .candid: path("test_data.root", c.testData.root, folder: true, required: true, what: "the CANDID-PTX folder")
      case .manifest: path("test_data.manifest", c.testData.manifest, required: true, what: "the test manifest CSV")
      case .none: break
      }
    }

    // Names: findings, schemas and references unique; every name a command line gives real.
    let findings = study.findings
    for f in Set(findings).sorted() where findings.filter({ $0 == f }).count > 1 {
      out.append("\(at("findings")): findings lists '\(f)' \(findings.filter { $0 == f }.count) times; each finding once")
    }
    let schemaNames = study.schemaNames
    for n in Set(schemaNames).sorted() where schemaNames.filter({ $0 == n }).count > 1 {
      out.append("\(at("schemas")): two schemas are named '\(n)'; each schema needs its own name (it names the run folder)")
    }
    // The references' names: each schema's test-set labels, then the extra `references`.
    let refNames = c.schemas.filter { $0.testFile != nil }.compactMap(\.name) + c.references.compactMap(\.name)
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

    // Settings with a range the types cannot express.
    if !(32...4096).contains(c.preprocess.size) {
      out.append("\(at("preprocess.size")): preprocess.size is \(c.preprocess.size); it must lie in 32...4096 (ConvNeXt downsamples by 32)")
    }
    if !(0...1).contains(c.loader.maxBadFraction) {
      out.append("\(at("loader.max_bad_fraction")): loader.max_bad_fraction is \(c.loader.maxBadFraction); it must lie in 0...1")
    }
    if c.loader.batchSize < 1 { out.append("\(at("loader.batch_size")): loader.batch_size is \(c.loader.batchSize); it must be at least 1") }
    if c.predict.batchSize < 1 { out.append("\(at("predict.batch_size")): predict.batch_size is \(c.predict.batchSize); it must be at least 1") }
    if !(0 < c.split.tuneFraction && c.split.tuneFraction < 1) {
      out.append("\(at("split.tune_fraction")): split.tune_fraction is \(c.split.tuneFraction); it must lie strictly between 0 and 1")
    }
    if !scope.schemas.isEmpty {
      attempt("\(at("model.arch")): model: ") { _ = try study.modelConfig() }
      attempt { _ = try study.trainOptions() }
      // The pretrained file: readable, and its tensors fit the configured model.
      if let p = c.model.pretrained, FileManager.default.fileExists(atPath: p) {
        attempt("\(at("model.pretrained")): model.pretrained: ") { _ = try study.makeModel(log: { _ in }) }
      }
    }
    if scope.test, !scope.schemas.isEmpty, testKind != .none {
      let contract = study.inputContract
      if c.testData.equalize != contract.equalize {
        out.append("\(at("test_data.equalize")): test_data.equalize is \(c.testData.equalize) but the classifiers are trained on \(contract.equalize ? "equalized" : "unequalized") images (train_data: \(trainKind.rawValue)\(trainKind == .mimic ? ", equalized at conversion" : "")); set test_data.equalize: \(contract.equalize)")
      }
    }

    // Label files: readable, with a column for every finding.
    func labels(_ list: Study.LabelList, _ i: Int, test: Bool) {
      let item = list == .schemas ? c.schemas[i] : c.references[i]
      let k = "\(list.rawValue)[\(i)].\(test ? "test_file" : "file")"
      guard let p = test ? item.testFile : item.file else { return }
      if p.split(separator: "/").contains("FILL") { out.append("\(at(k)): \(k) is not filled in ('\(p)')"); return }
      guard FileManager.default.fileExists(atPath: p) else { out.append("\(at(k)): \(k): \(p) does not exist"); return }
      attempt("\(at(k)): \(k): ") { _ = try study.labelSchema(list, i, test: test)?.read(findings: findings) }
    }
    for (i, name) in schemaNames.enumerated() {
      if scope.schemas.contains(name) { labels(.schemas, i, test: false) }
      // A derived schema: its sources' files read and the derivation made, before any training.
      let sourceFiles = c.schemas.filter { c.schemas[i].derive.sources.contains($0.name ?? "") }.compactMap(\.file)
      if scope.schemas.contains(name), c.schemas[i].derive.isSet, sourceFiles.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
        attempt("\(at("schemas[\(i)].derive")): schema '\(name)': ") { _ = try study.labelTable(schema: name) }
      }
      if scope.test { labels(.schemas, i, test: true) }
    }
    if scope.test { for i in c.references.indices { labels(.references, i, test: false) } }

    // The test set: indexable (CANDID-PTX's CSVs and DICOM folder, or the manifest).
    if scope.test, !out.contains(where: { $0.contains("test_data.") }) {
      let exists = { (p: String?) in p.map { FileManager.default.fileExists(atPath: $0) } == true }
      if (testKind == .candid && exists(c.testData.root)) || (testKind == .manifest && exists(c.testData.manifest)) {
        attempt { _ = try study.testIndex() }
      }
    }

    // Folders trained with other settings: never continued or replaced without being asked.
    if scope.changedFoldersAreProblems {
      for name in scope.schemas where !scope.retrain.contains(name) && !scope.retrain.contains("all") {
        attempt {
          var t = SchemaTraining(study: study, schema: name)
          t.processes = scope.processes
          if let why = t.refusal(try t.state()) { out.append("train:\(name): \(why)") }
        }
      }
    }
    return out
  }
}
