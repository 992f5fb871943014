#!/usr/bin/env bash
# User-space instructions per request of `cxr label` at 1 in flight, by layer, counted by
# valgrind's callgrind over the steady state (start-up excluded: counting is switched on once 10
# answers are in, off SECONDS_WINDOW later; requests counted from answers.jsonl in between). Unlike CPU
# time, the count does not move with the host's load, so it shows what a change to the per-request
# path saves. Kernel work (syscalls, the TCP stack) is not counted: see label.sh for CPU time.
# Usage: scripts/bench/label_instructions.sh   (SECONDS_WINDOW=15 DELAY=0.05 CXR=path/to/cxr)
# Needs valgrind (Debian: apt-get install valgrind). Valgrind 3.19 cannot read the DWARF 5 of
# Swift's debug info, so a copy of the binary without it is measured.
# ORDER=file also writes, from the same profile, the functions the requests ran in CXR, hottest
# first, for the linker (scripts/bench/hot_functions.py; names already in the file are kept after
# them): ORDER=scripts/build/hot-functions.order regenerates the release build's code layout
# (scripts/build/release.sh). The last line is the code footprint: lines and pages touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
CXR="${CXR:-$ROOT/.build/release/cxr}"
DELAY=${DELAY:-0.05}
WINDOW=${SECONDS_WINDOW:-15}
command -v valgrind >/dev/null || { echo "label_instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[ -x "$CXR" ] || "$ROOT/scripts/build/release.sh" --product cxr >/dev/null
WORK="$(mktemp -d)"
trap 'kill "${VG_PID:-}" "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
strip --strip-debug -o "$WORK/cxr" "$CXR"
[ -e "$(dirname "$CXR")/libcxt.so" ] && cp "$(dirname "$CXR")/libcxt.so" "$WORK/"
# The same test server, template and reports as label.sh.
source "$ROOT/scripts/bench/label_common.sh"
label_bench_server
label_bench_template
label_bench_reports 1 20000 "$WORK/reports.csv"
valgrind --tool=callgrind --instr-atstart=no --dump-instr=yes --callgrind-out-file="$WORK/cg" "$WORK/cxr" label \
  --reports "$WORK/reports.csv" --prompt "$WORK/bench.yaml" --server "http://127.0.0.1:$PORT" \
  --model test-model --in-flight 1 --out "$WORK/out" > /dev/null 2> "$WORK/log" &
VG_PID=$!
answers() { [ -f "$WORK/out/answers.jsonl" ] && wc -l < "$WORK/out/answers.jsonl" || echo 0; }
for _ in $(seq 600); do [ "$(answers)" -ge 10 ] && break; kill -0 "$VG_PID" 2>/dev/null || { tail -5 "$WORK/log" >&2; exit 1; }; sleep 0.5; done
callgrind_control -i on "$VG_PID" > /dev/null 2>&1
A0=$(answers)
sleep "$WINDOW"
callgrind_control -i off "$VG_PID" > /dev/null 2>&1
A1=$(answers)
callgrind_control -d "$VG_PID" > /dev/null 2>&1
kill "$VG_PID"; wait "$VG_PID" 2>/dev/null || true
[ -z "${ORDER:-}" ] || "$PY" "$ROOT/scripts/bench/hot_functions.py" "$CXR" "$ORDER" "$WORK"/cg.*
# Requests answered while counting; an answer in flight at either edge is counted by half on
# average, so the figure is per request to within a fraction of one request's count.
callgrind_annotate --threshold=100 "$WORK"/cg.* 2>/dev/null | "$PY" -c "
import re, sys, collections
requests = $A1 - $A0
layers = collections.Counter()
for line in sys.stdin:
    m = re.match(r'\s*([\d,]+) \([ \d.]+%\)\s+(\S+):(.*)', line)
    if not m or m.group(2) == 'PROGRAM': continue
    n, where = int(m.group(1).replace(',', '')), m.group(2) + ':' + m.group(3)
    if '\$s5Label' in where or '\$s6Common' in where: k = 'cxr (Label, Common)'
    elif '\$s15AsyncHTTPClient' in where: k = 'AsyncHTTPClient'
    elif re.search(r'\\\$s\d+NIO|\\\$s\d+_NIO|c_nio_', where): k = 'SwiftNIO'
    elif '\$s7Logging' in where: k = 'swift-log'
    elif 'libswift_Concurrency' in where: k = 'Swift concurrency runtime'
    elif re.search(r'Metadata|getCache|conformsTo|Generic|tryCast|dynamicCast|Conformance', where): k = 'Swift runtime: generic metadata, casts'
    elif re.search(r'swift_(retain|release|bridgeObject|isUniquely)|Decrement|Increment', where): k = 'Swift runtime: reference counting'
    elif re.search(r'Access|TLSContext|tls_get_addr', where): k = 'Swift runtime: exclusivity checks'
    elif 'libswiftCore' in where or re.search(r'\\\$s[sS]', where): k = 'Swift standard library'
    elif re.search(r'malloc|free|swift_slowAlloc|swift_allocObject|swift_deallocObject', where): k = 'malloc/free'
    elif re.search(r'libc\.so|ld-linux', where): k = 'libc (memcpy, locks)'
    else: k = 'other'
    layers[k] += n
total = sum(layers.values())
print(f'requests counted: {requests}; user-space instructions per request: {total / requests:,.0f}')
for k, n in layers.most_common():
    print(f'{n / requests:>10,.0f}  {100 * n / total:5.1f} %  {k}')
"
# Its footprint: the distinct code lines and pages the window ran (all requests together; at 1 in
# flight each request finds them cold). The release build packs them (scripts/build/release.sh).
"$PY" "$ROOT/scripts/bench/hot_functions.py" --footprint "$WORK"/cg.*
