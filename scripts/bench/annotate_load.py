"""Load for `cxr annotate serve`: N simulated annotators, each signed in with its own session on
one keep-alive connection, saving answers to its own items as fast as the server answers, for a
fixed time. Prints one JSON line: requests, errors, p50/p99/max latency in ms, answers/s.
Usage: annotate_load.py PORT PROJECT.db PASSWORD SECONDS [N]"""
import http.client, json, re, sqlite3, sys, threading, time, urllib.parse

port, db, password, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
n = int(sys.argv[5]) if len(sys.argv) > 5 else 20
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
findings = [r[0] for r in con.execute("SELECT name FROM finding ORDER BY position")]
names = [r[0] for r in con.execute("SELECT DISTINCT annotator FROM assignment ORDER BY annotator")][:n]
items = {a: [r[0] for r in con.execute("SELECT id FROM assignment WHERE annotator = ? ORDER BY position", (a,))] for a in names}
con.close()

lat, errors, lock = [], [0], threading.Lock()
start_barrier = threading.Barrier(len(names) + 1)

def worker(name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    def req(method, path, body=None, headers=None, cookie=None):
        h = dict(headers or {})
        if cookie: h["Cookie"] = cookie
        if body is not None: h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse(); data = r.read().decode()
        return r, data
    r, page = req("GET", "/login")
    login_cookie = r.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    r, _ = req("POST", "/login", urllib.parse.urlencode({"name": name, "password": password, "csrf": token}), cookie=login_cookie)
    session = [h for h in r.getheaders() if h[0].lower() == "set-cookie" and h[1].startswith("cxr_session=")][0][1].split(";")[0]
    r, page = req("GET", "/items", cookie=session)
    csrf = re.search(r'data-csrf="([0-9a-f]+)"', page).group(1)
    values = ["present", "absent", "uncertain"]
    mine, k, local, errs = items[name], 0, [], 0
    start_barrier.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        item, finding, value = mine[(k // len(findings)) % len(mine)], findings[k % len(findings)], values[k % 3]
        body = urllib.parse.urlencode({"finding": finding, "value": value})
        t = time.perf_counter()
        try:
            r, data = req("POST", f"/item/{item}/answer", body, {"Accept": "application/json", "X-CSRF-Token": csrf}, session)
            ok = r.status == 200 and '"saved":true' in data
        except Exception:
            ok = False
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local.append((time.perf_counter() - t) * 1000)
        errs += 0 if ok else 1
        k += 1
    with lock:
        lat.extend(local); errors[0] += errs

threads = [threading.Thread(target=worker, args=(a,), daemon=True) for a in names]
for t in threads: t.start()
start_barrier.wait()
t0 = time.monotonic()
for t in threads: t.join(seconds + 30)
wall = time.monotonic() - t0
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(p * (len(lat) - 1)))], 2) if lat else None
print(json.dumps({"annotators": len(names), "seconds": round(wall, 1), "requests": len(lat), "errors": errors[0],
                  "answers_per_s": round(len(lat) / wall, 1), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)}))
