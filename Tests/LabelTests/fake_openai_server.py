"""A small OpenAI-compatible chat server for cxr's label tests and benchmark (loopback only).

It speaks the real wire format: GET /v1/models, POST /v1/chat/completions with `choices`,
`usage`, OpenAI-style error bodies and statuses. Its behaviour is steered by directives that the
tests put in the report text (so each report can exercise one path):
  [[answer:X]]        answer X (default: the first option for which the report says "positive", else Absent)
  [[status:503x2]]    the first 2 attempts of this conversation get HTTP 503 (any status; 429 adds Retry-After: 0);
                      [[status:500x9@fracture]] only where the prompt (directives aside) names "fracture"
  [[slow:1.5x1]]      the first attempt sleeps 1.5 s before answering
  [[style:S]]         fenced | prose | yes | bool | misspelled | malformed | bare | emptychoices |
                      draftfinal (a draft JSON answer with the other option, then the final one)
  [[long:N]]          N words of reasoning before the answer (a draft answer first with draftfinal)
  [[close:x1]]        the first attempt's connection is closed after the request, without an answer
Without `response_format` it answers with reasoning text and `<answer>{...}` (the closing tag is
left out when `</answer>` is a stop sequence, as a real server does). With it, strict JSON in schema
order. A final assistant message is a prefill: the answer continues it. Tokens are words: an answer
longer than `max_tokens` words is cut there with `finish_reason: "length"`, as real servers do.
--reject-response-format [400|422|vllm|llamacpp|tgi] refuses such requests as that server does;
--models-status 429x2 (with --retry-after S) fails the first GETs of /v1/models; --die-after N
exits right after the N-th answer (a server dying mid-run); --delay adds a fixed latency.
Every request is logged as one JSON line to --log. The server binds 127.0.0.1 only and exits after
--lifetime seconds or --max-requests requests, whichever comes first.
"""
import argparse, json, os, re, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="test-model")
ap.add_argument("--delay", type=float, default=0.0)
ap.add_argument("--reject-response-format", nargs="?", const="400", default=None,
                choices=["400", "422", "vllm", "llamacpp", "tgi"])
ap.add_argument("--models-status", default=None)
ap.add_argument("--retry-after", default=None)
ap.add_argument("--die-after", type=int, default=0)
ap.add_argument("--close-first", type=int, default=0)
ap.add_argument("--log-bodies", action="store_true")
ap.add_argument("--api-key", default=None)
ap.add_argument("--log", default=None)
ap.add_argument("--lifetime", type=float, default=300.0)
ap.add_argument("--max-requests", type=int, default=1_000_000)
args = ap.parse_args()
# Swift's Foundation.Process starts children with signals blocked: let SIGTERM/SIGINT end us.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.SIG_DFL)

lock = threading.Lock()
attempts = {}
state = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "gets": 0, "answers": 0, "posts": 0}
log_file = open(args.log, "a") if args.log else None


def log(entry):
    if log_file:
        with lock:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()


def words(text):
    return len(text.split())


def cut_words(text, n):
    """The text up to the end of its n-th word (a completion cut at max_tokens)."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    return text[: ends[n - 1]] if n > 0 else ""


def filler(text):
    m = re.search(r"\[\[long:(\d+)\]\]", text)
    return "".join("step%d " % i for i in range(int(m.group(1)))) if m else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus delayed ACKs
    # would add 40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, message, kind="invalid_request_error", headers=None):
        self.send_json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def send_text(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse_response_format(self, entry):
        """The refusals of real servers, in their own body formats."""
        style = args.reject_response_format
        entry["status"] = 422 if style in ("422", "tgi") else 400
        log(entry)
        if style == "400":
            return self.error(400, "response_format is not supported by this server")
        if style == "422":
            return self.error(422, "Unsupported response_format type 'json_schema'", "unprocessable_entity")
        if style == "vllm":  # vLLM: a flat error object
            return self.send_json(400, {"object": "error", "message": "The provided JSON schema contains features not supported by xgrammar.",
                                        "type": "BadRequestError", "param": None, "code": 400})
        if style == "llamacpp":
            return self.error(400, 'response_format type must be one of "text" or "json_object", but got: json_schema')
        # TGI: axum's JSON extractor rejects the unknown variant with 422 and a plain-text body.
        return self.send_text(422, "Failed to deserialize the JSON body into the target type: response_format: unknown variant `json_schema`, expected `json` or `regex` at line 1 column 120")

    def count(self):
        with lock:
            state["requests"] += 1
            n = state["requests"]
        if n >= args.max_requests:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def authorized(self):
        if args.api_key is None:
            return True
        return self.headers.get("Authorization") == "Bearer " + args.api_key

    def do_GET(self):
        self.count()
        if not self.authorized():
            return self.error(401, "invalid api key", "authentication_error")
        if self.path.rstrip("/") == "/v1/models":
            with lock:
                state["gets"] += 1
                n = state["gets"]
            m = re.match(r"(\d+)x(\d+)$", args.models_status or "")
            if m and n <= int(m.group(2)):
                status = int(m.group(1))
                log({"path": self.path, "method": "GET", "status": status, "t": time.time()})
                return self.error(status, "injected failure", "server_error",
                                  {"Retry-After": args.retry_after} if args.retry_after else None)
            log({"path": self.path, "method": "GET", "status": 200, "t": time.time()})
            return self.send_json(200, {"object": "list", "data": [{"id": args.model, "object": "model", "owned_by": "test"}]})
        self.error(404, "no route " + self.path)

    def do_POST(self):
        self.count()
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            return self.error(404, "no route " + self.path)
        with lock:
            state["in_flight"] += 1
            state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            self.chat(raw)
        finally:
            with lock:
                state["in_flight"] -= 1

    def chat(self, raw):
        try:
            req = json.loads(raw)
        except ValueError:
            return self.error(400, "body is not JSON")
        messages = req.get("messages") or []
        user = [m["content"] for m in messages if m.get("role") == "user"]
        last = user[-1] if user else ""
        text = "\n".join(user)  # directives and the default answer look at the whole conversation
        key = json.dumps(messages)
        with lock:
            attempt = attempts.get(key, 0) + 1
            attempts[key] = attempt
            max_in_flight = state["max_in_flight"]
        rf = req.get("response_format")
        entry = {"path": self.path, "method": "POST", "model": req.get("model"), "temperature": req.get("temperature"),
                 "seed": req.get("seed"), "max_tokens": req.get("max_tokens"), "stop": req.get("stop"),
                 "response_format": rf is not None, "messages": len(messages), "roles": [m.get("role") for m in messages],
                 "attempt": attempt, "authorized": self.authorized(), "expect": self.headers.get("Expect"), "max_in_flight": max_in_flight,
                 "user_tail": last[-60:], "t": time.time(),
                 "prefill": messages[-1].get("content") if messages and messages[-1].get("role") == "assistant" else None}
        if args.log_bodies:
            entry["body"] = req
        if not self.authorized():
            entry["status"] = 401
            log(entry)
            return self.error(401, "invalid api key", "authentication_error")
        if req.get("model") != args.model:
            entry["status"] = 404
            log(entry)
            return self.error(404, "The model `%s` does not exist." % req.get("model"), "NotFoundError")
        m = re.search(r"\[\[status:(\d+)x(\d+)(?:@(\w+))?\]\]", text)
        plain = re.sub(r"\[\[[^\]]*\]\]", "", text).lower()
        if m and attempt <= int(m.group(2)) and (m.group(3) is None or m.group(3).lower() in plain):
            status = int(m.group(1))
            entry["status"] = status
            log(entry)
            return self.error(status, "injected failure", "server_error", {"Retry-After": "0"} if status == 429 else None)
        with lock:
            state["posts"] += 1
            post_number = state["posts"]
        m = re.search(r"\[\[close:x(\d+)\]\]", text)
        if (m and attempt <= int(m.group(1))) or post_number <= args.close_first:
            entry["status"] = None
            log(entry)
            # Read the request, then hang up without a byte of answer (a crashed worker, a proxy).
            self.close_connection = True
            self.connection.shutdown(2)
            return
        m = re.search(r"\[\[slow:([\d.]+)x(\d+)\]\]", text)
        if m and attempt <= int(m.group(2)):
            time.sleep(float(m.group(1)))
        if args.delay:
            time.sleep(args.delay)
        if rf is not None and args.reject_response_format:
            return self.refuse_response_format(entry)
        answer_key, reasoning, options = "answer", [], None
        if rf is not None:
            try:
                assert rf["type"] == "json_schema"
                schema = rf["json_schema"]["schema"]
                props = list(schema["properties"].keys())
                answer_key = props[-1]
                reasoning = props[:-1]
                options = schema["properties"][answer_key]["enum"]
            except (KeyError, AssertionError, TypeError, IndexError):
                entry["status"] = 400
                log(entry)
                return self.error(400, "response_format.json_schema is malformed")
        m = re.search(r"\[\[answer:([^\]]+)\]\]", text)
        answer = m.group(1) if m else ("Present" if "positive" in text.lower() else "Absent")
        style = (re.search(r"\[\[style:(\w+)\]\]", text) or [None, None])[1]
        last_turn = "[[turn1]]" not in last
        if style == "emptychoices":
            entry["status"] = 200
            log(entry)
            return self.send_json(200, {"id": "x", "object": "chat.completion", "choices": []})
        if not last_turn:
            content = "Initial answer: %s. Critique: the report is explicit." % answer
        elif style == "fenced":
            content = "```json\n{\"%s\": \"%s\"}\n```" % (answer_key, answer)
        elif style == "prose":
            content = "After review, my answer is {\"%s\": \"%s\"} as shown." % (answer_key, answer.lower())
        elif style == "yes":
            content = "Yes." if answer == "Present" else "No."
        elif style == "bool":
            content = "{\"%s\": %s}" % (answer_key, "true" if answer == "Present" else "false")
        elif style == "misspelled":
            content = "{\"%s\": \"%s\"}" % (answer_key, answer[:-2] + answer[-1])
        elif style == "malformed":
            content = "Sure! {\"%s\": %s" % (answer_key, answer)
        elif style == "bare":
            content = answer
        elif style == "draftfinal":
            other = "Absent" if answer != "Absent" else "Present"
            content = "Draft: {\"%s\": \"%s\"}\n%sOn reflection the final answer is {\"%s\": \"%s\"}" % (
                answer_key, other, filler(text), answer_key, answer)
        elif rf is not None:
            obj = {k: "reasoning for %s" % k for k in reasoning}
            obj[answer_key] = answer
            content = json.dumps(obj)
        elif messages and messages[-1].get("role") == "assistant":
            # A prefill (RadPrompter's `<json>{"Var" : "`): continue it.
            content = answer + "\"}"
            if "</json>" not in (req.get("stop") or []):
                content += "</json>"
        else:
            content = "The report was read. %s<answer>{\"%s\": \"%s\"}" % (filler(text), answer_key, answer)
            if "</answer>" not in (req.get("stop") or []):
                content += "</answer>"
        finish = "stop"
        limit = req.get("max_tokens")
        if isinstance(limit, int) and words(content) > limit:
            content = cut_words(content, limit)
            finish = "length"
        entry["status"] = 200
        entry["finish_reason"] = finish
        log(entry)
        prompt_tokens = sum(words(m.get("content", "")) for m in messages)
        with lock:
            state["answers"] += 1
            dying = args.die_after and state["answers"] >= args.die_after
        self.send_json(200, {
            "id": "chatcmpl-%d" % state["requests"], "object": "chat.completion", "created": int(time.time()),
            "model": args.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": words(content),
                      "total_tokens": prompt_tokens + words(content)}})
        if dying:
            # The answer is out (in the kernel's buffer); the process dies with its sockets.
            self.wfile.flush()
            os._exit(0)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that times out or is killed closes its socket mid-answer: expected here.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


server = Server(("127.0.0.1", 0), Handler)
print("PORT %d" % server.server_address[1], flush=True)
timer = threading.Timer(args.lifetime, server.shutdown)
timer.daemon = True
timer.start()
server.serve_forever(poll_interval=0.05)
