import Foundation

/// The special functions behind the paired t-test's p-value, in plain Swift so that Evaluate
/// needs no numerics library.
public enum Distributions {
  /// The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and
  /// x in [0, 1].
  ///
  /// Evaluated by the continued fraction of DLMF 8.17.22 with the modified Lentz method; where
  /// x > (a + 1) / (a + b + 2) the fraction converges slowly, so the symmetry
  /// I_x(a, b) = 1 - I_{1-x}(b, a) is used instead. The prefactor x^a (1-x)^b / (a B(a, b)) is
  /// taken in logs, with ln B(a, b) from `lgamma`.
  public static func regularizedIncompleteBeta(a: Double, b: Double, x: Double) -> Double {
    incompleteBeta(a: a, b: b, x: x, y: 1 - x)
  }

  /// As `regularizedIncompleteBeta` with y = 1 - x given by the caller, who can often form it
  /// without the cancellation of 1 - x (the t-test's t² / (ν + t²)).
  static func incompleteBeta(a: Double, b: Double, x: Double, y: Double) -> Double {
    precondition(a > 0 && b > 0, "I_x(a, b) needs a, b > 0")
    if x.isNaN || y.isNaN { return .nan }
    if x <= 0 { return 0 }
    if y <= 0 { return 1 }
    let lnBeta = lgammaSafe(a) + lgammaSafe(b) - lgammaSafe(a + b)
    let lnFront = a * log(x) + b * log(y) - lnBeta
    if x < (a + 1) / (a + b + 2) {
      return exp(lnFront) * continuedFraction(a: a, b: b, x: x) / a
    }
    return 1 - exp(lnFront) * continuedFraction(a: b, b: a, x: y) / b
  }

  /// ln Γ(v) for v > 0 without `lgamma`'s shared sign global (the bootstrap runs on many threads).
  static func lgammaSafe(_ v: Double) -> Double {
    var sign: Int32 = 0
    return lgamma_r(v, &sign)
  }

  /// The continued fraction for I_x(a, b) (Numerical Recipes' betacf): converges in
  /// O(sqrt(max(a, b))) terms where x < (a + 1) / (a + b + 2).
  static func continuedFraction(a: Double, b: Double, x: Double) -> Double {
    let tiny = 1e-300, eps = 1e-16
    let qab = a + b, qap = a + 1, qam = a - 1
    var c = 1.0
    var d = 1 - qab * x / qap
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var h = d
    for m in 1...1_000_000 {
      let m = Double(m), m2 = 2 * m
      var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
      d = 1 + aa * d; if abs(d) < tiny { d = tiny }
      c = 1 + aa / c; if abs(c) < tiny { c = tiny }
      d = 1 / d
      h *= d * c
      aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
      d = 1 + aa * d; if abs(d) < tiny { d = tiny }
      c = 1 + aa / c; if abs(c) < tiny { c = tiny }
      d = 1 / d
      let step = d * c
      h *= step
      if abs(step - 1) < eps { break }
    }
    return h
  }

  /// Two-sided p-value of Student's t with `df` degrees of freedom: P(|T| >= |t|) =
  /// I_{ν/(ν+t²)}(ν/2, 1/2). Small p-values keep their relative precision (no 1 - CDF).
  public static func studentTTwoSided(t: Double, df: Double) -> Double {
    precondition(df > 0, "Student's t needs df > 0")
    if t.isNaN { return .nan }
    if t.isInfinite { return 0 }
    let t2 = t * t
    return incompleteBeta(a: df / 2, b: 0.5, x: df / (df + t2), y: t2 / (df + t2))
  }

  /// Student's t cumulative distribution function P(T <= t).
  public static func studentTCDF(t: Double, df: Double) -> Double {
    let tail = studentTTwoSided(t: t, df: df) / 2
    return t < 0 ? tail : 1 - tail
  }
}
