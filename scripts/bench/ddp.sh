#!/usr/bin/env bash
# One run, both sides, both launched by torchrun (2 processes on this machine, Gloo on
# loopback): all-reduce of 1, 25 and 350 MiB float32 buffers (350 MiB: convnext_base's
# gradients) through cxr's C ABI (`cxr bench allreduce`) and through torch.distributed
# (scripts/bench/allreduce_reference.py). Prints the median seconds and the ratio
# pytorch/cxr (>= 1.0: cxr is as fast or faster), best of ROUNDS alternating rounds.
# Usage: scripts/bench/ddp.sh [--sizes 1,25,350] [--rounds 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
ARGS=("$@")
PY=${CXR_PYTHON:-.deps/venv/bin/python}
TORCHRUN=$(dirname "$PY")/torchrun
make -s shim
scripts/build/release.sh --product cxr >/dev/null
BIN=$(scripts/build/release.sh --show-bin-path)/cxr
RESULTS=()
for r in $(seq "${ROUNDS:-2}"); do
  RESULTS+=("$(OMP_NUM_THREADS=1 "$TORCHRUN" --nproc-per-node 2 --master-port $((29600 + r)) --no-python "$BIN" bench allreduce "${ARGS[@]}" 2>/dev/null)")
  RESULTS+=("$(OMP_NUM_THREADS=1 "$TORCHRUN" --nproc-per-node 2 --master-port $((29700 + r)) scripts/bench/allreduce_reference.py "${ARGS[@]}" 2>/dev/null)")
done
"$PY" - "${RESULTS[@]}" <<'PYEOF'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:] if a.strip()]
best = {}
for r in runs:
    for size, s in r["median_seconds"].items():
        best[(r["side"], size)] = min(best.get((r["side"], size), float("inf")), s)
print(f"all-reduce, {runs[0]['world']} processes, Gloo on loopback (median of rounds, best of runs)")
for size in runs[0]["median_seconds"]:
    c, p = best[("cxr", size)], best[("pytorch", size)]
    print(f"  {size:>4} MiB: cxr {c * 1000:8.2f} ms, pytorch {p * 1000:8.2f} ms, ratio pytorch/cxr {p / c:.2f}")
PYEOF
