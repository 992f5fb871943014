import Foundation
import Yams

/// What a study config may contain: the documented defaults (every known key, its type and
/// default value), the item templates of its lists, and the maps whose keys are free.
struct ConfigSchema {
  let defaults: ConfigValue
  /// list path (e.g. "schemas") -> defaults of one item
  let itemTemplates: [String: ConfigValue]
  /// keys that an item must give
  let requiredItemKeys: [String: [String]]
  /// paths (with "[]" for any list index) whose keys are free-form
  let openMaps: Set<String>
  /// mappings checked by the layer that reads them (`train` by the Train layer's options)
  var delegated: Set<String> = []

  enum Part: Equatable { case key(String), index(Int) }

  static func split(_ path: String) -> [Part] {
    var parts: [Part] = []
    for seg in path.split(separator: ".") {
      var s = Substring(seg)
      if let b = s.firstIndex(of: "[") {
        let name = s[..<b]
        if !name.isEmpty { parts.append(.key(String(name))) }
        s = s[b...]
        while s.hasPrefix("["), let e = s.firstIndex(of: "]") {
          if let i = Int(s[s.index(after: s.startIndex)..<e]) { parts.append(.index(i)) }
          s = s[s.index(after: e)...]
        }
      } else {
        parts.append(.key(String(s)))
      }
    }
    return parts
  }

  /// "schemas[3].columns" -> "schemas[].columns"
  static func generic(_ path: String) -> String {
    path.replacingOccurrences(of: #"\[\d+\]"#, with: "[]", options: .regularExpression)
  }

  static let pathKeys: Set<String> = ["root", "metadata", "split_file", "manifest", "file", "pretrained", "out",
                                      "test_file", "human", "checkpoint"]
  static func isPathKey(_ path: String) -> Bool {
    guard case .key(let k)? = split(path).last else { return false }
    return pathKeys.contains(k)
  }

  /// Merges `user` over the defaults, rejecting unknown keys and wrong types.
  func validate(_ user: ConfigValue, source: String, origins: [String: String]) throws -> ConfigValue {
    try merge(defaults: defaults, user: user, path: "", source: source, origins: origins)
  }

  private func merge(defaults d: ConfigValue, user u: ConfigValue, path: String, source: String,
                     origins: [String: String]) throws -> ConfigValue {
    let at = origins[path] ?? source
    if delegated.contains(path) {
      if case .null = u { return .map([]) }
      guard case .map = u else { throw ConfigError("\(at): '\(path)' must be a mapping, not \(u.typeName)") }
      return u
    }
    if openMaps.contains(ConfigSchema.generic(path)) {
      guard case .map(let pairs) = u else {
        if case .null = u { return .map([]) }
        throw ConfigError("\(at): '\(path)' must be a mapping, not \(u.typeName)")
      }
      for (k, v) in pairs {
        switch v {
        case .map, .list: throw ConfigError("\(origins[ConfigPath.join(path, k)] ?? at): '\(ConfigPath.join(path, k))' must be a single value")
        default: break
        }
      }
      return u
    }
    switch (d, u) {
    case (.map(let dp), .map(let up)):
      let known = Set(dp.map { $0.0 })
      for (k, _) in up where !known.contains(k) {
        let p = ConfigPath.join(path, k)
        let options = dp.map { $0.0 }.joined(separator: ", ")
        let scope = path.isEmpty ? "at the top level" : "under '\(path)'"
        throw ConfigError("\(origins[p] ?? source): unknown key '\(p)'; known keys \(scope): \(options)")
      }
      var out: [(String, ConfigValue)] = []
      for (k, dv) in dp {
        let p = ConfigPath.join(path, k)
        if let uv = up.first(where: { $0.0 == k })?.1 {
          out.append((k, try merge(defaults: dv, user: uv, path: p, source: source, origins: origins)))
        } else {
          out.append((k, try merge(defaults: dv, user: dv, path: p, source: source, origins: origins)))
        }
      }
      return .map(out)
    case (.map, .null):
      return try merge(defaults: d, user: .map([]), path: path, source: source, origins: origins)
    case (.list, .list(let xs)):
      if let template = itemTemplates[ConfigSchema.generic(path)] {
        var items: [ConfigValue] = []
        for (i, x) in xs.enumerated() {
          let p = "\(path)[\(i)]"
          guard case .map(let xp) = x else {
            throw ConfigError("\(origins[p] ?? at): each item of '\(path)' must be a mapping (see configs/study.yaml)")
          }
          for req in requiredItemKeys[ConfigSchema.generic(path)] ?? [] {
            let given = xp.first { $0.0 == req }?.1
            if given == nil || given == .null {
              throw ConfigError("\(origins[p] ?? at): item \(i) of '\(path)' needs '\(req)'")
            }
          }
          items.append(try merge(defaults: template, user: x, path: p, source: source, origins: origins))
        }
        return .list(items)
      }
      return u
    case (.null, .list), (.null, .map):
      // Every key whose default is null takes one value (a path, a name): a list here would be
      // read as "not set" (model.pretrained: [a.safetensors] would train from random weights).
      throw ConfigError("\(at): '\(path)' must be a single value (text or a number), not \(u.typeName)")
    case (.null, _):
      return u
    case (.double, .int(let i)):
      return .double(Double(i))
    case (.string, .int(let i)):
      return .string(String(i))
    case (.string, .double(let x)):
      return .string("\(x)")
    case (.double, .double), (.int, .int), (.bool, .bool), (.string, .string):
      return u
    case (_, .null) where d != .null:
      // an explicit null where a value is needed: keep the default only for optional keys
      throw ConfigError("\(at): '\(path)' cannot be null; its default is \(d.yaml().trimmingCharacters(in: .whitespacesAndNewlines))")
    default:
      throw ConfigError("\(at): '\(path)' must be \(d.typeName), not \(u.typeName)")
    }
  }
}

extension ConfigSchema {
  /// The study config's schema. Its defaults are written out in `defaultsYAML`.
  static let study: ConfigSchema = {
    func parse(_ y: String) -> ConfigValue {
      var r = YAMLReader(source: "defaults")
      // The embedded YAML is ours; a failure here is a programming error caught by tests.
      return try! r.read(try! Yams.compose(yaml: y)!, path: "")
    }
    return ConfigSchema(
      defaults: parse(defaultsYAML),
      itemTemplates: ["schemas": parse(schemaItemYAML), "references": parse(referenceItemYAML)],
      requiredItemKeys: ["schemas": ["name", "file"], "references": ["name"]],
      openMaps: ["schemas[].columns", "schemas[].values", "references[].columns", "references[].values"],
      delegated: ["train"])
  }()

  /// Every key a study config may set, with its default. The study's settings are the
  /// defaults where the paper gives them (lr 1e-5, wd 3e-4, betas 0.9/0.99, EMA 0.9999, 512 px,
  /// 80/20 patient split, U-ones).
  static let defaultsYAML = """
    name: study                 # the run folder is <out>/<name>
    out: runs
    seed: 0                     # every random choice derives from this seed
    device: auto                # auto (cuda if available) | cpu | cuda | cuda:N
    threads: 0                  # libtorch intra-op threads; 0 = all cores
    findings: [Pneumothorax, Fracture]
    train_data:
      kind: mimic               # mimic | manifest
      root: null                # MIMIC-CXR-JPG root (holds files/ and the metadata CSV)
      metadata: null            # default: <root>/mimic-cxr-2.0.0-metadata.csv[.gz]
      split_file: null          # the official split file, optional
      manifest: null            # kind manifest: CSV with path, patient, study columns
      views: [PA, AP]           # frontal views
      equalize: false           # MIMIC-CXR-JPG was equalized at conversion
    test_data:
      kind: candid              # candid | manifest | none
      root: null                # CANDID-PTX root (DICOM folder and the CSVs)
      manifest: null
      equalize: true            # CANDID-PTX DICOMs were not equalized
    schemas: []                 # one classifier per schema; item keys: see schemaItemYAML
    references: []              # extra test-set references; the masks are always one
    split:
      tune_fraction: 0.2
      stratify: false
      file: null                # import an existing split.csv instead of drawing one
    preprocess:
      size: 512                 # longest side resized to this, then padded to size x size
      cache: false              # build a preprocessed uint8 cache before training
    model:
      arch: convnext_base
      pretrained: null          # timm safetensors (e.g. ImageNet weights); null = random init
      in_chans: 1
      depths: []                # custom stage depths (4 numbers) instead of the arch's; [] = the arch's
      dims: []                  # custom stage widths (4 numbers); a custom size is not a timm model
      drop_path_rate: 0.0
      head_dropout: 0.0
      layer_scale_init: 1.0e-6  # timm's ls_init_value: the residual branches' starting scale
    loader:
      batch_size: 32
      workers: 0                # decoding threads, all decoding at once; 0 = all cores
      prefetch: 2               # batches decoded ahead per worker (PyTorch's prefetch_factor): at most
                                # workers x prefetch batches wait in memory
      bad_files: skip           # skip (listed in bad_files.csv) | fail
      max_bad_fraction: 0.01    # training stops with an error when more than this share of a
                                # split's images cannot be read (they are listed in bad_files.csv)
    train: {}                   # the training loop's settings: `cxr config defaults` lists them
    predict:
      batch_size: 32
      tta_hflip: false
      weights: best             # best (chosen on the tuning split by train.selection; the last EMA
                                # weights when there is no tuning split) | ema | raw (the last checkpoint's)
    evaluate:
      bootstrap: 1000
      seed: 0
    """

  static let schemaItemYAML = """
    name: null                  # required
    file: null                  # required: the schema's labels for the training studies
    format: chexpert            # chexpert | mapped
    uncertain: ones             # ones (the study) | zeros | ignore
    id_column: null             # mapped files: the id column (default: index)
    columns: {}                 # mapped files: finding -> column
    values: {}                  # mapped files: text -> 1 / 0 / -1
    test_file: null             # the same schema applied to the test-set reports: becomes a reference
    """

  static let referenceItemYAML = """
    name: null
    file: null
    format: chexpert
    uncertain: ones
    id_column: null
    columns: {}
    values: {}
    """
}
