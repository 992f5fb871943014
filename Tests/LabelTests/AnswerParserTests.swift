import XCTest
@testable import Label

final class AnswerParserTests: XCTestCase {
  func testTrimIsFoundationsTrimmingCharacters() {
    let sets: [CharacterSet] = [.whitespacesAndNewlines, CharacterSet.punctuationCharacters.union(.whitespacesAndNewlines)]
    let samples = ["", " ", "\n\t ", "Present", "  Present.\n", "\u{00A0}«Absent»\u{2003}", "{\"a\": 1}\r\n",
                   "...", " é ", "\u{0085}x\u{2028}", "👍 yes 👍", "e\u{0301} ", " a b "]
    for set in sets {
      for text in samples {
        XCTAssertEqual(AnswerParser.trim(text, set), text.trimmingCharacters(in: set), "\(text.debugDescription)")
      }
    }
    XCTAssertEqual(AnswerParser.insideAnswerTags("{\"answer\": \"Present\"}"), "{\"answer\": \"Present\"}")
    XCTAssertEqual(AnswerParser.insideAnswerTags("think <ANSWER>Absent</Answer> done"), "Absent")
  }

  let options = [AnswerOption(answer: "Present", value: 1.0), AnswerOption(answer: "Absent", value: 0.0),
                 AnswerOption(answer: "Uncertain", value: -1.0)]

  func parse(_ s: String) -> (ParseOutcome, String) {
    let p = AnswerParser.parse(s, key: "answer", options: options)
    return (p.outcome, p.display)
  }

  func testStrict() {
    XCTAssertTrue(parse(#"{"answer": "Present"}"#) == (.strict, "Present"))
    XCTAssertTrue(parse(" {\"answer\":\"Absent\"}\n") == (.strict, "Absent"))
    XCTAssertTrue(parse(#"<answer>{"answer": "Uncertain"}</answer>"#) == (.strict, "Uncertain"))
    // The closing tag is a stop sequence, so it is usually missing.
    XCTAssertTrue(parse(#"Reasoning... <answer>{"answer": "Absent"}"#) == (.strict, "Absent"))
    XCTAssertTrue(parse(#"{"initial_answer": "Absent", "critique": "ok", "answer": "Present"}"#) == (.strict, "Present"))
  }

  func testRecovery() {
    XCTAssertTrue(parse("```json\n{\"answer\": \"Present\"}\n```") == (.recovered, "Present"))
    XCTAssertTrue(parse(#"After review, my answer is {"answer": "present"} as shown."#) == (.recovered, "Present"))
    XCTAssertTrue(parse(#"{"Answer": "ABSENT"}"#) == (.recovered, "Absent"))
    XCTAssertTrue(parse(#"{"answer": true}"#) == (.recovered, "Present"))
    XCTAssertTrue(parse(#"{"answer": false}"#) == (.recovered, "Absent"))
    XCTAssertTrue(parse(#"{"answer": -1}"#) == (.recovered, "Uncertain"))
    XCTAssertTrue(parse(#"{"answer": 1.0}"#) == (.recovered, "Present"))
    XCTAssertTrue(parse(#"{"answer": "yes"}"#) == (.recovered, "Present"))
    XCTAssertTrue(parse(#"{"answer": "Presnt"}"#) == (.recovered, "Present"))
    XCTAssertTrue(parse(#"{"answer": "Uncertian"}"#) == (.recovered, "Uncertain"))
    XCTAssertTrue(parse("Yes.") == (.recovered, "Present"))
    XCTAssertTrue(parse("No") == (.recovered, "Absent"))
    XCTAssertTrue(parse("absent") == (.recovered, "Absent"))
    // Braces inside strings do not end the object; the last object with an answer wins (a draft,
    // then the final answer), as with the tags.
    XCTAssertTrue(parse(#"Note {not json}. {"critique": "a } brace", "answer": "Absent"} then {"answer": "Present"}"#)
                  == (.recovered, "Present"))
    XCTAssertTrue(parse(#"Draft: {"answer": "Present"}. On reflection: {"answer": "Absent"} {"note": "done"}"#)
                  == (.recovered, "Absent"))
    // An object cut short at the end is no answer: the last complete one is.
    XCTAssertTrue(parse(#"{"answer": "Absent"} then {"answer": "Pres"#) == (.recovered, "Absent"))
    XCTAssertTrue(parse(#"Draft {"critique": "a } brace", "answer": "Absent"} final {"critique": "{x}", "answer": "Uncertain"}"#)
                  == (.recovered, "Uncertain"))
    // Chain of thought: the tagged JSON wins over JSON quoted in the reasoning.
    XCTAssertTrue(parse(#"Initial {"answer": "Present"}. Critique: wrong. <answer>{"answer": "Absent"}</answer>"#)
                  == (.strict, "Absent"))
  }

  func testErrors() {
    XCTAssertTrue(parse(#"Sure! {"answer": Present"#) == (.error, "ERROR"))
    XCTAssertTrue(parse("") == (.error, "ERROR"))
    XCTAssertTrue(parse(#"{"answer": "Maybe pneumonia"}"#) == (.error, "ERROR"))
    XCTAssertTrue(parse(#"{"verdict": "Present"}"#) == (.error, "ERROR"))
    XCTAssertTrue(parse("The report describes a large left pneumothorax.") == (.error, "ERROR"))
    XCTAssertTrue(parse(#"{"answer": 2}"#) == (.error, "ERROR"))
  }
}
