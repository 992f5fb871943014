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

  func testParseReadsEveryKindOfValue() throws {
    let v = try XCTUnwrap(JSONValue.parse(#"{"a": [1, -2.5, true, null, "x"], "b": {"c": "d"}}"#))
    XCTAssertEqual(v["a"], .array([.number(1), .number(-2.5), .bool(true), .null, .string("x")]))
    XCTAssertEqual(v["b"]?["c"]?.string, "d")
    XCTAssertEqual(JSONValue.parse("\"Present\""), .string("Present"))
    XCTAssertNil(JSONValue.parse("{not json"))
  }

  /// Servers add fields of their own (ids, logprobs, reasoning text, timing, system_fingerprint):
  /// they are ignored, and only what the client reads must have its type.
  func testChatResponsesWithUnknownFieldsParse() throws {
    let body = #"""
      {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "system_fingerprint": null,
       "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop", "stop_reason": 42,
                    "message": {"role": "assistant", "content": "{\"answer\": \"Present\"}", "reasoning_content": "…",
                                "tool_calls": [], "extra": {"nested": [1, 2]}}}],
       "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": {"cached": 0}},
       "timings": {"predicted_ms": 1.5}, "kv_transfer_params": null}
      """#
    let c = try JSONDecoder().decode(ChatCompletion.self, from: Data(body.utf8))
    XCTAssertEqual(c.choices.first?.message?.content, #"{"answer": "Present"}"#)
    XCTAssertEqual(c.choices.first?.finishReason, "stop")
    XCTAssertEqual(c.usage?.promptTokens, 12)
    XCTAssertEqual(c.usage?.completionTokens, 5)
    // A message that is not an object is no message (the client asks again), not an empty answer.
    let odd = try JSONDecoder().decode(ChatCompletion.self, from: Data(#"{"choices": [{"message": "hi"}]}"#.utf8))
    XCTAssertNil(odd.choices.first?.message)
    XCTAssertThrowsError(try JSONDecoder().decode(ChatCompletion.self, from: Data(#"{"object": "list"}"#.utf8)))
    let models = try JSONDecoder().decode(ModelList.self, from: Data(#"{"object": "list", "data": [{"id": "a", "owned_by": "x", "max_model_len": 8192}, {"id": "b"}]}"#.utf8))
    XCTAssertEqual(models.data.compactMap(\.id), ["a", "b"])
  }

  func testAnswerRecordsReadWhatTheyWriteAndIgnoreUnknownFields() throws {
    var r = AnswerRecord(id: "s1", template: "t", templateHash: "h", model: "m", finding: "Pneumothorax", response: "r",
                         parsed: "Present", value: 1, outcome: "strict", error: nil, latency: 0.12345, promptTokens: 10,
                         completionTokens: 3, attempts: 1, schema: true, server: "http://x")
    r.finishReason = "stop"; r.maxTokens = 64; r.answerTokens = 3
    let back = try JSONDecoder().decode(AnswerRecord.self, from: Data(r.json.bytes))
    XCTAssertEqual(back.json, r.json)  // latency_s is written rounded to 4 decimals, read back as written
    let extra = #"{"id": "s2", "template_hash": "h", "model": "m", "outcome": "failed", "future_field": [1], "value": null}"#
    let e = try JSONDecoder().decode(AnswerRecord.self, from: Data(extra.utf8))
    XCTAssertEqual(e.id, "s2"); XCTAssertEqual(e.parsed, "ERROR"); XCTAssertNil(e.value); XCTAssertEqual(e.promptTokens, 0)
    XCTAssertThrowsError(try JSONDecoder().decode(AnswerRecord.self, from: Data(#"{"id": "s3", "model": "m", "outcome": "strict"}"#.utf8)))
  }
}

