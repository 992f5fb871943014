import Common
import Foundation

/// Which test images get a saliency figure, and the report section that shows them.
///
/// Per model and finding, against the test set's own reference: the `top` true positives
/// (highest probability among reference-positive images), false positives (highest among
/// reference-negative) and false negatives (lowest among reference-positive). "True"/"false"
/// names the reference label and the rank only: no threshold is applied, so a "false negative"
/// is the positive image the model scored lowest. Ties are broken by id, so the choice is
/// reproducible. Images the reference leaves out (unknown, uncertain) are never chosen.
public enum Saliency {
  public enum Kind: String, Codable, Sendable, CaseIterable {
    case truePositive = "tp", falsePositive = "fp", falseNegative = "fn"
    public var title: String {
      switch self {
      case .truePositive: return "top true positives (highest probability, reference positive)"
      case .falsePositive: return "top false positives (highest probability, reference negative)"
      case .falseNegative: return "top false negatives (lowest probability, reference positive)"
      }
    }
  }

  /// One chosen image.
  public struct Pick: Codable, Equatable, Sendable {
    public var kind: Kind
    /// 1 = the most extreme of its kind.
    public var rank: Int
    public var id: String
    public var probability: Double
    /// The reference label (true: positive).
    public var reference: Bool
    public init(kind: Kind, rank: Int, id: String, probability: Double, reference: Bool) {
      self.kind = kind; self.rank = rank; self.id = id; self.probability = probability; self.reference = reference
    }
  }

  /// The picks of one finding: `top` of each kind (fewer when the test set has fewer).
  public static func select(_ predictions: Predictions, reference: ReferenceLabels, finding: String, top: Int) -> [Pick] {
    guard top > 0, let scores = predictions.scores[finding] else { return [] }
    var pos: [(String, Double)] = [], neg: [(String, Double)] = []
    for (i, id) in predictions.ids.enumerated() {
      guard let label = reference.label(finding, id: id), scores[i].isFinite else { continue }
      if label { pos.append((id, scores[i])) } else { neg.append((id, scores[i])) }
    }
    let high: ((String, Double), (String, Double)) -> Bool = { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    let low: ((String, Double), (String, Double)) -> Bool = { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
    func picks(_ list: [(String, Double)], _ order: (((String, Double), (String, Double)) -> Bool), _ kind: Kind, _ label: Bool) -> [Pick] {
      list.sorted(by: order).prefix(top).enumerated().map {
        Pick(kind: kind, rank: $0.offset + 1, id: $0.element.0, probability: $0.element.1, reference: label)
      }
    }
    return picks(pos, high, .truePositive, true) + picks(neg, high, .falsePositive, false) + picks(pos, low, .falseNegative, true)
  }

  /// One overlay in the report.
  public struct Figure: Codable, Equatable, Sendable {
    public var model: String
    /// The weights file and its SHA-256.
    public var weights: String
    public var weightsSHA256: String
    public var finding: String
    public var pick: Pick
    /// The reference's name (e.g. masks).
    public var referenceName: String
    /// The layer the map was taken at (stages.3).
    public var layer: String
    /// The overlay PNG, relative to the manifest's folder.
    public var overlay: String
    /// The peak of the map in the model input's pixels (x, y), nil when the map is flat.
    public var peak: [Int]?
    /// The overlay's PNG bytes, read by whoever builds the report (not stored in the manifest).
    public var png: Data?

    public init(model: String, weights: String, weightsSHA256: String, finding: String, pick: Pick, referenceName: String,
                layer: String, overlay: String, peak: [Int]?, png: Data? = nil) {
      self.model = model; self.weights = weights; self.weightsSHA256 = weightsSHA256; self.finding = finding; self.pick = pick
      self.referenceName = referenceName; self.layer = layer; self.overlay = overlay; self.peak = peak; self.png = png
    }

    enum CodingKeys: String, CodingKey {
      case model, weights, weightsSHA256 = "weights_sha256", finding, pick, referenceName = "reference_name", layer, overlay, peak
    }

    public var caption: String {
      let ref = pick.reference ? "positive" : "negative"
      return "\(model) · \(finding) · \(pick.id) · p = \(String(format: "%.3f", pick.probability)) · \(referenceName): \(ref) · "
        + "weights \((weights as NSString).lastPathComponent) (SHA-256 \(weightsSHA256.prefix(12))…)"
    }
  }

  /// The report section: per finding and model, the three kinds in rows, overlays embedded as
  /// data: URIs so that report.html stays one self-contained file. Empty without figures.
  public static func html(_ figures: [Figure]) -> String {
    let shown = figures.filter { $0.png != nil }
    guard !shown.isEmpty else { return "" }
    var b = "<h2>Saliency (Grad-CAM)</h2>\n<p class=\"legend\">Grad-CAM of each finding's logit on the last ConvNeXt stage "
    b += "(\(HTML.escape(shown[0].layer))), same weights and preprocessing as the predictions, over the preprocessed test image "
    b += "(viridis: dark = low, yellow = high; scaled per image). Kinds are read against the test set's own reference and the "
    b += "probability's rank; no threshold is applied.</p>\n"
    var findings: [String] = []
    for f in shown where !findings.contains(f.finding) { findings.append(f.finding) }
    for finding in findings {
      var models: [String] = []
      for f in shown where f.finding == finding && !models.contains(f.model) { models.append(f.model) }
      for model in models {
        let mine = shown.filter { $0.finding == finding && $0.model == model }
        b += "<h3>\(HTML.escape(finding)): \(HTML.escape(model))</h3>\n"
        for kind in Kind.allCases {
          let row = mine.filter { $0.pick.kind == kind }.sorted { $0.pick.rank < $1.pick.rank }
          guard !row.isEmpty else { continue }
          b += "<h4>\(HTML.escape(kind.title))</h4>\n<div class=\"plots\">"
          for f in row {
            b += "<figure class=\"saliency\"><img width=\"256\" style=\"image-rendering: pixelated\" alt=\"\(HTML.escape("Grad-CAM \(f.finding) \(f.pick.id)"))\" "
            b += "src=\"data:image/png;base64,\(f.png!.base64EncodedString())\"><figcaption>\(HTML.escape(f.caption))</figcaption></figure>"
          }
          b += "</div>\n"
        }
      }
    }
    return b
  }
}
