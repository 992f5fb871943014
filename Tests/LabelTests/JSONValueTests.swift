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

  /// Strings are scanned eight bytes at a time where nothing needs an escape: each character that
  /// needs one (and its neighbours that do not), at every offset of a run and at its ends, gives
  /// what a byte-by-byte escaper gives, and JSONSerialization reads the original back.
  func testStringEscapesAtEveryOffset() throws {
    func naive(_ s: String) -> String {
      var out: [UInt8] = [0x22]
      for b in s.utf8 {
        switch b {
        case 0x22: out += [0x5C, 0x22]
        case 0x5C: out += [0x5C, 0x5C]
        case 0x0A: out += Array(#"\n"#.utf8)
        case 0x0D: out += Array(#"\r"#.utf8)
        case 0x09: out += Array(#"\t"#.utf8)
        case 0..<0x20: out += Array(String(format: "\\u%04x", Int(b)).utf8)
        default: out.append(b)
        }
      }
      return String(decoding: out + [0x22], as: UTF8.self)
    }
    let specials = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{1F}", " ", "!", "#", "[", "]", "\u{7F}", "é", "🫁"]
    let run = "abcdefghijklmnopqrstuvwxyz0123"
    var checked = 0
    for special in specials {
      for p in 0...run.count {
        for second in [nil, p + 7, p + 8, p + 9] {
          var chars = Array(run)
          if let q = second, q < chars.count { chars.insert(contentsOf: "\\", at: q) }
          chars.insert(contentsOf: special, at: p)
          let s = String(chars)
          var out: [UInt8] = []
          JSONValue.writeString(s, to: &out)
          XCTAssertEqual(String(decoding: out, as: UTF8.self), naive(s), s.debugDescription)
          let back = try JSONSerialization.jsonObject(with: Data(out), options: .fragmentsAllowed) as? String
          XCTAssertEqual(back, s)
          checked += 1
        }
      }
    }
    XCTAssertEqual(checked, specials.count * (run.count + 1) * 4)
    for s in ["", "a", "\"", "abcdefgh", "abcdefg\"", "\"bcdefgh", String(repeating: "\\", count: 17)] {
      var out: [UInt8] = []
      JSONValue.writeString(s, to: &out)
      XCTAssertEqual(String(decoding: out, as: UTF8.self), naive(s))
    }
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

  func testIntegersAreSpelledAsStringSpellsThem() {
    for n: Int64 in [0, 7, -7, 9, 10, -10, 99, 100, 123_456_789, -987_654_321, 999_999_999_999_999, .max, .min, .min + 1] {
      var out: [UInt8] = []
      JSONValue.writeInteger(n, to: &out)
      XCTAssertEqual(String(decoding: out, as: UTF8.self), String(n))
    }
    XCTAssertEqual(JSONValue.array([.number(0), .number(-0.0), .number(42), .number(-3), .number(1e15), .number(2.5)]).serialized,
                   "[0,0,42,-3,1000000000000000.0,2.5]")
  }

  /// The store writes records straight to bytes: the same bytes as the JSONValue tree, with every
  /// optional field both set and missing.
  func testAnswerRecordBytesAreTheTreesBytes() {
    var r = AnswerRecord(id: "s\"1\n", template: "t", templateHash: "h", model: "m", finding: "Pneumothorax", response: "é → 🫁\t",
                         parsed: "Present", value: -1, outcome: "strict", error: "e", latency: 0.123456, promptTokens: 10,
                         completionTokens: 3, attempts: 2, schema: true, server: "http://x")
    r.finishReason = "stop"; r.maxTokens = 64; r.answerTokens = 3
    var none = AnswerRecord(id: "s2", template: "", templateHash: "h", model: "m", finding: "", response: nil,
                            parsed: "ERROR", value: nil, outcome: "failed", error: nil, latency: 120.5, promptTokens: 0,
                            completionTokens: 0, attempts: 0, schema: false, server: "")
    none.value = 0.5
    for record in [r, none, AnswerRecord(id: "s3", template: "t", templateHash: "h", model: "m", finding: "F", response: nil,
                                         parsed: "ERROR", value: nil, outcome: "failed", error: nil, latency: 0,
                                         promptTokens: 0, completionTokens: 0, attempts: 0, schema: false, server: "")] {
      var out: [UInt8] = []
      record.writeJSON(to: &out)
      XCTAssertEqual(String(decoding: out, as: UTF8.self), record.json.serialized)
    }
  }

  /// Chat request bodies are written straight to bytes: the same bytes as the JSONValue object the
  /// client built before, for schema and free-text requests, stop sequences and prefills.
  func testChatBodyBytesAreTheTreesBytes() throws {
    let text = """
    name: b
    system: "You read reports."
    turns: ["Report: {{report}}\\nIs there {{finding}}?", "Now answer."]
    prefills: ["", "<answer>"]
    stop: ["</answer>"]
    reasoning_keys: [why]
    max_tokens: 77
    findings:
      - column: Pneumothorax
        options:
          - {answer: "Yes", value: 1}
          - {answer: "No", value: 0}
    """
    let t = try PromptTemplate.parse(text, source: "b.yaml")
    let prompt = t.rendered(for: t.findings[0])
    var settings = ClientSettings(servers: [URL(string: "http://127.0.0.1:9")!], model: "m\"odel")
    settings.temperature = 0.25
    settings.seed = 7
    let client = ChatClient(settings: settings, maxInFlight: 1)
    defer { Task { await client.shutdown() } }
    func reference(_ messages: [ChatMessage], prefill: String, schema: Bool, maxTokens: Int) -> String {
      var wire = messages.map { JSONValue.object([("role", .string($0.role)), ("content", .string($0.content))]) }
      if !prefill.isEmpty { wire.append(.object([("role", .string("assistant")), ("content", .string(prefill))])) }
      var fields: [(String, JSONValue)] = [
        ("model", .string(settings.model)), ("messages", .array(wire)), ("temperature", .number(settings.temperature)),
        ("seed", .number(Double(settings.seed))), ("max_tokens", .number(Double(maxTokens))),
      ]
      let stop = prompt.stop(for: messages.filter { $0.role == "user" }.count - 1)
      if !stop.isEmpty && !schema { fields.append(("stop", .array(stop.map { .string($0) }))) }
      if !prefill.isEmpty {
        fields.append(("continue_final_message", .bool(true)))
        fields.append(("add_generation_prompt", .bool(false)))
      }
      if schema {
        fields.append(("response_format", .object([
          ("type", .string("json_schema")),
          ("json_schema", .object([("name", .string("answer")), ("strict", .bool(true)), ("schema", prompt.responseSchema)])),
        ])))
      }
      return JSONValue.object(fields).serialized
    }
    let report = "No \"pneumothorax\".\nLines é 🫁."
    let first = [ChatMessage(role: "system", content: prompt.systemText(report: report)),
                 ChatMessage(role: "user", content: prompt.userTurn(0, report: report))]
    let second = first + [ChatMessage(role: "assistant", content: "{\"why\": \"x\"}"),
                          ChatMessage(role: "user", content: prompt.userTurn(1, report: report))]
    for (messages, prefill) in [(first, ""), (second, prompt.prefill(1)), ([ChatMessage](), "")] {
      for schema in [false, true] {
        for maxTokens in [77, 512] {
          let body = client.body(messages, prompt: prompt, prefill: prefill, schema: schema, maxTokens: maxTokens)
          XCTAssertEqual(String(decoding: body, as: UTF8.self), reference(messages, prefill: prefill, schema: schema, maxTokens: maxTokens))
        }
      }
    }
  }
}

/// The answer record as a JSONValue tree: the oracle that `writeJSON`'s bytes are checked against
/// (the store writes the bytes alone).
extension AnswerRecord {
  var json: JSONValue {
    .object([
      ("id", .string(id)), ("template", .string(template)), ("template_hash", .string(templateHash)),
      ("model", .string(model)), ("finding", .string(finding)),
      ("response", response.map { .string($0) } ?? .null), ("parsed", .string(parsed)),
      ("value", value.map { .number($0) } ?? .null), ("outcome", .string(outcome)),
      ("error", error.map { .string($0) } ?? .null), ("latency_s", .number((latency * 1e4).rounded() / 1e4)),
      ("prompt_tokens", .number(Double(promptTokens))), ("completion_tokens", .number(Double(completionTokens))),
      ("attempts", .number(Double(attempts))), ("response_format", .bool(schema)), ("server", .string(server)),
      ("finish_reason", finishReason.map { .string($0) } ?? .null), ("max_tokens", .number(Double(maxTokens))),
      ("answer_tokens", .number(Double(answerTokens))),
    ])
  }
}
