import Foundation
import XCTest
@testable import Label

final class JSONValueTests: XCTestCase {
  func testSerializationKeepsKeyOrderAndEscapes() throws {
    let tricky = "quote \" backslash \\ newline \n tab \t cr \r bell \u{07} unicode é → 🫁 end"
    let v: JSONValue = .object([("z", .string(tricky)), ("a", .array([.number(1), .number(-1), .number(0.5), .bool(true), .null]))])
    XCTAssertEqual(v.serialized,
                   #"{"z":"quote \" backslash \\ newline \n tab \t cr \r bell \u0007 unicode é → 🫁 end","a":[1,-1,0.5,true,null]}"#)
    let back = try JSONSerialization.jsonObject(with: Data(v.bytes)) as! [String: Any]
    XCTAssertEqual(back["z"] as? String, tricky)
  }
}
