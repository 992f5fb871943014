import Foundation
import XCTest
@testable import Evaluate

/// metrics.json and agreement.json pinned to the byte: other tools read them, and the writer
/// changed once (JSONSerialization to Codable structs) without changing a byte. A change of key
/// order, number formatting, null handling, escaping or whitespace shows here.
final class JSONDocumentTests: XCTestCase {
  /// A metric with an integer-valued AUROC (written "1") and a NaN CI end (null); a Brier score,
  /// whose strategy and bins are null; a subgroup with a negative difference and its nested
  /// complement and overall; a tuning source with "/" (escaped, as JSONSerialization did).
  func testMetricsJSONText() throws {
    var result = EvaluationResult(
      models: ["A"], references: ["masks"], findings: ["Pneumothorax"],
      rows: [MetricRow(model: "A", reference: "masks", finding: "Pneumothorax", metric: "auroc", value: 1, ciLow: nil, ciHigh: .nan,
                       n: 4, nPos: 2)],
      comparisons: [], curves: [], notes: ["one note"], rounds: 0, seed: 7)
    result.tuneSource = "tune/labels.csv"
    result.fixedThresholds = [0.5]
    result.calibrationBins = 5
    result.calibration = [CalibrationRow(model: "A", reference: "masks", finding: "Pneumothorax", metric: "brier", strategy: nil, bins: nil,
                                         value: 0.125, ciLow: nil, ciHigh: nil, n: 4, nPos: 2)]
    result.subgroups = [SubgroupRow(
      attribute: "chest tube", value: "yes", model: "A", reference: "masks", finding: "Pneumothorax", n: 2, nPos: 1,
      auroc: Estimate(value: 0.5), auprc: Estimate(value: nil), complementN: 2, complementNPos: 0,
      complementAUROC: Estimate(value: 0.75), complementAUPRC: Estimate(value: nil),
      aurocDifference: Estimate(value: -0.25, ciLow: -0.5, ciHigh: 0), auprcDifference: Estimate(value: nil),
      overallAUROC: Estimate(value: 0.625), overallAUPRC: Estimate(value: nil),
      aurocVersusOverall: Estimate(value: -0.125), auprcVersusOverall: Estimate(value: .nan), roundsUsed: 0)]
    XCTAssertEqual(String(decoding: result.json, as: UTF8.self), """
      {
        "bootstrap_rounds" : 0,
        "calibration" : [
          {
            "bins" : null,
            "ci_high" : null,
            "ci_low" : null,
            "finding" : "Pneumothorax",
            "metric" : "brier",
            "model" : "A",
            "n" : 4,
            "n_pos" : 2,
            "reference" : "masks",
            "strategy" : null,
            "value" : 0.125
          }
        ],
        "calibration_bins" : 5,
        "comparisons" : [

        ],
        "findings" : [
          "Pneumothorax"
        ],
        "fixed_thresholds" : [
          0.5
        ],
        "holm_family" : "\(EvaluationResult.holmFamily)",
        "metrics" : [
          {
            "ci_high" : null,
            "ci_low" : null,
            "finding" : "Pneumothorax",
            "metric" : "auroc",
            "model" : "A",
            "n" : 4,
            "n_pos" : 2,
            "reference" : "masks",
            "value" : 1
          }
        ],
        "models" : [
          "A"
        ],
        "notes" : [
          "one note"
        ],
        "operating_points" : [

        ],
        "references" : [
          "masks"
        ],
        "reliability" : [

        ],
        "seed" : 7,
        "subgroups" : [
          {
            "attribute" : "chest tube",
            "auprc" : {
              "ci_high" : null,
              "ci_low" : null,
              "value" : null
            },
            "auprc_difference" : {
              "ci_high" : null,
              "ci_low" : null,
              "value" : null
            },
            "auprc_vs_overall" : {
              "ci_high" : null,
              "ci_low" : null,
              "value" : null
            },
            "auroc" : {
              "ci_high" : null,
              "ci_low" : null,
              "value" : 0.5
            },
            "auroc_difference" : {
              "ci_high" : 0,
              "ci_low" : -0.5,
              "value" : -0.25
            },
            "auroc_vs_overall" : {
              "ci_high" : null,
              "ci_low" : null,
              "value" : -0.125
            },
            "complement" : {
              "auprc" : {
                "ci_high" : null,
                "ci_low" : null,
                "value" : null
              },
              "auroc" : {
                "ci_high" : null,
                "ci_low" : null,
                "value" : 0.75
              },
              "n" : 2,
              "n_pos" : 0,
              "prevalence" : 0
            },
            "finding" : "Pneumothorax",
            "model" : "A",
            "n" : 2,
            "n_pos" : 1,
            "overall" : {
              "auprc" : {
                "ci_high" : null,
                "ci_low" : null,
                "value" : null
              },
              "auroc" : {
                "ci_high" : null,
                "ci_low" : null,
                "value" : 0.625
              }
            },
            "prevalence" : 0.5,
            "reference" : "masks",
            "rounds_used" : 0,
            "value" : "yes"
          }
        ],
        "ttest_note" : "\(EvaluationResult.tTestNote)",
        "tune_reference" : "tune\\/labels.csv",
        "tuned_thresholds" : [

        ]
      }
      """)
  }

  /// An undefined agreement value (null), a negative kappa, an integer-valued one (written "1")
  /// and the confusion counts.
  func testAgreementJSONText() throws {
    let result = AgreementResult(
      schemas: ["x"], findings: ["Effusion"],
      rows: [AgreementRow(schema: "x", finding: "Effusion", metric: "ppv", value: nil, ciLow: nil, ciHigh: nil, n: 3, nPos: 1),
             AgreementRow(schema: "x", finding: "Effusion", metric: "kappa", value: -0.2, ciLow: -1, ciHigh: .infinity, n: 3, nPos: 1),
             AgreementRow(schema: "x", finding: "Effusion", metric: "specificity", value: 1, ciLow: 1, ciHigh: 1, n: 3, nPos: 1)],
      confusions: [ConfusionRow(schema: "x", finding: "Effusion", tp: 0, fp: 0, fn: 1, tn: 2, leftOut: 1)],
      notes: [], rounds: 20, seed: 3)
    XCTAssertEqual(String(decoding: result.json, as: UTF8.self), """
      {
        "bootstrap_rounds" : 20,
        "confusion" : [
          {
            "finding" : "Effusion",
            "fn" : 1,
            "fp" : 0,
            "left_out" : 1,
            "schema" : "x",
            "tn" : 2,
            "tp" : 0
          }
        ],
        "findings" : [
          "Effusion"
        ],
        "metrics" : [
          {
            "ci_high" : null,
            "ci_low" : null,
            "finding" : "Effusion",
            "metric" : "ppv",
            "n" : 3,
            "n_pos" : 1,
            "schema" : "x",
            "value" : null
          },
          {
            "ci_high" : null,
            "ci_low" : -1,
            "finding" : "Effusion",
            "metric" : "kappa",
            "n" : 3,
            "n_pos" : 1,
            "schema" : "x",
            "value" : -0.2
          },
          {
            "ci_high" : 1,
            "ci_low" : 1,
            "finding" : "Effusion",
            "metric" : "specificity",
            "n" : 3,
            "n_pos" : 1,
            "schema" : "x",
            "value" : 1
          }
        ],
        "notes" : [

        ],
        "schemas" : [
          "x"
        ],
        "seed" : 3
      }
      """)
  }
}
