import Common
import Foundation

/// The `cxr evaluate` and `cxr agree` jobs from their command-line arguments, so the command
/// stays a thin parser and tests run exactly what users run.
public enum Jobs {
  /// `--predictions NAME=file ... --reference NAME=file ... [--findings A,B]
  /// [--tune-predictions NAME=file ... --tune-reference file] [--threshold X ...] [--calibration-bins N] --out DIR`.
  @discardableResult
  public static func evaluate(predictions: [String], references: [String], findings: [String]?,
                              uncertain: UncertainPolicy = .ones, rounds: Int = 1000, seed: UInt64 = 0,
                              tunePredictions: [String] = [], tuneReference: String? = nil, thresholds: [Double] = [],
                              calibrationBins: Int = 10, curveBandPoints: Int = 101, subgroups: String? = nil, subgroupColumns: [String]? = nil,
                              minimumSubgroupCases: Int = Subgroups.defaultMinimumCases, out: URL) throws -> EvaluationResult {
    try checkRounds(rounds)
    if subgroups == nil, let subgroupColumns, !subgroupColumns.isEmpty {
      throw FileError("--subgroup-columns \(subgroupColumns.joined(separator: ",")) needs --subgroups FILE: the CSV (id and one column per attribute) they are columns of")
    }
    guard minimumSubgroupCases >= 1 else {
      throw FileError("--subgroup-min-cases must be at least 1, got \(minimumSubgroupCases)")
    }
    // The attribute file is small and checked before the predictions are read.
    let attributes = try subgroups.map { try SubgroupAttribute.read(URL(fileURLWithPath: $0), columns: subgroupColumns) } ?? []
    // Cheap checks first, before any file is read.
    try Evaluation.check(EvaluationOptions(thresholds: thresholds, calibrationBins: calibrationBins), models: [])
    let tuneSpecs = try tunePredictions.map { try NamedPath(parsing: $0, option: "--tune-predictions") }
    if tuneReference == nil, let first = tuneSpecs.first {
      throw FileError("--tune-predictions \(first.name)=\(first.path) needs --tune-reference labels.csv: the tuning-set labels the operating points are chosen on")
    }
    if let tuneReference, tuneSpecs.isEmpty {
      throw FileError("--tune-reference \(tuneReference) needs --tune-predictions NAME=preds.csv for every model: the tuning-set predictions of the same weights")
    }
    let predSpecs = try predictions.map { try NamedPath(parsing: $0, option: "--predictions") }
    let refSpecs = try references.map { try NamedPath(parsing: $0, option: "--reference") }
    guard !predSpecs.isEmpty else { throw FileError("give at least one --predictions NAME=file.csv") }
    guard !refSpecs.isEmpty else { throw FileError("give at least one --reference NAME=labels.csv") }
    let predTables = try predSpecs.map { try CSVTable.read(URL(fileURLWithPath: $0.path)) }
    let refTables = try refSpecs.map { try CSVTable.read(URL(fileURLWithPath: $0.path)) }
    let chosen = try findings ?? commonFindings(predictionTables: predTables, referenceTables: refTables)
    let preds = try zip(predSpecs, predTables).map { try Predictions(name: $0.name, table: $1, findings: chosen) }
    let refs = try zip(refSpecs, refTables).map { try ReferenceLabels(name: $0.name, table: $1, findings: chosen, policy: uncertain) }
    var options = EvaluationOptions(thresholds: thresholds, calibrationBins: calibrationBins)
    options.curveBandPoints = curveBandPoints
    options.subgroups = attributes
    options.minimumSubgroupCases = minimumSubgroupCases
    if let tuneReference {
      options.tuneReference = try ReferenceLabels(name: "tune", table: CSVTable.read(URL(fileURLWithPath: tuneReference)),
                                                  findings: chosen, policy: uncertain)
      options.tunePredictions = try tuneSpecs.map { try Predictions(name: $0.name, table: CSVTable.read(URL(fileURLWithPath: $0.path)), findings: chosen) }
    }
    var result = try Evaluation.run(predictions: preds, references: refs, findings: chosen, rounds: rounds, seed: seed, options: options)
    try result.write(to: out)
    return result
  }

  /// `--human H.csv --schema NAME=file ... [--findings A,B] [--annotators A,B] --out DIR`.
  @discardableResult
  public static func agree(human: String, schemas: [String], findings: [String]?, annotators: String?,
                           uncertain: UncertainPolicy = .ones, rounds: Int = 1000, seed: UInt64 = 0,
                           out: URL) throws -> AgreementResult {
    try checkRounds(rounds)
    let specs = try schemas.map { try NamedPath(parsing: $0, option: "--schema") }
    guard !specs.isEmpty else { throw FileError("give at least one --schema NAME=labels.csv") }
    let humanTable = try CSVTable.read(URL(fileURLWithPath: human))
    let tables = try specs.map { try CSVTable.read(URL(fileURLWithPath: $0.path)) }
    var pair: (String, String)?
    if let annotators {
      let parts = annotators.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw FileError("--annotators expects two column names of \(human), e.g. --annotators reader1,reader2 or {finding}_r1,{finding}_r2; got '\(annotators)'")
      }
      pair = (parts[0], parts[1])
    }
    let chosen: [String]
    if let findings { chosen = findings } else {
      // Findings: the schema columns (other than id) that the human file also has.
      chosen = tables[0].header.filter { col in col != "id" && !col.isEmpty && humanTable.index(of: col) != nil
        && tables.allSatisfy { $0.index(of: col) != nil } }
      guard !chosen.isEmpty else {
        throw FileError("no finding column is shared by \(human) (\(humanTable.header.joined(separator: ", "))) and the schema files; name them with --findings")
      }
    }
    let result = try Agreement.run(human: humanTable, schemas: zip(specs, tables).map { ($0.name, $1) }, findings: chosen,
                                   policy: uncertain, annotators: pair, rounds: rounds, seed: seed)
    try result.write(to: out)
    return result
  }

  static func checkRounds(_ rounds: Int) throws {
    guard rounds >= 0 else { throw FileError("--bootstrap must be 0 (no CIs) or a positive number of rounds, got \(rounds)") }
  }
}
