#!/usr/bin/env bash
# Throughput of `cxr label` against the loopback test server with a fixed time per answer (DELAY,
# 200 ms by default), for 1..128 requests in flight, side by side with the ideal (in_flight / DELAY:
# perfectly linear scaling), plus the client's own CPU per request (getrusage over the run, in summary.json).
# The reference client (scripts/bench/label_reference_client.py: Python threads + http.client,
# keep-alive) sends the same requests right after, for the CPU-per-request ratio.
# Usage: scripts/bench/label.sh [in-flight values...]   (default: 1 2 4 8 16 32 64 128)
# DELAY=seconds sets the test server's time per answer (default 0.2; 0.001 shows the cost with no idle gap).
# Each point sends N x SECONDS_PER_POINT x 5 requests (at least 60), whatever DELAY is: the same
# count as at 200 ms, so points with other delays compare request for request.
# CXR=path/to/cxr measures another build (e.g. the bundle's static one, with libcxt.so beside it).
# FLOOR=1 also runs, at 1 in flight, scripts/bench/label_floor_client.c (one blocking socket, no
# framework; built with cc) on the same requests: what the kernel and the host charge any client.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
CXR="${CXR:-$ROOT/.build/release/cxr}"
DELAY=${DELAY:-0.2}
SECONDS_PER_POINT=${SECONDS_PER_POINT:-4}
[[ "$DELAY" =~ ^[0-9]*\.?[0-9]+$ ]] && awk "BEGIN { exit !($DELAY > 0) }" \
  || { echo "label.sh: DELAY must be a positive number of seconds (e.g. 0.2), not '$DELAY'" >&2; exit 2; }
LEVELS=("$@"); [ ${#LEVELS[@]} -eq 0 ] && LEVELS=(1 2 4 8 16 32 64 128)
[ -x "$CXR" ] || "$ROOT/scripts/build/release.sh" --product cxr >/dev/null
WORK="$(mktemp -d)"
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
source "$ROOT/scripts/bench/label_common.sh"
label_bench_server
label_bench_template
"$PY" - "$WORK/bench.yaml" "$WORK/user-turn.txt" <<'PYEOF'
import sys, re
text = open(sys.argv[1]).read()
turn = text[text.index("  - |") + 6 : text.index("format: |")]
turn = "\n".join(l[4:] for l in turn.rstrip("\n").split("\n")) + "\n"
fmt = text[text.index("format: |") + 10 : text.index("answer_key:")]
fmt = "\n".join(l[2:] for l in fmt.rstrip("\n").split("\n")) + "\n"
opts = '"Present", "Absent"'
hint = re.search(r"hint: (.*)", text).group(1)
turn = turn.replace("{{format}}", fmt).replace("{{finding}}", "pneumothorax").replace("{{hint}}", hint).replace("{{options}}", opts)
open(sys.argv[2], "w").write(turn)
PYEOF
# The reference client needs the rendered user turn: take it from the first request cxr sends.
echo "in_flight requests wall_s req_per_s ideal_req_per_s ratio_to_ideal p50_s p95_s cxr_cpu_ms_per_req python_cpu_ms_per_req cpu_ratio_cxr/python"
I=0
for N in "${LEVELS[@]}"; do
  I=$((I + 1))
  COUNT=$(( N * SECONDS_PER_POINT * 5 )); [ "$COUNT" -lt 60 ] && COUNT=60  # enough requests for a steady CPU figure
  label_bench_reports "$N" "$COUNT" "$WORK/reports-$N.csv"
  "$CXR" label --reports "$WORK/reports-$N.csv" --prompt "$WORK/bench.yaml" --server "http://127.0.0.1:$PORT" \
    --model test-model --in-flight "$N" --out "$WORK/out-$I" > /dev/null 2> "$WORK/log-$N" \
    || { echo "cxr label failed at $N in flight:" >&2; tail -5 "$WORK/log-$N" >&2; exit 1; }
  REF=$("$PY" "$ROOT/scripts/bench/label_reference_client.py" "$PORT" "$N" "$COUNT" "$WORK/user-turn.txt")
  if [ "${FLOOR:-0}" = 1 ] && [ "$N" = 1 ]; then
    cc -O2 -o "$WORK/floor" "$ROOT/scripts/bench/label_floor_client.c"
    "$PY" "$ROOT/scripts/bench/label_reference_client.py" --body "$WORK/user-turn.txt" > "$WORK/body.json"
    echo "floor client (C, one blocking socket) at 1 in flight: $("$WORK/floor" "$PORT" "$COUNT" "$WORK/body.json") CPU ms/request" >&2
  fi
  "$PY" -c "
import json
s = json.load(open('$WORK/out-$I/summary.json'))['strategies'][0]
ref = json.loads('$REF')
rps = s['requests'] / s['wall_s']
ideal = $N / $DELAY
print($N, s['requests'], s['wall_s'], round(rps, 1), round(ideal, 1), round(rps / ideal, 3),
      s['latency_p50_s'], s['latency_p95_s'], s['cpu_ms_per_request'], ref['cpu_ms_per_request'],
      round(s['cpu_ms_per_request'] / ref['cpu_ms_per_request'], 2))
"
done
