import Common
import Data
import Foundation
import Train

/// A whole study as one typed value: the YAML config's sections, each a Codable struct whose
/// initial values are the only defaults (the study's own where the paper gives them: 512 px,
/// 80/20 patient split, U-ones, Lion lr 1e-5, wd 3e-4, betas 0.9/0.99, EMA 0.9999).
/// `Config` reads a file into it strictly; `documentation` says what every key means.
public struct StudyConfig: Codable, Equatable, Sendable {
  public var name = "study"
  public var out = "runs"
  public var seed = 0
  public var device = "auto"
  public var threads = 0
  public var findings = ["Pneumothorax", "Fracture"]
  public var trainData = TrainData()
  public var testData = TestData()
  public var schemas: [LabelItem] = []
  public var references: [LabelItem] = []
  public var split = Split()
  public var preprocess = Preprocessing()
  public var model = Model()
  public var loader = Loader()
  public var train = TrainOptions()
  public var predict = Predict()
  public var evaluate = Evaluate()
  public var run = Run()

  enum CodingKeys: String, CodingKey {
    case name, out, seed, device, threads, findings
    case trainData = "train_data"
    case testData = "test_data"
    case schemas, references, split, preprocess, model, loader, train, predict, evaluate, run
  }

  public init() {}

  public enum TrainKind: String, Sendable, ConfigChoice { case mimic, manifest }
  public enum TestKind: String, Sendable, ConfigChoice { case candid, manifest, none }
  public enum WeightsChoice: String, Sendable, ConfigChoice { case best, ema, raw }

  public struct TrainData: Codable, Equatable, Sendable {
    public var kind: TrainKind = .mimic
    public var root: String?
    public var metadata: String?
    public var splitFile: String?
    public var manifest: String?
    public var views = ["PA", "AP"]
    public var equalize = false
    enum CodingKeys: String, CodingKey {
      case kind, root, metadata
      case splitFile = "split_file"
      case manifest, views, equalize
    }
  }

  public struct TestData: Codable, Equatable, Sendable {
    public var kind: TestKind = .candid
    public var root: String?
    public var manifest: String?
    public var equalize = true
  }

  /// An item of `schemas` (a labeller whose labels train a classifier) or `references` (an
  /// extra test-set reference).
  public struct LabelItem: Codable, Equatable, Sendable {
    public var name: String?
    public var file: String?
    public var format: LabelFormat = .chexpert
    public var uncertain: UncertaintyPolicy = .ones
    public var idColumn: String?
    public var columns: [String: String] = [:]
    public var values: [String: Int] = [:]
    /// Schemas only: the same labeller applied to the test-set reports (a reference).
    public var testFile: String?
    /// Schemas only: labels computed from other schemas instead of read from `file`.
    public var derive = Derive()
    /// Schemas only: one derived schema per point of a grid of flip rates.
    public var sweep = Sweep()
    enum CodingKeys: String, CodingKey {
      case name, file, format, uncertain
      case idColumn = "id_column"
      case columns, values
      case testFile = "test_file"
      case derive, sweep
    }
    public init() {}
  }

  public struct Split: Codable, Equatable, Sendable {
    public var tuneFraction = 0.2
    public var stratify = false
    public var file: String?
    enum CodingKeys: String, CodingKey {
      case tuneFraction = "tune_fraction"
      case stratify, file
    }
  }

  public struct Preprocessing: Codable, Equatable, Sendable {
    public var size = 512
    public var cache = false
  }

  public struct Model: Codable, Equatable, Sendable {
    public var arch = "convnext_base"
    public var pretrained: String?
    public var inChans = 1
    public var depths: [Int] = []
    public var dims: [Int] = []
    public var dropPathRate = 0.0
    public var headDropout = 0.0
    public var layerScaleInit = 1e-6
    enum CodingKeys: String, CodingKey {
      case arch, pretrained
      case inChans = "in_chans"
      case depths, dims
      case dropPathRate = "drop_path_rate"
      case headDropout = "head_dropout"
      case layerScaleInit = "layer_scale_init"
    }
  }

  public struct Loader: Codable, Equatable, Sendable {
    public var batchSize = 32
    public var workers = 0
    public var prefetch = 2
    public var badFiles: BadFilePolicy = .skip
    public var maxBadFraction = 0.01
    enum CodingKeys: String, CodingKey {
      case batchSize = "batch_size"
      case workers, prefetch
      case badFiles = "bad_files"
      case maxBadFraction = "max_bad_fraction"
    }
  }

  public struct Predict: Codable, Equatable, Sendable {
    /// The one default of a prediction batch (`cxr predict --batch` and `Prediction` use it too).
    public static let defaultBatchSize = 32
    public var batchSize = Predict.defaultBatchSize
    public var ttaHflip = false
    public var weights: WeightsChoice = .best
    enum CodingKeys: String, CodingKey {
      case batchSize = "batch_size"
      case ttaHflip = "tta_hflip"
      case weights
    }
  }

  public struct Evaluate: Codable, Equatable, Sendable {
    public var bootstrap = 1000
    public var seed = 0
    public var saliency = SaliencySettings()
    public var subgroups = Subgroups()
  }

  /// Grad-CAM overlays in the evaluation report (the `explain:<schema>` stages).
  public struct SaliencySettings: Codable, Equatable, Sendable {
    /// Images of each kind (true positive, false positive, false negative) per model and finding; 0: off.
    public var top = 3
  }

  /// Per-image attributes to stratify the evaluation by. The chest tube (CANDID-PTX's
  /// chest_tube.csv masks) and the view position (its DICOM headers, where known) are always
  /// ones; `file` adds a user CSV's columns.
  public struct Subgroups: Codable, Equatable, Sendable {
    public var file: String?
    public var columns: [String] = []
    public var minCases = 10
    enum CodingKeys: String, CodingKey {
      case file, columns
      case minCases = "min_cases"
    }
  }

  /// How `cxr run` uses several devices.
  public enum Parallelism: String, Sendable, ConfigChoice {
    /// `schemas` when there are at least as many schemas to train as devices, else `ddp`.
    case auto
    /// Up to one schema per device at once (training, then prediction), each a child process.
    case schemas
    /// Each schema in turn, data-parallel over every device (`cxr train --nproc`).
    case ddp
  }

  public struct Run: Codable, Equatable, Sendable {
    public var parallel: Parallelism = .auto
    /// 0: every CUDA GPU of the machine (one on the CPU).
    public var devices = 0
  }

  /// Lists of mappings whose items are merged over a default item.
  static let itemDefaults: [String: LabelItem] = ["schemas": LabelItem(), "references": LabelItem()]


  /// What every key means: `cxr config defaults` writes it beside the key. A test checks that
  /// every key of the defaults has a line here.
  public static let documentation: [String: String] = {
    var d: [String: String] = [
      "name": "the run folder is <out>/<name>",
      "out": "the folder that holds run folders",
      "seed": "every random choice derives from this seed",
      "device": "auto (cuda if available) | cpu | cuda | cuda:N",
      "threads": "libtorch intra-op threads; 0 = all cores",
      "findings": "the findings each classifier predicts",
      "train_data": "the training images (MIMIC-CXR-JPG or a manifest)",
      "train_data.kind": "mimic | manifest",
      "train_data.root": "MIMIC-CXR-JPG root (holds files/ and the metadata CSV)",
      "train_data.metadata": "default: <root>/mimic-cxr-2.0.0-metadata.csv[.gz]",
      "train_data.split_file": "the official split file, optional",
      "train_data.manifest": "kind manifest: CSV with path, patient, study columns",
      "train_data.views": "frontal views",
      "train_data.equalize": "histogram-equalize (MIMIC-CXR-JPG was equalized at conversion)",
      "test_data": "the test set (CANDID-PTX or a manifest)",
      "test_data.kind": "candid | manifest | none",
      "test_data.root": "CANDID-PTX root (DICOM folder and the CSVs)",
      "test_data.manifest": "kind manifest: CSV with id and path columns",
      "test_data.equalize": "CANDID-PTX DICOMs were not equalized",
      "schemas": "one classifier per schema: items with name, file, format, uncertain, id_column, columns, values, test_file, derive, sweep",
      "references": "extra test-set references (the masks are always one): items as schemas, without test_file",
      "schemas.derive": "labels computed from other schemas at load time, instead of file: exactly one of from, vote, dawid_skene",
      "schemas.derive.from": "label noise: the schema whose labels are flipped",
      "schemas.derive.flip_positive": "from: P(a positive label becomes negative): sensitivity 1 - P relative to the source",
      "schemas.derive.flip_negative": "from: P(a negative label becomes positive): specificity 1 - Q",
      "schemas.derive.per_finding": "from: finding -> {flip_positive, flip_negative} over the rates above",
      "schemas.derive.seed": "from: the flips' seed (null: the study's seed)",
      "schemas.derive.vote": "a vote of these schemas (each under its own uncertain policy)",
      "schemas.derive.rule": "vote: majority | any | all (null: majority)",
      "schemas.derive.ties": "vote, majority: positive | negative | uncertain (left out of the loss) (null: positive)",
      "schemas.derive.dawid_skene": "the Dawid-Skene consensus of these schemas (at least 3)",
      "schemas.derive.output": "dawid_skene: hard (posterior >= 0.5) | soft (the posterior probability is the target) (null: hard)",
      "schemas.sweep": "one derived schema per grid point, named <name>-fp<P>-fn<Q>; needs derive.from",
      "schemas.sweep.flip_positive": "the flip_positive values of the grid",
      "schemas.sweep.flip_negative": "the flip_negative values of the grid",
      "split": "the patient-level train/tune split",
      "split.tune_fraction": "share of patients in the tuning split",
      "split.stratify": "stratify the split by positive findings",
      "split.file": "import an existing split.csv instead of drawing one",
      "preprocess": "what the model sees",
      "preprocess.size": "longest side resized to this, then padded to size x size",
      "preprocess.cache": "build a preprocessed uint8 cache before training",
      "model": "the classifier",
      "model.arch": "convnext_atto ... convnext_large",
      "model.pretrained": "a local safetensors file (timm ImageNet weights or a cxr checkpoint); null = random init",
      "model.in_chans": "input channels (1: grayscale; a 3-channel stem is summed)",
      "model.depths": "custom stage depths (4 numbers) instead of the arch's; [] = the arch's",
      "model.dims": "custom stage widths (4 numbers); a custom size is not a timm model name",
      "model.drop_path_rate": "stochastic depth",
      "model.head_dropout": "dropout before the classifier",
      "model.layer_scale_init": "timm's ls_init_value: the residual branches' starting scale",
      "loader": "decoding and batching",
      "loader.batch_size": "images per training batch",
      "loader.workers": "decoding threads, all decoding at once; 0 = all cores",
      "loader.prefetch": "batches decoded ahead per worker (PyTorch's prefetch_factor)",
      "loader.bad_files": "skip (listed in bad_files.csv) | fail",
      "loader.max_bad_fraction": "training stops with an error when more than this share of a split's images cannot be read",
      "train": "the training loop",
      "predict": "prediction on the test set",
      "predict.batch_size": "images per prediction batch",
      "predict.tta_hflip": "average with the horizontally mirrored image",
      "predict.weights": "best (chosen on the tuning split by train.selection) | ema | raw (the last checkpoint's)",
      "evaluate": "the evaluation against every reference",
      "evaluate.bootstrap": "bootstrap rounds for the 95 % CIs",
      "evaluate.seed": "the bootstrap's seed",
      "evaluate.saliency": "Grad-CAM overlays (last ConvNeXt stage) in evaluation/report.html, from the explain:<schema> stages",
      "evaluate.saliency.top": "per model and finding, this many top true positives, false positives and false negatives against the test set's own labels (CANDID-PTX masks); 0 = off",
      "evaluate.subgroups": "per-image attributes to stratify by: each value against the rest (subgroups.csv); CANDID-PTX's chest tube (from chest_tube.csv's masks) and view position (from the DICOM headers, where known) always",
      "evaluate.subgroups.file": "a CSV keyed by image id (id, dicom_id or SOPInstanceUID) with one column per attribute (sex, age_band, site, ...); null = none",
      "evaluate.subgroups.columns": "the file's columns to stratify by; [] = every column but the id",
      "evaluate.subgroups.min_cases": "the fewest cases a subgroup and its complement each need to be reported",
      "run": "how cxr run uses several devices",
      "run.parallel": "auto (schemas when there are at least as many schemas as devices, else ddp) | schemas (one schema per device at once) | ddp (each schema data-parallel over all devices; N processes train a global batch N times one process's)",
      "run.devices": "devices to use: 0 = every CUDA GPU (1 on the CPU); on the CPU, N > 1 runs N processes that share the cores",
    ]
    for (k, v) in TrainOptions.documentation { d["train.\(k)"] = v }
    return d
  }()
}

extension LabelFormat: ConfigChoice {}
extension UncertaintyPolicy: ConfigChoice {}
extension BadFilePolicy: ConfigChoice {}
