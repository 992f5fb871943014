#!/usr/bin/env bash
# One run, both sides, both launched by torchrun: data-parallel training epochs on the CPU,
# cxr (`cxr bench epochs`: c10d Gloo, DDP's Reducer) against PyTorch DDP
# (scripts/bench/train_reference.py under torchrun: Gloo, bucket_cap_mb 25), same model, batch per
# process, augmentations, Lion and EMA; each rank takes every world-th batch of the epoch. Also
# one process of each, for the scaling. Prints steady epoch seconds (median after the first, best
# of ROUNDS alternating rounds), the step-time ratio cxr/pytorch at 2 processes and the images/s
# per process at 1 and 2 processes.
# Usage: scripts/bench/ddp-train.sh [--model convnext_atto] [--size 64] [--images 256] [--batch 32] [--epochs 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
ARGS=(--model convnext_atto --size 64 --images 256 --batch 32 --epochs 3 --threads 1 "$@")
PY=${CXR_PYTHON:-.deps/venv/bin/python}
TORCHRUN=$(dirname "$PY")/torchrun
make -s shim
scripts/build/release.sh --product cxr >/dev/null 2>&1
BIN=$(scripts/build/release.sh --show-bin-path)/cxr
RESULTS=()
for r in $(seq "${ROUNDS:-2}"); do
  for n in 1 2; do
    RESULTS+=("$(OMP_NUM_THREADS=1 "$TORCHRUN" --nproc-per-node $n --master-port $((29800 + r * 4 + n)) --no-python "$BIN" bench epochs "${ARGS[@]}" 2>/dev/null)")
    RESULTS+=("$(OMP_NUM_THREADS=1 "$TORCHRUN" --nproc-per-node $n --master-port $((29900 + r * 4 + n)) scripts/bench/train_reference.py "${ARGS[@]}" 2>/dev/null)")
  done
done
"$PY" - "${RESULTS[@]}" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:] if a.strip()]
o = runs[0]
print(f"model {o['model']} {o['size']}px, {o['images']} images/epoch, batch {o['batch']} per process, 1 thread per process")
best = {}
for r in runs:
    k = (r['side'], r.get('world', 1))
    best[k] = min(best.get(k, float('inf')), statistics.median(r['epoch_seconds'][1:] or r['epoch_seconds']))
for (side, world), s in sorted(best.items()):
    per = o['images'] // o['batch'] // world * world * o['batch'] / s / world
    print(f"  {side:8s} {world} process(es): steady epoch {s:.3f} s, {per:.1f} images/s per process")
c, p = best[('cxr', 2)], best[('pytorch', 2)]
print(f"  2 processes: step time ratio cxr/pytorch {c / p:.2f}")
for side in ('cxr', 'pytorch'):
    print(f"  {side}: scaling 1 -> 2 processes: {best[(side, 1)] / best[(side, 2)] * 1:.2f}x the images/s of one process")
PYEOF
