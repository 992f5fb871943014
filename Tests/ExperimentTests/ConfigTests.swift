import Common
import Foundation
import Train
import XCTest
@testable import Experiment

final class ConfigTests: XCTestCase {
  let yaml = """
    name: demo
    seed: 3
    findings: [Pneumothorax]
    train_data:
      root: data/mimic
    schemas:
      - name: truth
        file: labels/truth.csv
      - name: llm
        file: /abs/llm.csv
        format: mapped
        uncertain: ignore
        columns: {Pneumothorax: ptx_response}
        values: {Present: 1, Absent: 0, Uncertain: -1}
    train:
      lr: 1e-4
      epochs: 2
      augment:
        horizontal_flip: 1
    """

  func testDefaultsFileAndOverridesInThatOrder() throws {
    let c = try Config.parse(yaml, source: "demo.yaml", overrides: ["train.epochs=5", "schemas[1].uncertain=zeros"],
                             baseDir: URL(fileURLWithPath: "/work/x"))
    let s = c.settings
    XCTAssertEqual(s.name, "demo")
    XCTAssertEqual(s.seed, 3)
    XCTAssertEqual(s.train.lr, 1e-4)
    XCTAssertEqual(s.train.epochs, 5, "--set wins over the file")
    XCTAssertEqual(s.train.weightDecay, 3e-4, "default kept")
    XCTAssertEqual(s.train.augment.horizontalFlip, 1.0, "int accepted for a number")
    XCTAssertNil(s.train.bf16, "automatic per device unless given")
    XCTAssertTrue(s.train.cudnnBenchmark, "cuDNN's autotuner asked for (used with CUDA only)")
    XCTAssertEqual(s.train.betas, [0.9, 0.99])
    XCTAssertEqual(s.findings, ["Pneumothorax"])
    XCTAssertEqual(s.schemas.count, 2)
    XCTAssertEqual(s.schemas[0].format, .chexpert, "item default filled in")
    XCTAssertEqual(s.schemas[0].uncertain, .ones)
    XCTAssertEqual(s.schemas[1].uncertain, .zeros)
    XCTAssertEqual(s.schemas[0].file, "/work/x/labels/truth.csv", "relative path resolved")
    XCTAssertEqual(s.schemas[1].file, "/abs/llm.csv")
    XCTAssertEqual(s.schemas[1].values, ["Present": 1, "Absent": 0, "Uncertain": -1])
    XCTAssertEqual(s.trainData.root, "/work/x/data/mimic")
    XCTAssertEqual(c.where_("train.epochs"), "--set train.epochs=5")
    XCTAssertEqual(c.where_("train.lr"), "demo.yaml:16")
    XCTAssertEqual(c.where_("schemas[1].format"), "demo.yaml:11")
  }

  func testCuDNNBenchmarkCanBeTurnedOffAndIsDocumented() throws {
    let c = try Config.parse(yaml, source: "demo.yaml", overrides: ["train.cudnn_benchmark=false"])
    XCTAssertFalse(c.settings.train.cudnnBenchmark)
    XCTAssertTrue(c.resolvedYAML().contains("cudnn_benchmark: false"))
    XCTAssertTrue(Config.documentedDefaults.contains("  cudnn_benchmark: true  # cuDNN's autotuner, used with CUDA only"), Config.documentedDefaults)
  }

  func testResolvedYAMLRoundTrips() throws {
    let c = try Config.parse(yaml, source: "demo.yaml")
    let again = try Config.parse(c.resolvedYAML(), source: "resolved.yaml")
    XCTAssertEqual(c.settings, again.settings)
    XCTAssertTrue(c.resolvedYAML().contains("lr: 0.0001\n"), c.resolvedYAML())
    XCTAssertTrue(c.resolvedYAML().contains("pretrained: null\n"), "every key, unset ones as null")
    XCTAssertTrue(c.resolvedYAML().contains("layer_scale_init: 1.0e-06\n"), "a float YAML 1.1 readers see as one")
  }

  /// `cxr config defaults` is generated from the struct defaults, documents every key, and is
  /// itself a valid config that resolves to the defaults.
  func testDocumentedDefaultsAreAValidConfigAndDocumentEveryKey() throws {
    let text = Config.documentedDefaults
    let c = try Config.parse(text, source: "defaults.yaml")
    XCTAssertEqual(c.settings, StudyConfig())
    let keys = try NodeEncoder.flatten(StudyConfig()).keys.sorted()
    let trainKeys = try NodeEncoder.flatten(TrainOptions(), prefix: "train").keys
    XCTAssertEqual(trainKeys.count, 37, "every train key (augment's twelve included)")
    for k in keys {
      XCTAssertNotNil(StudyConfig.documentation[k], "undocumented key \(k)")
      XCTAssertTrue(text.contains("\(k.split(separator: ".").last!):"), "defaults omit \(k)")
    }
    for k in ["name", "file", "format", "uncertain", "id_column", "columns", "values", "test_file"] {
      XCTAssertTrue(text.contains("#   \(k): "), "the item keys are shown: \(k)")
    }
    XCTAssertFalse(text.contains("scheduleKind") || text.contains("emaWarmupOn"), "no internal names")
    // One prediction batch-size default everywhere.
    XCTAssertEqual(StudyConfig().predict.batchSize, StudyConfig.Predict.defaultBatchSize)
  }

  func testUnknownKeysWrongTypesAndMissingItemsNameKeyAndFile() throws {
    func error(_ text: String, _ overrides: [String] = []) -> String {
      do { _ = try Config.parse(text, source: "x.yaml", overrides: overrides); return "no error" } catch { return "\(error)" }
    }
    XCTAssertTrue(error("train:\n  lrr: 1\n").hasPrefix("x.yaml:2: unknown key 'train.lrr'; did you mean 'train.lr'? known keys under 'train': epochs, lr, weight_decay, betas,"),
                  error("train:\n  lrr: 1\n"))
    XCTAssertEqual(error("train:\n  epochs: many\n"), "x.yaml:2: 'train.epochs' must be a whole number, not text ('many')")
    XCTAssertEqual(error("train:\n  epochs: 0\n"), "x.yaml:2: train.epochs is 0; it must be at least 1")
    XCTAssertEqual(error("train:\n  schedule: cosine\n"), "x.yaml:2: train.schedule is 'cosine'; use constant or warmup_cosine")
    XCTAssertEqual(error("loader:\n  batch: 3\n"), "x.yaml:2: unknown key 'loader.batch'; did you mean 'loader.batch_size'? known keys under 'loader': batch_size, workers, prefetch, bad_files, max_bad_fraction")
    // A list where one value belongs is refused, not read as "not set".
    XCTAssertEqual(error("model:\n  pretrained: [a.safetensors]\n"), "x.yaml:2: 'model.pretrained' must be a single value (text or a number), not a list")
    XCTAssertEqual(error("test_data:\n  root: {a: b}\n"), "x.yaml:2: 'test_data.root' must be a single value (text or a number), not a mapping")
    XCTAssertEqual(error("loader:\n  batch_size: many\n"), "x.yaml:2: 'loader.batch_size' must be a whole number, not text ('many')")
    XCTAssertEqual(error("predict:\n  weights: emma\n"), "x.yaml:2: predict.weights is 'emma'; use best, ema or raw")
    XCTAssertEqual(error("schemas:\n  - name: a\n"), "x.yaml:2: item 0 of 'schemas' needs 'file'")
    XCTAssertEqual(error("schemas:\n  - name: a\n    file: f\n    colour: red\n"),
                   "x.yaml:4: unknown key 'schemas[0].colour'; known keys under 'schemas[0]': name, file, format, uncertain, id_column, columns, values, test_file, derive, sweep")
    XCTAssertEqual(error("schemas:\n  - name: a\n    file: f\n    format: csv\n"), "x.yaml:4: schemas[0].format is 'csv'; use chexpert, mapped or probability")
    // --set is named as the origin of what it gave.
    XCTAssertTrue(error("seed: 1\n", ["model.nope=3"]).hasPrefix("--set model.nope=3: unknown key 'model.nope'; known keys under 'model'"))
    XCTAssertEqual(error("seed: 1\n", ["train.lr=fast"]), "--set train.lr=fast: 'train.lr' must be a number, not text ('fast')")
    XCTAssertEqual(error("seed: 1\n", ["train.epochs=0"]), "--set train.epochs=0: train.epochs is 0; it must be at least 1")
    XCTAssertEqual(error("seed: 1\n", ["noequals"]), "--set 'noequals' must look like key.path=value")
    XCTAssertEqual(error("seed: [1\n").hasPrefix("x.yaml is not valid YAML"), true)
    XCTAssertEqual(error("seed: 1\nseed: 2\n"), "x.yaml:2: key 'seed' appears twice")
    XCTAssertEqual(error("seed: -1\n"), "x.yaml:1: 'seed' must be >= 0")
  }

  func testSetParsesValuesLikeYAML() throws {
    let c = try Config.parse("name: a\n", overrides: ["seed=3", "train.lr=1e-5", "train.bf16=true", "device=cuda:0",
                                                       "train_data.views=[PA, AP]", "name='007'"])
    XCTAssertEqual(c.settings.seed, 3)
    XCTAssertEqual(c.settings.train.lr, 1e-5)
    XCTAssertEqual(c.settings.train.bf16, true)
    XCTAssertEqual(c.settings.device, "cuda:0")
    XCTAssertEqual(c.settings.trainData.views, ["PA", "AP"])
    XCTAssertEqual(c.settings.name, "007")
  }
}

final class ShippedConfigTests: XCTestCase {
  func testShippedConfigsAreValid() throws {
    for name in ["study.yaml", "demo.yaml"] {
      let url = TestEnvRoot.url.appendingPathComponent("configs/\(name)")
      let c = try Config.load(url)
      XCTAssertEqual(c.settings.schemas.count, name == "study.yaml" ? 7 : 4, name)
      if name == "study.yaml" {
        let t = c.settings.train
        XCTAssertEqual(t.lr, 1e-5)
        XCTAssertEqual(t.weightDecay, 3e-4)
        XCTAssertEqual(t.betas, [0.9, 0.99])
        XCTAssertEqual(t.emaDecay, 0.9999)
        XCTAssertEqual(c.settings.model.arch, "convnext_base")
        XCTAssertEqual(c.settings.preprocess.size, 512)
      }
    }
  }
}

enum TestEnvRoot {
  static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
