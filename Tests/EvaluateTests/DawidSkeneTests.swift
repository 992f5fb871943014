import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

/// Simulated labellers with known confusion matrices.
struct SimulatedLabellers {
  var truth: [Bool] = []
  /// labels[j][i]; nil where labeller j skipped item i.
  var labels: [[Bool?]] = []

  init(items: Int, prevalence: Double, sensitivity: [Double], specificity: [Double], missing: Double = 0, seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    func uniform() -> Double { Double(rng.next() >> 11) * 0x1p-53 }
    labels = Array(repeating: [], count: sensitivity.count)
    for _ in 0..<items {
      let t = uniform() < prevalence
      truth.append(t)
      for j in sensitivity.indices {
        let u = uniform(), m = uniform()
        let label = t ? u < sensitivity[j] : !(u < specificity[j])
        labels[j].append(m < missing ? nil : label)
      }
    }
  }
}

final class DawidSkeneTests: XCTestCase {
  static let numpyEM = """
    import json, sys
    import numpy as np
    def dawid_skene(labels, max_iter, tol, floor):
        # labels: items x labellers, 1 / 0 / -1 (missing). The same EM as cxr's, over items.
        L = np.asarray(labels, dtype=np.int64)
        keep = (L >= 0).any(axis=1)
        X = L[keep]
        pos = (X == 1).astype(float); neg = (X == 0).astype(float); lab = pos + neg
        T = pos.sum(1) / lab.sum(1)
        ll = -np.inf; it = 0; converged = False
        last = None
        while it < max_iter:
            it += 1
            prev = float(np.clip(T.mean(), floor, 1 - floor))
            sens = np.clip((T[:, None] * pos).sum(0) / (T[:, None] * lab).sum(0), floor, 1 - floor)
            spec = np.clip(((1 - T)[:, None] * neg).sum(0) / ((1 - T)[:, None] * lab).sum(0), floor, 1 - floor)
            a = np.log(prev) + pos @ np.log(sens) + neg @ np.log(1 - sens)
            b = np.log(1 - prev) + pos @ np.log(1 - spec) + neg @ np.log(spec)
            T = 1 / (1 + np.exp(b - a))
            ll = float(np.logaddexp(a, b).sum())
            rates = np.concatenate([[prev], sens, spec])
            if it > 1 and np.abs(rates - last).max() <= tol:
                converged = True
                break
            last = rates
        post = np.full(len(L), prev)
        post[keep] = T
        return dict(prevalence=prev, sensitivity=sens.tolist(), specificity=spec.tolist(), posterior=post.tolist(),
                    iterations=it, converged=converged, log_likelihood=ll)
    args = json.loads(open(sys.argv[1]).read())
    print(json.dumps([dawid_skene(c['labels'], c['max_iter'], c['tol'], 1e-9) for c in args]))
    """

  /// The same EM written in numpy (same start, same iterations) gives the same numbers to 1e-9:
  /// a fixed 40 iterations with missing labels, and a run to convergence.
  func testMatchesNumpyReference() throws {
    let a = SimulatedLabellers(items: 3000, prevalence: 0.12, sensitivity: [0.9, 0.7, 0.95, 0.6, 0.8],
                               specificity: [0.97, 0.9, 0.85, 0.99, 0.93], missing: 0.15, seed: 1)
    let b = SimulatedLabellers(items: 2000, prevalence: 0.4, sensitivity: [0.85, 0.75, 0.9], specificity: [0.8, 0.95, 0.9], seed: 2)
    let cases: [(SimulatedLabellers, DawidSkene.Options)] = [
      (a, DawidSkene.Options(maxIterations: 40, tolerance: 0)),
      (b, DawidSkene.Options()),
    ]
    let payload = cases.map { (sim, o) -> [String: Any] in
      let rows = (0..<sim.truth.count).map { i in sim.labels.map { $0[i].map { $0 ? 1 : 0 } ?? -1 } }
      return ["labels": rows, "max_iter": o.maxIterations, "tol": o.tolerance]
    }
    let dir = try TestEnv.scratch("ds-parity")
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("in.json")
    try JSONSerialization.data(withJSONObject: payload).write(to: input)
    let refs = try Python.json(Self.numpyEM, args: [input.path]) as! [[String: Any]]
    for ((sim, options), ref) in zip(cases, refs) {
      let names = sim.labels.indices.map { "l\($0)" }
      let fit = try DawidSkene.fit(sim.labels, labellers: names, options: options)
      XCTAssertEqual(fit.status, .estimated)
      XCTAssertEqual(fit.iterations, ref["iterations"] as! Int)
      XCTAssertEqual(fit.converged, ref["converged"] as! Bool)
      XCTAssertEqual(fit.prevalence, ref["prevalence"] as! Double, accuracy: 1e-9)
      XCTAssertEqual(fit.logLikelihood, ref["log_likelihood"] as! Double, accuracy: 1e-9 * abs(fit.logLikelihood))
      for (x, y) in zip(fit.sensitivity, ref["sensitivity"] as! [Double]) { XCTAssertEqual(x!, y, accuracy: 1e-9) }
      for (x, y) in zip(fit.specificity, ref["specificity"] as! [Double]) { XCTAssertEqual(x!, y, accuracy: 1e-9) }
      let post = ref["posterior"] as! [Double]
      XCTAssertEqual(fit.posterior.count, post.count)
      XCTAssertLessThanOrEqual(zip(fit.posterior, post).map { abs($0 - $1) }.max()!, 1e-9)
    }
    XCTAssertEqual(refs[0]["iterations"] as! Int, 40)
    XCTAssertTrue(refs[1]["converged"] as! Bool)
  }

  /// 5 labellers x 20,000 items at three prevalences: every sensitivity and specificity is
  /// recovered within 4 standard errors of a binomial proportion over the items of that class
  /// (sqrt(r (1 - r) / n_class)), and within 0.02 of the rate the labeller really had on the drawn
  /// items; the prevalence within 0.01; the consensus beats every single labeller.
  func testRecoversKnownRates() throws {
    let sens = [0.95, 0.8, 0.6, 0.9, 0.7], spec = [0.9, 0.98, 0.95, 0.7, 0.85]
    for (k, prevalence) in [0.05, 0.2, 0.5].enumerated() {
      let sim = SimulatedLabellers(items: 20_000, prevalence: prevalence, sensitivity: sens, specificity: spec, seed: 10 + UInt64(k))
      let fit = try DawidSkene.fit(sim.labels, labellers: ["a", "b", "c", "d", "e"])
      XCTAssertEqual(fit.status, .estimated)
      XCTAssertTrue(fit.converged)
      XCTAssertTrue(fit.notes.isEmpty, "\(fit.notes)")
      let nPos = Double(sim.truth.filter { $0 }.count), nNeg = Double(sim.truth.count) - nPos
      XCTAssertEqual(fit.prevalence, nPos / Double(sim.truth.count), accuracy: 0.01)
      for j in 0..<5 {
        let s = fit.sensitivity[j]!, p = fit.specificity[j]!
        XCTAssertEqual(s, sens[j], accuracy: 4 * (sens[j] * (1 - sens[j]) / nPos).squareRoot(), "prevalence \(prevalence), labeller \(j)")
        XCTAssertEqual(p, spec[j], accuracy: 4 * (spec[j] * (1 - spec[j]) / nNeg).squareRoot(), "prevalence \(prevalence), labeller \(j)")
        let c = Confusion(predicted: sim.labels[j].map { $0! }, truth: sim.truth)
        XCTAssertEqual(s, c.sensitivity!, accuracy: 0.02)
        XCTAssertEqual(p, c.specificity!, accuracy: 0.02)
      }
      let consensus = Confusion(predicted: fit.posterior.map { $0 >= 0.5 }, truth: sim.truth).accuracy!
      for j in 0..<5 {
        XCTAssertGreaterThan(consensus, Confusion(predicted: sim.labels[j].map { $0! }, truth: sim.truth).accuracy!)
      }
    }
  }

  func testDegenerateInputsSaySo() throws {
    XCTAssertThrowsError(try DawidSkene.fit([[true, false]], labellers: ["only"])) { e in
      XCTAssertEqual((e as? UserError)?.message, "Dawid-Skene needs at least 3 labellers of the same items to estimate their accuracy without a reference (got 1: only); with fewer, a labeller's errors cannot be told from another's")
    }
    XCTAssertThrowsError(try DawidSkene.fit([[true], [nil], [true, false]], labellers: ["a", "b", "c"])) { e in
      XCTAssertEqual((e as? UserError)?.message, "Dawid-Skene: labeller 'c' has 2 labels, 'a' 1; every labeller needs one (or a missing one) per item")
    }
    XCTAssertThrowsError(try DawidSkene.fit([[nil], [nil], [nil]], labellers: ["a", "b", "c"])) { e in
      XCTAssertEqual((e as? UserError)?.message, "Dawid-Skene: none of the 1 items has a label from any of a, b, c")
    }
    // All agree: no rate is estimable; the consensus is the common label.
    let same: [Bool?] = [true, false, false, true, nil]
    let agree = try DawidSkene.fit([same, same, same.map { $0 == nil ? true : $0 }], labellers: ["a", "b", "c"])
    XCTAssertEqual(agree.status, .noDisagreement)
    XCTAssertEqual(agree.sensitivity, [nil, nil, nil])
    XCTAssertEqual(agree.specificity, [nil, nil, nil])
    XCTAssertEqual(agree.posterior, [1, 0, 0, 1, 1])
    XCTAssertEqual(agree.prevalence, 0.6)
    XCTAssertEqual(agree.notes, ["every item's labels agree across a, b, c: the labellers' sensitivity and specificity cannot be estimated; the consensus is the common label"])
    // A finding nobody ever calls positive.
    let never = try DawidSkene.fit([[false, false, nil], [false, nil, false], [false, false, false]], labellers: ["a", "b", "c"])
    XCTAssertEqual(never.status, .noPositives)
    XCTAssertEqual(never.sensitivity, [nil, nil, nil])
    XCTAssertEqual(never.specificity, [1, 1, 1])
    XCTAssertEqual(never.posterior, [0, 0, 0])
    XCTAssertEqual(never.notes, ["no labeller called any item positive: sensitivity is undefined and every posterior is 0"])
    // Unlabelled items get the prevalence and are named in a note.
    let sim = SimulatedLabellers(items: 500, prevalence: 0.3, sensitivity: [0.9, 0.8, 0.85], specificity: [0.9, 0.95, 0.9], seed: 3)
    var cols = sim.labels
    for j in 0..<3 { cols[j][7] = nil }
    let fit = try DawidSkene.fit(cols, labellers: ["a", "b", "c"])
    XCTAssertEqual(fit.posterior[7], fit.prevalence)
    XCTAssertEqual(fit.unlabelledItems, 1)
    XCTAssertTrue(fit.notes.contains("1 item(s) have no label from any labeller; their posterior is the prevalence"))
  }

  /// An inverted labeller is named as worse than chance (it is still estimated, not hidden).
  func testInvertedLabellerIsNamed() throws {
    var sim = SimulatedLabellers(items: 4000, prevalence: 0.3, sensitivity: [0.9, 0.85, 0.9, 0.9], specificity: [0.95, 0.9, 0.9, 0.92], seed: 4)
    sim.labels[3] = sim.labels[3].map { $0.map { !$0 } }
    let fit = try DawidSkene.fit(sim.labels, labellers: ["a", "b", "c", "flipped"])
    XCTAssertEqual(fit.sensitivity[3]!, 0.1, accuracy: 0.03)
    XCTAssertEqual(fit.notes.count, 1)
    XCTAssertTrue(fit.notes[0].hasPrefix("labeller 'flipped' comes out worse than chance"), fit.notes[0])
  }

  /// Bootstrap weights: a weight of 2 is the same as the item twice.
  func testWeightsEqualRepeatedItems() throws {
    let sim = SimulatedLabellers(items: 300, prevalence: 0.3, sensitivity: [0.9, 0.8, 0.85], specificity: [0.9, 0.95, 0.9], seed: 5)
    let patterns = try DawidSkene.Patterns(sim.labels, labellers: ["a", "b", "c"])
    var w = [Int32](repeating: 1, count: 300)
    for i in stride(from: 0, to: 300, by: 3) { w[i] = 2 }
    for i in stride(from: 1, to: 300, by: 7) { w[i] = 0 }
    let weighted = w.withUnsafeBufferPointer { patterns.fit(weights: $0, options: .init()) }
    var repeated = sim.labels.map { _ in [Bool?]() }
    for i in 0..<300 { for _ in 0..<Int(w[i]) { for j in 0..<3 { repeated[j].append(sim.labels[j][i]) } } }
    let plain = try DawidSkene.fit(repeated, labellers: ["a", "b", "c"])
    XCTAssertEqual(weighted.prevalence, plain.prevalence, accuracy: 1e-12)
    for j in 0..<3 {
      XCTAssertEqual(weighted.sensitivity[j]!, plain.sensitivity[j]!, accuracy: 1e-12)
      XCTAssertEqual(weighted.specificity[j]!, plain.specificity[j]!, accuracy: 1e-12)
    }
  }
}
