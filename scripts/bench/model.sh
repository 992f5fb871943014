#!/usr/bin/env bash
# One ConvNeXt training step (forward, BCE loss, backward) on the CPU: cxr against timm in
# PyTorch eager, same machine, same threads, in one run. Rounds alternate the two sides so
# that load from other processes hits both alike; each side's figure is its best round's median.
# Usage: scripts/bench/model.sh   (env: ARCH=convnext_tiny BATCH=8 SIZE=224 THREADS=2 ROUNDS=3 STEPS=5)
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${ARCH:-convnext_tiny}; batch=${BATCH:-8}; size=${SIZE:-224}; threads=${THREADS:-2}
rounds=${ROUNDS:-3}; steps=${STEPS:-5}; warmup=${WARMUP:-2}; in_chans=3; classes=2
make -s build >/dev/null
py=.deps/venv/bin/python
export OMP_NUM_THREADS=$threads
out=$(mktemp); trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
  .build/release/cxr inspect model --arch "$arch" --classes $classes --in-chans $in_chans --size "$size" \
    --batch "$batch" --time-steps "$steps" --warmup "$warmup" --threads "$threads" | tail -1 | tee -a "$out"
  $py scripts/bench/model_timm.py "$arch" "$batch" "$size" $in_chans $classes "$steps" "$warmup" "$threads" | tee -a "$out"
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    best[r["impl"]] = min(best.get(r["impl"], float("inf")), r["ms_median"])
o, t = best["cxr"], best["pytorch"]
r = rows[0]
print(f"{r['arch']} train step, batch {r['batch']}, {r['size']}x{r['size']}, {r['threads']} threads: "
      f"cxr {o:.0f} ms, PyTorch eager {t:.0f} ms, ratio cxr/PyTorch = {o/t:.3f}")
PY
