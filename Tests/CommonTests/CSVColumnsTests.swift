import Common
import XCTest

final class CSVColumnsTests: XCTestCase {
  func testOnlyTheChosenColumnsKeepTheirCells() throws {
    let text = "#c: 1\na,b,\"c\"\n1,\"x,y\",3\n\n4,5,\"6\n7\"\n8,9,10"
    let all = try CSVTable.parse(Data(text.utf8), source: "t.csv", columns: nil)
    let some = try CSVTable.parse(Data(text.utf8), source: "t.csv", columns: ["a", "c"])
    XCTAssertEqual(all.rows, [["1", "x,y", "3"], ["4", "5", "6\n7"], ["8", "9", "10"]])
    XCTAssertEqual(some.header, ["a", "b", "c"])
    XCTAssertEqual(some.rows, [["1", "", "3"], ["4", "", "6\n7"], ["8", "", "10"]])
    XCTAssertEqual(some.lines, all.lines)
    XCTAssertEqual(some.comments, ["c: 1"])
    // A row whose only cell is dropped is still a row, not a blank line.
    XCTAssertEqual(try CSVTable.parse(Data("a\nx\ny\n".utf8), source: "s.csv", columns: []).rows, [[""], [""]])
    XCTAssertThrowsError(try CSVTable.parse(Data("a,b\n1,2\n3\n".utf8), source: "x.csv", columns: ["a"])) {
      XCTAssertEqual("\($0)", "x.csv:3: row has 1 fields but the header has 2; fix or remove that row")
    }
  }
}
