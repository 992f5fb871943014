"""Reference client for scripts/bench/label.sh: the same requests as `cxr label` (the bench
template's rendered prompt, temperature 0, seed, max_tokens, response_format), sent with N
threads over keep-alive http.client connections. Prints requests, wall seconds and CPU ms per
request (getrusage of this process over the sending window), as one JSON line.
Usage: label_reference_client.py PORT IN_FLIGHT COUNT USER_TURN_FILE
       label_reference_client.py --body USER_TURN_FILE   (prints the first request's body)"""
import http.client, json, resource, sys, threading, time

SYSTEM = "You are an expert radiologist. You read chest X-ray reports and say whether a finding is described in them."


def body(user, i):
    """The request for report i; `user` is the rendered user turn with {{report}} left in."""
    report = "Portable chest radiograph %d. %s pneumothorax. Lines and tubes unchanged." % (i, "Small positive" if i % 4 == 0 else "No")
    return json.dumps({"model": "test-model", "messages": [{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": user.replace("{{report}}", report)}],
                       "temperature": 0, "seed": 42, "max_tokens": 64,
                       "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
                           "type": "object", "properties": {"answer": {"type": "string", "enum": ["Present", "Absent"]}},
                           "required": ["answer"], "additionalProperties": False}}}})


def main():
    if sys.argv[1] == "--body":
        sys.stdout.write(body(open(sys.argv[2]).read(), 0))
        return
    port, n_flight, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    user = open(sys.argv[4]).read()  # a rendered user turn with {{report}} left in
    next_i = [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= count:
                return
            conn.request("POST", "/v1/chat/completions", body(user, i), {"Content-Type": "application/json"})
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


if __name__ == "__main__":
    main()
