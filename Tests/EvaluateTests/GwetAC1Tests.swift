import Common
import Foundation
import TestSupport
import XCTest
@testable import Evaluate

final class GwetAC1Tests: XCTestCase {
  /// Five items, categories present 0 / absent 1 / uncertain 2: pa = 3/5; category rates
  /// (2+1)/10, (2+3)/10, (1+1)/10; pe = (0.3*0.7 + 0.5*0.5 + 0.2*0.8) / 2 = 0.31.
  func testHandComputed() {
    let a = [0, 1, 2, 1, 0], b = [0, 1, 1, 1, 2]
    XCTAssertEqual(gwetAC1(a, b, categories: 3)!, (0.6 - 0.31) / (1 - 0.31), accuracy: 1e-15)
    // Cohen: marginals a (2,2,1)/5, b (1,3,1)/5: pe = (2*1 + 2*3 + 1*1)/25 = 9/25.
    XCTAssertEqual(cohenKappa(a, b, categories: 3)!, (0.6 - 0.36) / (1 - 0.36), accuracy: 1e-15)
    // q = 2 is the binary AC1.
    let x = [true, true, false, false, true, false], y = [true, false, false, true, true, false]
    XCTAssertEqual(gwetAC1(x.map { $0 ? 0 : 1 }, y.map { $0 ? 0 : 1 }, categories: 2)!, gwetAC1(x, y)!, accuracy: 1e-15)
    XCTAssertNil(gwetAC1([], [], categories: 3))
    XCTAssertNil(cohenKappa([1, 1], [1, 1], categories: 3))  // pe = 1
    XCTAssertEqual(gwetAC1([1, 1], [1, 1], categories: 3)!, 1, accuracy: 1e-15)
  }

  /// Against the irrCAC package (Gwet's own formulas) and scikit-learn's Cohen's kappa on 300
  /// random readings with realistic rates, and on small tables with a category unused.
  func testMatchesIrrCACAndScikitLearn() throws {
    var rng = SeededRandom(seed: 11)
    var cases: [([Int], [Int])] = []
    for n in [300, 37, 8] {
      var a: [Int] = [], b: [Int] = []
      for _ in 0..<n {
        let truth = rng.index(below: 100) < 25 ? 0 : 1
        func read() -> Int { let r = rng.index(below: 100); return r < 8 ? 2 : r < 14 ? 1 - truth : truth }
        a.append(read()); b.append(n == 8 ? min(read(), 1) : read())
      }
      cases.append((a, b))
    }
    let names = ["present", "absent", "uncertain"]
    let payload = cases.map { ["a": $0.0.map { names[$0] }, "b": $0.1.map { names[$0] }] }
    let json = String(decoding: try JSONSerialization.data(withJSONObject: payload), as: UTF8.self)
    let out = try Python.json("""
      import json, sys, pandas as pd
      from irrCAC.raw import CAC
      from sklearn.metrics import cohen_kappa_score
      res = []
      for c in json.loads(sys.argv[1]):
          cac = CAC(pd.DataFrame({'a': c['a'], 'b': c['b']}), categories=['present', 'absent', 'uncertain'], digits=12)
          g = cac.gwet()['est']
          res.append({'ac1': g['coefficient_value'], 'pa': g['pa'], 'pe': g['pe'],
                      'kappa': float(cohen_kappa_score(c['a'], c['b'], labels=['present', 'absent', 'uncertain']))})
      print(json.dumps(res))
      """, args: [json]) as! [[String: Double]]
    XCTAssertEqual(out.count, 3)
    for ((a, b), ref) in zip(cases, out) {
      XCTAssertEqual(gwetAC1(a, b, categories: 3)!, ref["ac1"]!, accuracy: 1e-11)
      XCTAssertEqual(cohenKappa(a, b, categories: 3)!, ref["kappa"]!, accuracy: 1e-12)
    }
    // The study's point: the binary AC1 (uncertain left out) is not the 3-category one.
    let (a, b) = cases[0]
    let keep = a.indices.filter { a[$0] != 2 && b[$0] != 2 }
    XCTAssertNotEqual(gwetAC1(keep.map { a[$0] == 0 }, keep.map { b[$0] == 0 })!, gwetAC1(a, b, categories: 3)!, accuracy: 1e-6)
  }

  /// `cxr agree --annotators` reports both AC1s, labelled: the binary one leaves out every case
  /// either reader called uncertain, the 3-category one keeps them; blank (not read) is left out of both.
  func testAgreeReportsBothAC1s() throws {
    // 6 cases: (r1, r2) = (1,1) (0,0) (1,uncertain) (uncertain,uncertain) (0,1) (blank,1).
    let human = try CSVTable.parse("id,A,A_r1,A_r2\nc1,1,1,1\nc2,0,0,0\nc3,1,1,uncertain\nc4,equivocal,uncertain,-1\nc5,0,0,1\nc6,1,,1\n", source: "h.csv")
    let schema = try CSVTable.parse("id,A\nc1,1\nc2,0\nc3,1\nc4,0\nc5,0\nc6,1\n", source: "s.csv")
    let r = try Agreement.run(human: human, schemas: [("s", schema)], findings: ["A"], annotators: ("{finding}_r1", "{finding}_r2"), rounds: 100, seed: 1)
    let rows = r.rows.filter { $0.schema == Agreement.annotatorsName }
    XCTAssertEqual(rows.map(\.metric), ["gwet_ac1", "gwet_ac1_3cat"])
    XCTAssertEqual(rows.map(\.n), [3, 5])
    XCTAssertEqual(rows[0].value!, gwetAC1([true, false, false], [true, false, true])!, accuracy: 1e-15)
    XCTAssertEqual(rows[1].value!, gwetAC1([0, 1, 0, 2, 1], [0, 1, 2, 2, 0], categories: 3)!, accuracy: 1e-15)
    XCTAssertEqual(rows[1].nPos, 3)  // c1, c3, c5: someone said present
    XCTAssertNotNil(rows[1].ciLow)
    // The reports label the two.
    XCTAssertTrue(r.markdown.contains("| finding | categories | AC1 | 95 % CI | n |"), r.markdown)
    XCTAssertTrue(r.markdown.contains("| A | present / absent (uncertain left out) | "), r.markdown)
    XCTAssertTrue(r.markdown.contains("| A | present / absent / uncertain | "), r.markdown)
    XCTAssertTrue(r.html.contains("<td>A</td><td>present / absent / uncertain</td>"))
  }
}
