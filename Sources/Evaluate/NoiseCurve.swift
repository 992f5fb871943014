/// The study report's noise curve: a classifier's AUROC (y) against the sensitivity of the
/// labels it was trained on (x), one line per reference, as an SVG chart.
public enum NoiseCurve {
  public static func svg(title: String, series: [(name: String, points: [(Double, Double)])]) -> String {
    SVG.curves(title: title, xLabel: "sensitivity of the training labels", yLabel: "AUROC",
               series: series.map { SVG.Series(name: $0.name, points: $0.points.sorted { $0.0 < $1.0 }, markers: true) }, diagonal: false)
  }
}
