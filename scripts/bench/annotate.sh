#!/usr/bin/env bash
# Saved-answer latency of `cxr annotate serve` on loopback: 20 simulated annotators (one session
# and one keep-alive connection each, scripts/bench/annotate_load.py) saving answers as fast as
# they can for 30 s; then the same on a project that already holds 100,000 answers. Every
# answer is one POST = one SQLite transaction (WAL, synchronous=FULL) with its audit row.
# Usage: scripts/bench/annotate.sh [seconds]   (default 30; bounded: each phase is killed after seconds + 60)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
CXR="${CXR:-$ROOT/.build/release/cxr}"
SECS="${1:-30}"
[ -x "$CXR" ] || "$ROOT/scripts/build/release.sh" --product cxr >/dev/null
WORK="$(mktemp -d)"
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
export CXR_ANNOTATE_PASSWORD="bench-password-1"
NAMES=$(seq -f "a%02g" 1 20 | paste -sd, -)

phase() {  # phase NAME REPORTS PREFILL
  local name=$1 reports=$2 prefill=$3 db="$WORK/$1.db"
  "$PY" -c "
import csv, sys
w = csv.writer(open('$WORK/$name.csv', 'w', newline=''))
w.writerow(['id', 'text'])
for i in range($reports):
    w.writerow(['r%06d' % i, 'Portable chest radiograph %d. %s pneumothorax. Old rib fracture. Lines unchanged.' % (i, 'Small' if i % 4 == 0 else 'No')])
"
  "$CXR" annotate init "$db" --reports "$WORK/$name.csv" --findings Pneumothorax,Fracture --sample "$reports" \
    --seed 1 --annotators "$NAMES" > /dev/null
  for a in ${NAMES//,/ }; do "$CXR" annotate user add "$a" --role annotator --project "$db" > /dev/null; done
  if [ "$prefill" -gt 0 ]; then
    "$PY" -c "
import sqlite3
con = sqlite3.connect('$db'); con.execute('PRAGMA journal_mode=WAL')
rows = con.execute('SELECT a.id, f.name FROM assignment a, finding f ORDER BY a.id, f.position LIMIT $prefill').fetchall()
vals = ['present', 'absent', 'uncertain']
with con:
    con.executemany('INSERT INTO answer(assignment_id, finding, value, updated_at) VALUES (?, ?, ?, ?)',
                    [(a, f, vals[i % 3], '2026-12-01T00:00:00.000Z') for i, (a, f) in enumerate(rows)])
    con.executemany('INSERT INTO audit(at, user, action, target, old_value, new_value) VALUES (?, ?, ?, ?, NULL, ?)',
                    [('2026-12-01T00:00:00.000Z', 'bench', 'answer', 'item %d %s' % (a, f), vals[i % 3]) for i, (a, f) in enumerate(rows)])
print(con.execute('SELECT COUNT(*) FROM answer').fetchone()[0], 'answers stored before the run')
con.close()
"
  fi
  # info: one line per request with the server's own handling time (no report text).
  "$CXR" annotate serve "$db" --port 0 --log-level info 2> "$WORK/$name.log" &
  SERVER_PID=$!
  local port=""
  for _ in $(seq 300); do
    port=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORK/$name.log" | head -1)
    [ -n "$port" ] && break; sleep 0.1
  done
  [ -n "$port" ] || { cat "$WORK/$name.log"; exit 1; }
  printf '%s: ' "$name"
  timeout $((SECS + 60)) "$PY" "$ROOT/scripts/bench/annotate_load.py" "$port" "$db" "$CXR_ANNOTATE_PASSWORD" "$SECS" 20
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
  "$PY" -c "
import re
ms = sorted(float(m.group(1)) for m in re.finditer(r'POST /item/[0-9]+/answer 200 ([0-9.]+)ms', open('$WORK/$name.log').read()))
q = lambda p: ms[min(len(ms) - 1, int(p * (len(ms) - 1)))]
print('  server-side handling (from its log): n=%d p50=%.2f ms p99=%.2f ms max=%.2f ms' % (len(ms), q(0.5), q(0.99), ms[-1]))
"
  "$PY" -c "import sqlite3; c = sqlite3.connect('$db'); print('  integrity_check:', c.execute('PRAGMA integrity_check').fetchone()[0], '| answers now stored:', c.execute('SELECT COUNT(*) FROM answer').fetchone()[0])"
}

phase fresh 400 0
phase stored-100k 25000 100000
