import Common
import Data
import Foundation

extension LabelDerivation.VoteRule: ConfigChoice {}
extension LabelDerivation.TieRule: ConfigChoice {}

extension StudyConfig {
  /// A schema whose labels are computed from other schemas at load time (`derive:` of a schema
  /// item). Exactly one of `from` (label noise), `vote` or `dawid_skene` is set. Every field is
  /// optional so that an item without `derive:` is a plain file schema.
  public struct Derive: Codable, Equatable, Sendable {
    /// Label noise: the source schema.
    public var from: String?
    /// P(a positive label of the source becomes negative), every finding.
    public var flipPositive: Double?
    /// P(a negative label becomes positive), every finding.
    public var flipNegative: Double?
    /// Per-finding rates over the two above.
    public var perFinding: [String: FlipOverride] = [:]
    /// The flips' seed (default: the study's seed).
    public var seed: Int?
    /// A vote of these schemas.
    public var vote: [String]?
    public var rule: LabelDerivation.VoteRule?
    public var ties: LabelDerivation.TieRule?
    /// The Dawid-Skene consensus of these schemas.
    public var dawidSkene: [String]?
    public var output: ConsensusOutput?

    enum CodingKeys: String, CodingKey {
      case from
      case flipPositive = "flip_positive"
      case flipNegative = "flip_negative"
      case perFinding = "per_finding"
      case seed, vote, rule, ties
      case dawidSkene = "dawid_skene"
      case output
    }
    public init() {}

    public var isSet: Bool { from != nil || vote != nil || dawidSkene != nil }
    /// The schemas this one is made from.
    public var sources: [String] { from.map { [$0] } ?? vote ?? dawidSkene ?? [] }
  }

  public struct FlipOverride: Codable, Equatable, Sendable {
    public var flipPositive: Double?
    public var flipNegative: Double?
    enum CodingKeys: String, CodingKey, CaseIterable {
      case flipPositive = "flip_positive"
      case flipNegative = "flip_negative"
    }
    public init(flipPositive: Double? = nil, flipNegative: Double? = nil) { self.flipPositive = flipPositive; self.flipNegative = flipNegative }
    public init(from decoder: Decoder) throws {
      // A free-form map's items are not checked by the strict decoder: refuse unknown keys here.
      let any = try decoder.container(keyedBy: AnyKey.self)
      for k in any.allKeys where CodingKeys(rawValue: k.stringValue) == nil {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [k],
                                                debugDescription: "is not a key of per_finding; use flip_positive or flip_negative"))
      }
      let c = try decoder.container(keyedBy: CodingKeys.self)
      flipPositive = try c.decodeIfPresent(Double.self, forKey: .flipPositive)
      flipNegative = try c.decodeIfPresent(Double.self, forKey: .flipNegative)
    }
  }

  struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  /// What a Dawid-Skene schema trains on: each report's posterior probability (`soft`), or it
  /// thresholded at 0.5 (`hard`).
  public enum ConsensusOutput: String, Sendable, ConfigChoice { case hard, soft }

  /// A grid of label-noise schemas (`sweep:` of a schema item whose `derive:` has `from`): one
  /// schema per combination of the listed rates, named `<name>-fp<P>` / `-fn<Q>`.
  public struct Sweep: Codable, Equatable, Sendable {
    public var flipPositive: [Double]?
    public var flipNegative: [Double]?
    enum CodingKeys: String, CodingKey {
      case flipPositive = "flip_positive"
      case flipNegative = "flip_negative"
    }
    public init() {}
    public var isSet: Bool { flipPositive != nil || flipNegative != nil }
  }

  /// Replaces each `sweep:` item by its points (the resolved config lists every point).
  mutating func expandSweeps(at origin: (String) -> String) throws {
    var out: [LabelItem] = []
    for (i, item) in schemas.enumerated() {
      guard item.sweep.isSet else { out.append(item); continue }
      let p = "schemas[\(i)]"
      guard item.derive.from != nil else {
        throw ConfigError("\(origin("\(p).sweep")): \(p).sweep needs derive.from (the schema whose labels are flipped)")
      }
      guard item.testFile == nil else {
        throw ConfigError("\(origin("\(p).test_file")): a sweep's schemas share no test_file; give the reference as a schema of its own or under references")
      }
      let fps = item.sweep.flipPositive ?? [item.derive.flipPositive ?? 0]
      let fns = item.sweep.flipNegative ?? [item.derive.flipNegative ?? 0]
      guard !fps.isEmpty, !fns.isEmpty else { throw ConfigError("\(origin("\(p).sweep")): \(p).sweep lists no rate") }
      for fp in fps {
        for fn in fns {
          var point = item
          point.sweep = Sweep()
          point.derive.flipPositive = fp
          point.derive.flipNegative = fn
          var name = item.name ?? "sweep"
          if item.sweep.flipPositive != nil { name += "-fp\(StudyConfig.rateName(fp))" }
          if item.sweep.flipNegative != nil { name += "-fn\(StudyConfig.rateName(fn))" }
          point.name = name
          out.append(point)
        }
      }
    }
    schemas = out
  }

  static func rateName(_ x: Double) -> String {
    x == x.rounded() ? String(Int(x)) : "\(x)"
  }

  /// Checks every derived schema before anything is read: one recipe, known sources, no cycle,
  /// rates in [0, 1], findings of the study.
  func checkDerived(at origin: (String) -> String) throws {
    let names = schemas.compactMap(\.name)
    // Duplicate names are the preflight's to list with every other problem; here they matter
    // only where a derived schema names one as its source.
    var seen = Set<String>(), duplicated = Set<String>()
    for n in names where !seen.insert(n).inserted { duplicated.insert(n) }
    for (i, item) in schemas.enumerated() {
      let p = "schemas[\(i)]"
      let d = item.derive
      if let n = d.sources.first(where: duplicated.contains) {
        throw ConfigError("\(origin("\(p).derive")): \(p) is derived from '\(n)', but two schemas are named '\(n)'; every schema needs its own name (it names the run folder)")
      }
      guard d.isSet else {
        for (key, set) in [("flip_positive", d.flipPositive != nil), ("flip_negative", d.flipNegative != nil), ("per_finding", !d.perFinding.isEmpty),
                           ("seed", d.seed != nil), ("rule", d.rule != nil), ("ties", d.ties != nil), ("output", d.output != nil)] where set {
          throw ConfigError("\(origin("\(p).derive.\(key)")): \(p).derive.\(key) needs one of derive.from, derive.vote or derive.dawid_skene")
        }
        continue
      }
      let recipes = [d.from != nil, d.vote != nil, d.dawidSkene != nil].filter { $0 }.count
      guard recipes == 1 else {
        throw ConfigError("\(origin("\(p).derive")): \(p).derive gives \(recipes) recipes; use exactly one of from (label noise), vote or dawid_skene")
      }
      if item.file != nil {
        throw ConfigError("\(origin("\(p).file")): \(p) gives both file and derive; a schema's labels come from one of them")
      }
      func only(_ key: String, _ set: Bool, with recipe: String) throws {
        if set { throw ConfigError("\(origin("\(p).derive.\(key)")): \(p).derive.\(key) applies to derive.\(recipe) only") }
      }
      try only("flip_positive", d.flipPositive != nil && d.from == nil, with: "from")
      try only("flip_negative", d.flipNegative != nil && d.from == nil, with: "from")
      try only("per_finding", !d.perFinding.isEmpty && d.from == nil, with: "from")
      try only("seed", d.seed != nil && d.from == nil, with: "from")
      try only("rule", d.rule != nil && d.vote == nil, with: "vote")
      try only("ties", d.ties != nil && d.vote == nil, with: "vote")
      try only("output", d.output != nil && d.dawidSkene == nil, with: "dawid_skene")
      let key = d.from != nil ? "from" : d.vote != nil ? "vote" : "dawid_skene"
      for s in d.sources {
        guard names.contains(s) else {
          throw ConfigError("\(origin("\(p).derive.\(key)")): \(p).derive.\(key) names '\(s)', which is not a schema (schemas: \(names.joined(separator: ", ")))")
        }
        guard s != item.name else { throw ConfigError("\(origin("\(p).derive.\(key)")): schema '\(s)' cannot be derived from itself") }
      }
      if Set(d.sources).count != d.sources.count {
        throw ConfigError("\(origin("\(p).derive.\(key)")): \(p).derive.\(key) names a schema twice")
      }
      if let v = d.vote, v.count < 2 { throw ConfigError("\(origin("\(p).derive.vote")): a vote needs at least 2 schemas") }
      if let v = d.dawidSkene, v.count < 3 {
        throw ConfigError("\(origin("\(p).derive.dawid_skene")): Dawid-Skene needs at least 3 schemas (got \(v.count)): with fewer, one labeller's errors cannot be told from another's")
      }
      var rates: [(String, Double?)] = [("flip_positive", d.flipPositive), ("flip_negative", d.flipNegative)]
      for (f, o) in d.perFinding {
        guard findings.contains(f) else {
          throw ConfigError("\(origin("\(p).derive.per_finding.\(f)")): \(p).derive.per_finding names '\(f)', which is not one of the study's findings (\(findings.joined(separator: ", ")))")
        }
        rates += [("per_finding.\(f).flip_positive", o.flipPositive), ("per_finding.\(f).flip_negative", o.flipNegative)]
      }
      for (k, r) in rates { if let r, !(0...1).contains(r) {
        throw ConfigError("\(origin("\(p).derive.\(k)")): \(p).derive.\(k) is \(r); a flip rate is a probability in [0, 1]")
      } }
      if let s = d.seed, s < 0 { throw ConfigError("\(origin("\(p).derive.seed")): \(p).derive.seed must be >= 0") }
    }
    for (i, item) in references.enumerated() where item.derive.isSet || item.sweep.isSet {
      throw ConfigError("\(origin("references[\(i)]")): references[\(i)] is derived; derive and sweep are for schemas (a reference is a file of test-set labels)")
    }
    // No cycles: follow the sources from every derived schema.
    let sourcesOf = Dictionary(schemas.compactMap { i in i.name.map { ($0, i.derive.sources) } }, uniquingKeysWith: { a, _ in a })
    for (i, item) in schemas.enumerated() where item.derive.isSet {
      var path = [item.name!]
      func visit(_ n: String) throws {
        for s in sourcesOf[n] ?? [] {
          if path.contains(s) {
            throw ConfigError("\(origin("schemas[\(i)].derive")): derived schemas form a cycle: \((path + [s]).joined(separator: " -> "))")
          }
          path.append(s); try visit(s); path.removeLast()
        }
      }
      try visit(item.name!)
    }
  }
}
