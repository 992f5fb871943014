import Common
import Data
import Evaluate
import Foundation
import Models
import Torch
import Train

/// `cxr run CONFIG`: for each schema train -> predict on the test set; then evaluate every
/// classifier against every reference; then one report. Stages whose outputs exist and whose
/// inputs are unchanged are skipped; a failing schema does not stop the others.
public struct StudyRun {
  public let study: Study
  public var log: (String) -> Void = { print($0) }

  public init(study: Study) { self.study = study }

  public var evaluationFolder: URL { study.runRoot.appendingPathComponent("evaluation") }
  public var reportURL: URL { study.runRoot.appendingPathComponent("report.md") }
  func predictionsURL(_ schema: String) -> URL { study.schemaFolder(schema).appendingPathComponent("predictions.csv") }

  /// The given settings' `key: value` lines (what a stage's outputs depend on).
  func settings(_ parts: [(String, any Encodable)]) -> String {
    parts.map { (key, value) in
      let flat = (try? NodeEncoder.flatten(value, prefix: key)) ?? [:]
      return flat.keys.sorted().map { "\($0): \(flat[$0]!)" }.joined(separator: "\n")
    }.joined(separator: "\n")
  }

  func fileFingerprints(_ paths: [String?]) -> [String] { paths.compactMap { $0 }.map { Fingerprint.file(URL(fileURLWithPath: $0)) } }

  /// The stage names `stages()` gives, for checking `--force` before anything runs.
  public var stageNames: [String] {
    study.schemaNames.flatMap { ["train:\($0)", "predict:\($0)"] + (saliencyTop > 0 ? ["explain:\($0)"] : []) } + ["evaluate"]
  }

  /// How a run spreads its stages over devices (`run.parallel`, `run.devices`).
  public struct DevicePlan: Equatable, Sendable {
    /// Devices (lanes): CUDA GPUs, or on the CPU processes that share the cores.
    public var devices: Int
    /// `schemas` or `ddp` (never `auto`); with one device every stage runs in this process.
    public var parallel: StudyConfig.Parallelism
    public var cuda: Bool
    /// Processes that train each schema together.
    public var processes: Int { devices > 1 && parallel == .ddp ? devices : 1 }
    /// Stages that may run at once.
    public var lanes: Int { devices > 1 && parallel == .schemas ? devices : 1 }
    public var description: String {
      let what = cuda ? "CUDA GPU(s)" : "CPU process(es) sharing the cores"
      guard devices > 1 else { return "1 device (\(cuda ? "CUDA" : "CPU")): the stages run one after the other" }
      return parallel == .schemas ? "\(devices) \(what): up to \(devices) schemas at once, one per device"
                                  : "\(devices) \(what): each schema data-parallel over all of them"
    }
  }

  public func devicePlan() throws -> DevicePlan {
    let r = study.settings.run, cuda = study.device.isCUDA
    let origin = study.config.where_("run.devices")
    guard r.devices >= 0 else { throw ConfigError("\(origin): run.devices must be 0 (every device) or a count, not \(r.devices)") }
    // A config that names one GPU (cuda:1) uses that one unless run.devices asks for more.
    let namesOne = study.settings.device.contains(":")
    let available = cuda ? Runtime.cudaDeviceCount : 1
    let devices = r.devices == 0 ? (namesOne ? 1 : max(1, available)) : r.devices
    if cuda && devices > available {
      throw ConfigError("\(origin): run.devices is \(devices) but this machine has \(available) CUDA device(s) (`cxr info`); lower it or set 0")
    }
    if cuda && namesOne && devices > 1 {
      throw ConfigError("\(study.config.where_("device")): device \(study.settings.device) names one GPU, but run.devices is \(devices); say device: cuda to use cuda:0 ..< \(devices)")
    }
    let parallel = r.parallel == .auto ? (study.schemaNames.count >= devices ? .schemas : .ddp) : r.parallel
    return DevicePlan(devices: devices, parallel: parallel, cuda: cuda)
  }

  /// What `cxr run` passes to a stage's child process on `lane`: its device (cuda:lane), or on
  /// the CPU its share of the cores.
  func laneSettings(_ plan: DevicePlan, lane: Int) -> [String] {
    if plan.cuda { return plan.parallel == .schemas ? ["--set", "device=cuda:\(lane)"] : [] }
    let s = study.settings
    let cores = ProcessInfo.processInfo.activeProcessorCount
    var out: [String] = []
    if s.threads <= 0 { out += ["--set", "threads=\(max(1, cores / plan.lanes))"] }
    let workers = LoaderOptions.workers(s.loader.workers)
    out += ["--set", "loader.workers=\(max(1, workers / plan.lanes))"]
    return out
  }

  /// The resolved config the children of a multi-device run read (written by `run`).
  var childConfigURL: URL { study.runRoot.appendingPathComponent("config.yaml") }

  public func stages(plan: DevicePlan? = nil) throws -> [Stage] {
    let plan = try plan ?? devicePlan()
    let c = study.settings
    var stages: [Stage] = []
    // The test set's files are inputs, not outputs of a stage: hash them once for all stages.
    let testFiles = testFingerprints()
    for schema in study.schemaNames {
      let training: SchemaTraining = {
        var t = SchemaTraining(study: study, schema: schema)
        t.processes = plan.processes
        return t
      }()
      // Only what changes the weights (TrainingInputs), and max_steps: raising it continues a
      // training that stopped there.
      let inputs = try TrainingInputs(study: study, schema: schema, processes: plan.processes)
      let maxSteps = "max_steps=\(try study.trainOptions().maxSteps.map(String.init) ?? "none")"
      let trainOutputs = [training.folder.appendingPathComponent(TrainingRecord.fileName)]
      stages.append(Stage(name: "train:\(schema)", inputs: [inputs.fingerprint, maxSteps], outputs: trainOutputs) { [log] lane in
        // Continues an interrupted training of the same inputs, uses a finished one as it is;
        // a folder of other inputs was refused by the preflight (or moved aside by --retrain).
        guard plan.devices > 1 else { try training.run(mode: .auto, log: log); return }
        let nproc = plan.processes > 1 ? ["--nproc", String(plan.processes)] : []
        try ChildCommand(arguments: ["train", self.childConfigURL.path, "--schema", schema, "--if-needed"] + nproc
                           + self.laneSettings(plan, lane: lane),
                         label: "train:\(schema)", log: log).run()
      })
      let s = study.settings
      let testInputs = [settings([("test_data", s.testData), ("preprocess.size", s.preprocess.size), ("predict.weights", s.predict.weights),
                                  ("predict.tta_hflip", s.predict.ttaHflip)])] + testFiles
      stages.append(Stage(name: "predict:\(schema)", dependencies: ["train:\(schema)"], inputs: testInputs,
                          outputs: [predictionsURL(schema)]) { [log] lane in
        guard plan.lanes > 1 else { try self.predict(schema: schema); return }
        try ChildCommand(arguments: ["predict", "--config", self.childConfigURL.path, "--schema", schema] + self.laneSettings(plan, lane: lane),
                         label: "predict:\(schema)", log: log).run()
      })
      if saliencyTop > 0 {
        // Few images (3 kinds x top x findings): in this process, on the study's device.
        stages.append(Stage(name: "explain:\(schema)", dependencies: ["predict:\(schema)"],
                            inputs: [settings([("evaluate.saliency", s.evaluate.saliency), ("predict.weights", s.predict.weights),
                                               ("findings", s.findings)]), Fingerprint.file(self.predictionsURL(schema))] + testFiles,
                            outputs: [saliencyManifestURL(schema)]) {
          try self.explain(schema: schema)
        })
      }
    }
    let referenceFiles = c.schemas.map(\.testFile) + c.references.map(\.file) + [c.evaluate.subgroups.file]
    stages.append(Stage(name: "evaluate",
                        inputs: [self.settings([("findings", c.findings), ("schemas", c.schemas), ("references", c.references),
                                                ("evaluate", c.evaluate)])] + testFiles
                          + self.fileFingerprints(referenceFiles)
                          + self.study.schemaNames.map { Fingerprint.file(self.predictionsURL($0)) }
                          + self.study.schemaNames.flatMap { s -> [String] in
                            let t = SchemaTraining(study: self.study, schema: s)
                            return [Fingerprint.file(t.tunePredictionsURL), Fingerprint.file(t.tuneLabelsURL)]
                          }
                          + self.saliencyFingerprints(),
                        outputs: [evaluationFolder.appendingPathComponent("metrics.csv")], exclusive: true) {
      try self.evaluate()
    })
    return stages
  }

  /// The explain stages' manifests, which the evaluation's report shows.
  func saliencyFingerprints() -> [String] {
    saliencyTop > 0 ? study.schemaNames.map { Fingerprint.file(saliencyManifestURL($0)) } : []
  }

  func testFingerprints() -> [String] {
    guard let root = study.settings.testData.root else {
      return fileFingerprints([study.settings.testData.manifest])
    }
    let names = [CANDIDPTX.reportsName, CANDIDPTX.chestTubeName] + CANDIDPTX.fractureNames
    return names.map { Fingerprint.file(URL(fileURLWithPath: root).appendingPathComponent($0)) }
  }

  /// Predicts the test set with one schema's classifier.
  public func predict(schema: String, out: URL? = nil) throws {
    guard let index = try study.testIndex() else {
      throw ConfigError("\(study.config.source): test_data.kind is none; there is nothing to predict on")
    }
    let weights = study.settings.predict.weights.rawValue
    let ckpt = try SchemaTraining(study: study, schema: schema).checkpoint(weights: weights, note: { log("[predict] \($0)") })
    let loaded = try ConvNeXt.load(checkpoint: ckpt)
    var p = Prediction()
    p.preprocess = try study.preprocessTest
    if let contract = loaded.input, contract.size != p.preprocess.size || contract.equalize != p.preprocess.equalize {
      throw ConfigError("\(ckpt.path) was trained on \(contract) but the config predicts with \(p.preprocess) (preprocess.size, test_data.equalize); make them agree")
    }
    p.device = study.device
    p.batchSize = study.settings.predict.batchSize
    p.workers = LoaderOptions.workers(study.settings.loader.workers)
    p.ttaHorizontalFlip = study.settings.predict.ttaHflip
    p.log = log
    p.cache = try study.cache("test", images: index.records.map { URL(fileURLWithPath: $0.path) }, settings: p.preprocess, log: log)
    try p.run(loaded, weights: ckpt, images: index.records.map { .init(id: $0.id, path: URL(fileURLWithPath: $0.path)) },
              out: out ?? predictionsURL(schema))
  }

  /// The references: the test set's own labels (CANDID-PTX masks), each schema's labels of
  /// the test reports (`test_file`), and the extra `references`.
  public func references(index: DatasetIndex) throws -> [ReferenceLabels] {
    let c = study.settings
    var refs: [ReferenceLabels] = []
    if let builtIn = index.builtInLabels {
      let present = study.findings.filter { builtIn.findings.contains($0) }
      if !present.isEmpty {
        refs.append(try reference(name: index.name.lowercased().contains("candid") ? "masks" : "\(index.name) labels",
                                  source: "\(index.name) labels", labelling: Labelling(index: index, table: builtIn),
                                  policy: .ones))
      }
    }
    func add(_ list: Study.LabelList, _ i: Int, test: Bool) throws {
      guard let schema = try study.labelSchema(list, i, test: test) else { return }
      let table = try schema.read(findings: study.findings)
      let policy = UncertainPolicy(rawValue: schema.uncertainty.rawValue) ?? .ones
      refs.append(try reference(name: schema.name, source: schema.file.path, labelling: Labelling(index: index, table: table),
                                policy: policy))
    }
    for i in c.schemas.indices { try add(.schemas, i, test: true) }
    for i in c.references.indices { try add(.references, i, test: false) }
    return refs
  }

  func reference(name: String, source: String, labelling: Labelling, policy: UncertainPolicy) throws -> ReferenceLabels {
    let f = labelling.set.findings
    var values: [String: [String: Double?]] = [:]
    for (r, rec) in labelling.set.records.enumerated() {
      var row: [String: Double?] = [:]
      for (j, name) in f.enumerated() {
        switch labelling.raw[r * f.count + j] {
        case .positive: row[name] = 1
        case .negative: row[name] = 0
        case .uncertain: row[name] = -1
        case .blank: row[name] = .some(nil)
        }
      }
      values[rec.id] = row
    }
    return try ReferenceLabels(name: name, source: source, values: values, findings: study.findings.filter { f.contains($0) },
                               policy: policy)
  }

  /// Every classifier whose predictions exist, against every reference, into `out` (default:
  /// the run's evaluation folder).
  public func evaluate(out: URL? = nil) throws {
    guard let index = try study.testIndex() else { throw ConfigError("test_data.kind is none: nothing to evaluate") }
    var attributeNotes: [String] = []
    let attributes = try subgroupAttributes(index: index, notes: &attributeNotes)
    let preds = try study.schemaNames.compactMap { s -> Predictions? in
      let u = predictionsURL(s)
      guard FileManager.default.fileExists(atPath: u.path) else { return nil }
      return try Predictions.read(name: s, url: u, findings: study.findings)
    }
    guard !preds.isEmpty else { throw ConfigError("no schema has predictions yet (none is configured, or every training failed)") }
    let refs = try references(index: index)
    guard !refs.isEmpty else {
      throw ConfigError("the test set has no labels for \(study.findings.joined(separator: ", ")) and no schema gives a test_file: nothing to score against")
    }
    // Operating points are chosen on each classifier's own tuning split, with its schema's labels.
    var options = EvaluationOptions()
    options.subgroups = attributes
    options.minimumSubgroupCases = study.settings.evaluate.subgroups.minCases
    for p in preds {
      let t = SchemaTraining(study: study, schema: p.name)
      if let curves = TrainingHistory.curves(model: p.name, metrics: t.folder.appendingPathComponent("metrics.jsonl")) {
        options.trainingCurves.append(curves)
      }
      let fm = FileManager.default
      guard fm.fileExists(atPath: t.tunePredictionsURL.path), fm.fileExists(atPath: t.tuneLabelsURL.path) else {
        log("[evaluate] \(p.name) has no tune_predictions.csv (trained by an older cxr, or no tuning split): no thresholds chosen on tuning for it")
        continue
      }
      options.tunePredictions.append(try Predictions.read(name: p.name, url: t.tunePredictionsURL, findings: study.findings))
      options.tuneReferences[p.name] = try ReferenceLabels.read(name: "\(p.name) tuning labels", url: t.tuneLabelsURL,
                                                                findings: study.findings, policy: .ones)
    }
    var result = try Evaluation.run(predictions: preds, references: refs, findings: study.findings.filter { f in refs.contains { $0.findings.contains(f) } },
                                    rounds: study.settings.evaluate.bootstrap,
                                    seed: UInt64(max(0, study.settings.evaluate.seed)), options: options)
    result.saliency = try saliencyFigures()
    result.notes = attributeNotes + result.notes
    try result.write(to: out ?? evaluationFolder)
    for n in result.notes { log("[evaluate] \(n)") }
  }

  /// The attributes the evaluation is stratified by: CANDID-PTX's chest tube (from its masks),
  /// its view position (from the DICOM headers, where known) and the columns of
  /// `evaluate.subgroups.file`. Read before any prediction, so a bad file fails fast. What the
  /// report should say about them (unknown views, an attribute skipped) goes to `notes`.
  func subgroupAttributes(index: DatasetIndex, notes: inout [String]) throws -> [SubgroupAttribute] {
    let settings = study.settings.evaluate.subgroups
    guard settings.minCases >= 1 else {
      throw ConfigError("\(study.config.where_("evaluate.subgroups.min_cases")): evaluate.subgroups.min_cases must be at least 1, got \(settings.minCases)")
    }
    if settings.file == nil, !settings.columns.isEmpty {
      throw ConfigError("\(study.config.where_("evaluate.subgroups.columns")): evaluate.subgroups.columns needs evaluate.subgroups.file, the CSV they are columns of")
    }
    // The user's file first: a bad one fails before any header is read.
    var fromFile: [SubgroupAttribute] = []
    if let file = settings.file {
      fromFile = try SubgroupAttribute.read(URL(fileURLWithPath: file), columns: settings.columns,
                                            option: "evaluate.subgroups.file (\(study.config.where_("evaluate.subgroups.file")))")
    }
    var attributes: [SubgroupAttribute] = []
    if study.settings.testData.kind == .candid, let root = study.settings.testData.root {
      let candid = CANDIDPTX(root: URL(fileURLWithPath: root))
      if let tubes = candid.chestTubeAttribute(index) {
        attributes.append(SubgroupAttribute(name: CANDIDPTX.chestTubeAttributeName, source: "\(CANDIDPTX.chestTubeName) masks", values: tubes))
      }
      if let own = fromFile.first(where: { $0.name == CANDIDPTX.viewPositionAttributeName }) {
        // Earlier versions said to put the view in the CSV: that column wins.
        notes.append("view position: taken from \(own.source), not from the DICOM headers")
      } else {
        // The headers only (no pixel data), once per evaluation, on every core.
        let views = candid.viewPositions(index)
        log("[evaluate] read the View Position of \(index.records.count) DICOM header(s) in \(String(format: "%.2f", views.seconds)) s")
        if let note = views.note { notes.append(note) }
        if !views.values.isEmpty {
          attributes.append(SubgroupAttribute(name: CANDIDPTX.viewPositionAttributeName, source: "DICOM View Position (0018,5101)", values: views.values))
        }
      }
    }
    attributes += fromFile
    return attributes
  }

  /// Checks the whole study (every path, name, label file, the test set, folders trained with
  /// other settings) before anything runs; throws one error listing every problem.
  public func preflight(force: Set<String> = [], retrain: Set<String> = [], processes: Int = 1) throws {
    var scope = Preflight.Scope(schemas: study.schemaNames, test: study.settings.testData.kind != .none)
    scope.processes = processes
    scope.force = force
    scope.retrain = retrain
    scope.stageNames = stageNames
    try Preflight(study: study).check(scope)
  }

  /// Runs the pipeline and writes the study report; returns the stage outcomes. `retrain`
  /// names schemas (or `all`) whose folders are moved aside (`<schema>.replaced-<UTC time>`,
  /// never deleted) and trained again. Stops at the first SIGINT/SIGTERM, after the running
  /// stage saved its work, marking nothing done that did not finish, and then throws
  /// `Interrupted` (after the report); the same command continues.
  @discardableResult
  public func run(force: Set<String> = [], retrain: Set<String> = []) throws -> [(String, StageOutcome)] {
    let plan = try devicePlan()
    try preflight(force: force, retrain: retrain, processes: plan.processes)
    if plan.devices > 1 { log("[run] \(plan.description)") }
    try FileManager.default.createDirectory(at: study.runRoot, withIntermediateDirectories: true)
    try AtomicFile.write(study.config.resolvedYAML(), to: study.runRoot.appendingPathComponent("config.yaml"))
    for schema in study.schemaNames where retrain.contains(schema) || retrain.contains("all") {
      let folder = study.schemaFolder(schema)
      guard FileManager.default.fileExists(atPath: folder.path) else { continue }
      let aside = try AtomicFile.moveAside(folder)
      log("[train:\(schema)] --retrain: moved the old folder aside to \(aside.path)")
    }
    let pipeline = try Pipeline(folder: study.runRoot)
    pipeline.log = log
    StopSignal.install()
    defer { StopSignal.uninstall() }
    let outcomes = pipeline.run(try stages(plan: plan), force: force, lanes: plan.lanes)
    try StudyReport(run: self, outcomes: outcomes, pipeline: pipeline).write()
    log("[report] \(reportURL.path)")
    if let stop = pipeline.interruption {
      throw Interrupted(signal: stop.signal, message: "\(stop.message); stages not finished: \(outcomes.filter { !$0.1.succeeded }.map(\.0).joined(separator: ", ")); run the same command again to continue")
    }
    return outcomes
  }
}
