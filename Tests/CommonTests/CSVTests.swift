import Common
import XCTest

final class CSVTests: XCTestCase {
  func testQuotingCommentsCRLFAndBOM() throws {
    let text = "\u{FEFF}#Model: x\r\n#Temperature: 0\r\n\"index\",\"a_response\",\"note\"\r\n\"1\",\"Present\",\"says \"\"hi\"\", ok\"\r\n2,Absent,\"two\nlines\"\r\n"
    let t = try CSVTable.parse(text, source: "r.csv")
    XCTAssertEqual(t.comments, ["Model: x", "Temperature: 0"])
    XCTAssertEqual(t.header, ["index", "a_response", "note"])
    XCTAssertEqual(t.rows, [["1", "Present", "says \"hi\", ok"], ["2", "Absent", "two\nlines"]])
    XCTAssertEqual(t.lines, [4, 5])
    XCTAssertEqual(try t.require("a_response"), 1)
  }

  func testErrorsNameFileLineAndColumns() throws {
    XCTAssertThrowsError(try CSVTable.parse("a,b\n1,2\n3\n", source: "x.csv")) { e in
      XCTAssertEqual("\(e)", "x.csv:3: row has 1 fields but the header has 2; fix or remove that row")
    }
    XCTAssertThrowsError(try CSVTable.parse("a,b\n\"1,2\n", source: "q.csv")) { e in
      XCTAssertEqual("\(e)", "q.csv:2: a quoted field is never closed; fix the quotes on that row")
    }
    XCTAssertThrowsError(try CSVTable.parse("", source: "e.csv")) { e in
      XCTAssertEqual("\(e)", "e.csv is empty: expected a header row")
    }
    let t = try CSVTable.parse("id,x\n1,2\n", source: "c.csv")
    XCTAssertThrowsError(try t.require("path")) { e in
      XCTAssertEqual("\(e)", "c.csv has no column 'path'; its columns are: id, x")
    }
  }

  func testWriterRoundTripsThroughReader() throws {
    var w = CSVWriter(header: ["id", "text"])
    w.append(["a", "x, \"y\"\nz"])
    let t = try CSVTable.parse(w.text)
    XCTAssertEqual(t.rows, [["a", "x, \"y\"\nz"]])
  }
}
