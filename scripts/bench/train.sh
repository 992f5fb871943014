#!/usr/bin/env bash
# One run, both sides: epochs of the training loop on CPU, ours (`cxr bench-train`, release
# build) against the equivalent PyTorch eager loop (scripts/bench/train_reference.py: same
# model, batch, augmentations, Lion, EMA). Prints per-epoch times, the ratio ours/PyTorch
# (median epoch), and resident memory per epoch (it should not grow).
# Usage: scripts/bench/train.sh [--model small-cnn] [--size 64] [--images 512] [--batch 32] [--epochs 3] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
ARGS=("$@")
PY=${CXR_PYTHON:-.deps/venv/bin/python}
make -s shim
swift build -c release --product cxr >/dev/null
BIN=$(swift build -c release --show-bin-path)/cxr
ours=$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$BIN" bench-train "${ARGS[@]}")
ref=$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" scripts/bench/train_reference.py "${ARGS[@]}")
"$PY" - "$ours" "$ref" <<'PYEOF'
import json, statistics, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"model {o['model']} {o['size']}px, {o['images']} images/epoch, batch {o['batch']}, threads {o['threads']}/{r['threads']}")
for side in (o, r):
    print(f"  {side['side']:8s} epoch s: " + ", ".join(f"{t:.3f}" for t in side['epoch_seconds'])
          + " | rss MiB: " + ", ".join(f"{x:.0f}" for x in side['rss_mib'])
          + " | peak MiB: " + ", ".join(f"{x:.0f}" for x in side['peak_rss_mib']))
mo, mr = statistics.median(o['epoch_seconds']), statistics.median(r['epoch_seconds'])
print(f"  median epoch: cxr {mo:.3f} s, pytorch {mr:.3f} s, ratio cxr/pytorch {mo / mr:.2f}")
print(f"  images/s: cxr {o['images'] / mo:.0f}, pytorch {r['images'] / mr:.0f}")
PYEOF
