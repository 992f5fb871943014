#!/usr/bin/env bash
# Per-op overhead, Swift -> C -> libtorch against PyTorch's Python, same machine, one run.
# Usage: scripts/bench/ops.sh   (builds cxr in release first)
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build >/dev/null
py=.deps/venv/bin/python
ours=$(.build/release/cxr bench ops --iterations 200000 --rounds 5 --threads 1)
theirs=$($py - <<'PY'
import time, torch, json
torch.set_num_threads(1)
a, b = torch.rand(8), torch.rand(8)
for _ in range(10000): a + b
best = float("inf"); n = 200000
for _ in range(5):
    t0 = time.perf_counter_ns()
    for _ in range(n): a + b
    best = min(best, (time.perf_counter_ns() - t0) / n)
print(json.dumps({"bench": "ops", "impl": "pytorch", "ns_per_op": round(best, 1), "torch": torch.__version__}))
PY
)
echo "$ours"; echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"add(8) per op: cxr {o['ns_per_op']:.0f} ns, PyTorch eager {t['ns_per_op']:.0f} ns, ratio cxr/PyTorch = {o['ns_per_op']/t['ns_per_op']:.2f}")
PY
