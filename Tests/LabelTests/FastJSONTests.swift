import Foundation
import NIOCore
import XCTest
@testable import Label

/// FastJSON reads the chat completion body and the strict answer object in the common case and
/// leaves the rest to JSONDecoder: wherever it gives an answer, it must be JSONDecoder's.
final class FastJSONTests: XCTestCase {
  static let bodies: [String] = [
    #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"answer\": \"Present\"}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":110,"completion_tokens":2,"total_tokens":112}}"#,
    #"{"choices": [{"message": {"content": "a\nb\t\"q\" \\ \/ \u00e9 \u2192"}, "finish_reason": "length"}], "usage": {"prompt_tokens": 1.5}}"#,
    #"{"choices": [{"message": {"content": null}, "finish_reason": null}], "usage": null}"#,
    #"{"choices": [{"message": "hi"}]}"#,
    #"{"choices": [{"message": {"content": 3}, "finish_reason": 7}], "usage": {"prompt_tokens": "1", "completion_tokens": true}}"#,
    #"{"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": -3}}"#,
    #"{"choices": [1]}"#,
    #"{"choices": {"message": {}}}"#,
    #"{"object": "list"}"#,
    #"[1, 2]"#,
    #"  {"choices" : [ { "message" : { "content" : "x" } } ] , "n": [true, false, null, -0.25, 0, {"a": []}] }  "#,
    #"{"choices": [{"message": {"content": "x"}}], "choices": []}"#,
    #"{"choices": [{"message": {"content": "x", "content": "y"}}]}"#,
    #"{"choices": [{"message": {"content": "x"}}], "e": 1e400}"#,
    #"{"choices": [{"message": {"content": "x"}}], "big": 12345678901234567890}"#,
    #"{"choices": [{"message": {"content": "\ud83e\udec1"}}]}"#,
    #"{"choices": [{"message": {"content": "\u0000"}}]}"#,
    #"{"choices": [{"message": {"content": "bad \q escape"}}]}"#,
    #"{"choices": [{"message": {"content": "x"}}],}"#,
    #"{"choices": [{"message": {"content": "x"}}]} trailing"#,
    #"{"choices": [{"message": {"content": "x"}}], "z": 01}"#,
    #"{"choices": [{"message": {"content": "x"}}], "z": 1.}"#,
    #"{"choices": [{"message": {"content": "x"}}], "z": -}"#,
    #"{"choices": [{"message": {"content": "x"}}], "z": tru}"#,
    #"{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -0}}"#,
    "{\"choices\": [{\"message\": {\"content\": \"raw \u{1} control\"}}]}",
    "{\"choices\": [{\"message\": {\"content\": \"é raw\"}}]}",
    #"{"choices": [{"message": {"content": "unterminated}}]"#,
    "",
    "{",
    // Members that are not kept are checked and stepped over, repeated or not.
    #"{"id":"a","id":"b","choices":[{"index":0,"message":{"role":"a","content":"x","role":"b"},"logprobs":null}],"x":{"a":[1,-2.5,true,false,null,"s\"",{"b":{}},[]]}}"#,
    #"{"choices":[{"message":{"content":{"a":1}},"finish_reason":["x"]}],"usage":{"prompt_tokens":null,"completion_tokens":"3","total_tokens":{}}}"#,
    #"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":3,"prompt_tokens":4}}"#,
    #"{"choices":[{"message":{"content":"x"},"message":{"content":"y"}}]}"#,
    #"{"choices":[{"finish_reason":"stop","finish_reason":"length","message":{"content":"x"}}]}"#,
    #"{"choi\u0063es":[{"message":{"content":"x"}}]}"#,
    #"{"choices":[{"message":{"content":"x"}}],"x":{"a\u0062":1}}"#,
    #"{"choices":[{"message":{"content":"x"}}],"usage":[1,2]}"#,
    #"{"choices":[{"message":null,"finish_reason":"stop"}],"usage":{"completion_tokens":5}}"#,
    #"{"choices":[{"message":{"content":"x"}}],"x":[1,}"#,
    #"{"choices":[{"message":{"content":"x"}}],"x":{"a" 1}}"#,
    "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"deep\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}",
    // Skipped strings are checked like read ones: JSONDecoder refuses a bad escape anywhere.
    #"{"choices":[{"message":{"content":"x"}}],"x":"bad \q escape"}"#,
    #"{"choices":[{"message":{"content":"x","role":"\uZZZZ"}}]}"#,
    #"{"choices":[{"message":{"content":"x"}}],"x":["\ud800"]}"#,
    #"{"choices":[{"message":{"content":"x"}}],"x":"ok \" \\ \/ \n \u00e9"}"#,
  ]

  func testChatCompletionAgreesWithJSONDecoder() {
    var fastRead = 0
    for body in FastJSONTests.bodies {
      let decoded = try? JSONDecoder().decode(ChatCompletion.self, from: Data(body.utf8))
      guard let fast = ChatCompletion.fast(ByteBuffer(string: body)) else { continue }
      fastRead += 1
      guard let decoded else { XCTFail("FastJSON read what JSONDecoder refuses: \(body)"); continue }
      XCTAssertEqual(fast.choices.count, decoded.choices.count, body)
      for (a, b) in zip(fast.choices, decoded.choices) {
        XCTAssertEqual(a.message == nil, b.message == nil, body)
        XCTAssertEqual(a.message?.content, b.message?.content, body)
        XCTAssertEqual(a.finishReason, b.finishReason, body)
      }
      XCTAssertEqual(fast.usage == nil, decoded.usage == nil, body)
      XCTAssertEqual(fast.usage?.promptTokens, decoded.usage?.promptTokens, body)
      XCTAssertEqual(fast.usage?.completionTokens, decoded.usage?.completionTokens, body)
    }
    XCTAssertGreaterThanOrEqual(fastRead, 10)
    // The usual replies are read here, not handed on to JSONDecoder.
    let usual = ChatCompletion.fast(ByteBuffer(string: FastJSONTests.bodies[0]))
    XCTAssertEqual(usual?.choices.first?.message?.content, #"{"answer": "Present"}"#)
    XCTAssertEqual(usual?.choices.first?.finishReason, "stop")
    XCTAssertEqual(usual?.usage?.promptTokens, 110)
    XCTAssertEqual(usual?.usage?.completionTokens, 2)
    let extras = ChatCompletion.fast(ByteBuffer(string: FastJSONTests.bodies[30]))
    XCTAssertEqual(extras?.choices.first?.message?.content, "x")
    XCTAssertNil(extras?.usage)
    let odd = ChatCompletion.fast(ByteBuffer(string: FastJSONTests.bodies[31]))
    XCTAssertNotNil(odd?.choices.first?.message)
    XCTAssertNil(odd?.choices.first?.message?.content)
    XCTAssertNil(odd?.choices.first?.finishReason)
    XCTAssertNil(odd?.usage?.promptTokens)
    XCTAssertNil(odd?.usage?.completionTokens)
    // A key that is read and repeats is JSONDecoder's business, as is a key with escapes.
    for i in [32, 33, 34, 35, 36, 42, 43, 44] {
      XCTAssertNil(ChatCompletion.fast(ByteBuffer(string: FastJSONTests.bodies[i])), FastJSONTests.bodies[i])
    }
    XCTAssertEqual(ChatCompletion.fast(ByteBuffer(string: FastJSONTests.bodies[45]))?.choices.first?.message?.content, "x")
  }

  func testStrictAnswerAgreesWithJSONValue() {
    let texts = [
      #"{"answer": "Present"}"#, #"{"reasoning": "a \"b\" \n c", "answer": "Absent"}"#, #"{"answer": 1}"#,
      #"{"answer": null}"#, #"{"Answer": "Present"}"#, #"["answer"]"#, #""answer""#, #"{"answer": "Present", "answer": "Absent"}"#,
      #"{"answer": "Pr\u00e9sent"}"#, #"{"answer": "Present"} extra"#, #"{"answer": "Present", "x": 1e5}"#,
      "{\"answer\": \"Présent\"}", #"{"answer": ["Present"]}"#, #"{"answer": "Present",}"#, "",
    ]
    for text in texts {
      XCTAssertEqual(AnswerParser.strictString(text, key: "answer"), JSONValue.parse(text)?["answer"]?.string, text)
    }
  }
}
