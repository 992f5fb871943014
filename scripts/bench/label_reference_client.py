"""Reference client for scripts/bench/label.sh: the same requests as `cxr label` (the bench
template's rendered prompt, temperature 0, seed, max_tokens, response_format), sent with N
threads over keep-alive http.client connections. Prints requests, wall seconds and CPU ms per
request (getrusage of this process over the sending window), as one JSON line."""
import http.client, json, resource, sys, threading, time

port, n_flight, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
system = "You are an expert radiologist. You read chest X-ray reports and say whether a finding is described in them."
user = open(sys.argv[4]).read()  # a rendered user turn with {{report}} left in
next_i = 0
lock = threading.Lock()


def worker():
    global next_i
    conn = http.client.HTTPConnection("127.0.0.1", port)
    while True:
        with lock:
            i = next_i
            next_i += 1
        if i >= count:
            return
        report = "Portable chest radiograph %d. %s pneumothorax. Lines and tubes unchanged." % (i, "Small positive" if i % 4 == 0 else "No")
        body = json.dumps({"model": "test-model", "messages": [{"role": "system", "content": system},
                           {"role": "user", "content": user.replace("{{report}}", report)}],
                           "temperature": 0, "seed": 42, "max_tokens": 64,
                           "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
                               "type": "object", "properties": {"answer": {"type": "string", "enum": ["Present", "Absent"]}},
                               "required": ["answer"], "additionalProperties": False}}}})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
        json.loads(reply["choices"][0]["message"]["content"])


r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.time()
threads = [threading.Thread(target=worker) for _ in range(n_flight)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.time() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"requests": count, "wall_s": round(wall, 3), "cpu_ms_per_request": round(cpu * 1000 / count, 3)}))
