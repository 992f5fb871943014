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
    XCTAssertEqual(try c.string("name"), "demo")
    XCTAssertEqual(try c.int("seed"), 3)
    XCTAssertEqual(try c.double("train.lr"), 1e-4)
    XCTAssertEqual(try c.int("train.epochs"), 5, "--set wins over the file")
    XCTAssertEqual(try c.double("train.weight_decay"), 3e-4, "default kept")
    XCTAssertEqual(try c.double("train.augment.horizontal_flip"), 1.0, "int accepted for a number")
    XCTAssertNil(c.value("train.bf16"), "automatic per device unless given")
    XCTAssertEqual(try c.bool("train.cudnn_benchmark"), true, "cuDNN's autotuner asked for (used with CUDA only)")
    XCTAssertEqual(try c.doubles("train.betas"), [0.9, 0.99])
    XCTAssertEqual(try c.strings("findings"), ["Pneumothorax"])
    XCTAssertEqual(c.count("schemas"), 2)
    XCTAssertEqual(try c.string("schemas[0].format"), "chexpert", "item default filled in")
    XCTAssertEqual(try c.string("schemas[0].uncertain"), "ones")
    XCTAssertEqual(try c.string("schemas[1].uncertain"), "zeros")
    XCTAssertEqual(try c.string("schemas[0].file"), "/work/x/labels/truth.csv", "relative path resolved")
    XCTAssertEqual(try c.string("schemas[1].file"), "/abs/llm.csv")
    XCTAssertEqual(c.pairs("schemas[1].values").map(\.0), ["Present", "Absent", "Uncertain"])
    XCTAssertEqual(try c.string("train_data.root"), "/work/x/data/mimic")
  }

  func testCuDNNBenchmarkCanBeTurnedOffAndIsDocumented() throws {
    let c = try Config.parse(yaml, source: "demo.yaml", overrides: ["train.cudnn_benchmark=false"])
    XCTAssertEqual(try c.bool("train.cudnn_benchmark"), false)
    XCTAssertTrue(c.resolvedYAML().contains("cudnn_benchmark: false"))
    XCTAssertTrue(Config.documentedDefaults.contains("  cudnn_benchmark: true\n"), Config.documentedDefaults)
    XCTAssertTrue(Config.documentedDefaults.contains("cudnn_benchmark: cuDNN's autotuner, used with CUDA only"))
  }

  func testResolvedYAMLRoundTrips() throws {
    let c = try Config.parse(yaml, source: "demo.yaml")
    let again = try Config.parse(c.resolvedYAML(), source: "resolved.yaml")
    XCTAssertEqual(c.root, again.root)
    XCTAssertTrue(c.resolvedYAML().contains("lr: 0.0001"))
  }

  func testUnknownKeysWrongTypesAndMissingItemsNameKeyAndFile() throws {
    func error(_ text: String, _ overrides: [String] = []) -> String {
      do { _ = try Config.parse(text, source: "x.yaml", overrides: overrides); return "no error" } catch { return "\(error)" }
    }
    XCTAssertTrue(error("train:\n  lrr: 1\n").hasPrefix("x.yaml: unknown key train.lrr (known keys: accumulation, augment, betas,"))
    XCTAssertTrue(error("train:\n  epochs: many\n").hasPrefix("x.yaml: train.epochs "), error("train:\n  epochs: many\n"))
    XCTAssertEqual(error("loader:\n  batch: 3\n"), "x.yaml:2: unknown key 'loader.batch'; known keys under 'loader': batch_size, workers, prefetch, bad_files, max_bad_fraction")
    // A list where one value belongs is refused, not read as "not set".
    XCTAssertEqual(error("model:\n  pretrained: [a.safetensors]\n"), "x.yaml:2: 'model.pretrained' must be a single value (text or a number), not a list")
    XCTAssertEqual(error("test_data:\n  root: {a: b}\n"), "x.yaml:2: 'test_data.root' must be a single value (text or a number), not a mapping")
    XCTAssertEqual(error("loader:\n  batch_size: many\n"), "x.yaml:2: 'loader.batch_size' must be an integer, not a string")
    XCTAssertEqual(error("schemas:\n  - name: a\n"), "x.yaml:2: item 0 of 'schemas' needs 'file'")
    XCTAssertEqual(error("schemas:\n  - name: a\n    file: f\n    colour: red\n"),
                   "x.yaml:4: unknown key 'schemas[0].colour'; known keys under 'schemas[0]': name, file, format, uncertain, id_column, columns, values, test_file")
    XCTAssertTrue(error("seed: 1\n", ["model.nope=3"]).hasPrefix("--set model.nope=3: unknown key 'model.nope'; known keys under 'model'"))
    XCTAssertEqual(error("seed: 1\n", ["noequals"]), "--set 'noequals' must look like key.path=value")
    XCTAssertEqual(error("seed: [1\n").hasPrefix("x.yaml is not valid YAML"), true)
    XCTAssertEqual(error("seed: 1\nseed: 2\n"), "x.yaml:2: key 'seed' appears twice")
  }

  func testSetParsesScalarsLikeYAML() {
    XCTAssertEqual(ConfigValue.scalar("3"), .int(3))
    XCTAssertEqual(ConfigValue.scalar("1e-5"), .double(1e-5))
    XCTAssertEqual(ConfigValue.scalar("true"), .bool(true))
    XCTAssertEqual(ConfigValue.scalar("cuda:0"), .string("cuda:0"))
    XCTAssertEqual(ConfigValue.scalar("[PA, AP]"), .list([.string("PA"), .string("AP")]))
    XCTAssertEqual(ConfigValue.scalar("'007'"), .string("007"))
  }
}

final class ShippedConfigTests: XCTestCase {
  func testShippedConfigsAreValid() throws {
    for name in ["study.yaml", "demo.yaml"] {
      let url = TestEnvRoot.url.appendingPathComponent("configs/\(name)")
      let c = try Config.load(url)
      XCTAssertEqual(c.count("schemas"), name == "study.yaml" ? 7 : 4, name)
      if name == "study.yaml" {
        XCTAssertEqual(try c.double("train.lr"), 1e-5)
        XCTAssertEqual(try c.double("train.weight_decay"), 3e-4)
        XCTAssertEqual(try c.doubles("train.betas"), [0.9, 0.99])
        XCTAssertEqual(try c.double("train.ema_decay"), 0.9999)
        XCTAssertEqual(try c.string("model.arch"), "convnext_base")
        XCTAssertEqual(try c.int("preprocess.size"), 512)
      }
    }
  }
}

enum TestEnvRoot {
  static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
