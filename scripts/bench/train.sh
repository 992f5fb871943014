#!/usr/bin/env bash
# One run, both sides: epochs of the training loop on CPU, ours (`cxr bench epochs`, release
# build) against the equivalent PyTorch eager loop (scripts/bench/train_reference.py: same
# model, batch, augmentations, Lion, EMA). Prints per-epoch times, the ratio ours/PyTorch
# (median epoch after the first, best of ROUNDS alternating rounds, since the machine may be
# shared), and resident memory per epoch (it should not grow).
# Usage: scripts/bench/train.sh [--model small-cnn] [--size 64] [--images 512] [--batch 32] [--epochs 3] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
ARGS=("$@")
PY=${CXR_PYTHON:-.deps/venv/bin/python}
make -s shim
scripts/build/release.sh --product cxr >/dev/null
BIN=$(scripts/build/release.sh --show-bin-path)/cxr
RESULTS=()
for _ in $(seq "${ROUNDS:-2}"); do
  RESULTS+=("$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$BIN" bench epochs "${ARGS[@]}")")
  RESULTS+=("$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" scripts/bench/train_reference.py "${ARGS[@]}")")
done
"$PY" - "${RESULTS[@]}" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
o = runs[0]
print(f"model {o['model']} {o['size']}px, {o['images']} images/epoch, batch {o['batch']}, threads {o['threads']}")
best, bestcpu = {}, {}
for side in runs:
    steady = side['epoch_seconds'][1:] or side['epoch_seconds']
    m = statistics.median(steady)
    best[side['side']] = min(best.get(side['side'], float('inf')), m)
    c = statistics.median(side['epoch_cpu_seconds'][1:] or side['epoch_cpu_seconds'])
    bestcpu[side['side']] = min(bestcpu.get(side['side'], float('inf')), c)
    print(f"  {side['side']:8s} epoch s: " + ", ".join(f"{t:.3f}" for t in side['epoch_seconds'])
          + " | cpu s: " + ", ".join(f"{t:.2f}" for t in side['epoch_cpu_seconds'])
          + " | rss MiB: " + ", ".join(f"{x:.0f}" for x in side['rss_mib'])
          + " | peak MiB: " + ", ".join(f"{x:.0f}" for x in side['peak_rss_mib']))
mo, mr = best['cxr'], best['pytorch']
print(f"  steady epoch (median after the first, best round): cxr {mo:.3f} s, pytorch {mr:.3f} s, ratio cxr/pytorch {mo / mr:.2f}")
print(f"  steady epoch CPU time (user+sys, less sensitive to a shared machine): cxr {bestcpu['cxr']:.2f} s, pytorch {bestcpu['pytorch']:.2f} s, ratio {bestcpu['cxr'] / bestcpu['pytorch']:.2f}")
fast = {k: min(min(r['epoch_seconds'][1:] or r['epoch_seconds']) for r in runs if r['side'] == k) for k in ('cxr', 'pytorch')}
print(f"  fastest steady epoch (closest to an idle machine): cxr {fast['cxr']:.3f} s, pytorch {fast['pytorch']:.3f} s, ratio {fast['cxr'] / fast['pytorch']:.2f}")
print(f"  images/s: cxr {o['images'] / mo:.0f}, pytorch {o['images'] / mr:.0f}")
PYEOF
