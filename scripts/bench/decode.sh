#!/usr/bin/env bash
# Decode + preprocess benchmark, one run, side by side:
#   floor   libjpeg-turbo scaled decode alone (cxr bench decode)
#   cxr     read + decode (DCT-scaled) + Resize/SpatialPad/HistogramNormalize/ScaleIntensityRange
#   MONAI   the study's pipeline: LoadImage, Resize(longest 512), SpatialPad(512),
#           HistogramNormalize, ScaleIntensityRange(0, 255, -1, 1)
#   cache   reading a preprocessed image from the memory-mapped cache
# All single-threaded (images/s per core) on the same 2544x3056 8-bit JPEGs (quality 95).
# The two sides alternate for PASSES passes (so both see the same machine load), each pass
# timing every image ROUNDS times in process CPU time (per-core cost; wall time on a shared
# machine measures the neighbours); per image the fastest over everything is kept.
# NOISE is the std of the sensor noise added to the synthetic images (grey levels): it sets
# the compressed size, which sets how much of the decode is entropy decoding (2.5 gives
# ~1.9 MB files like the real MIMIC-CXR-JPG file the issue quotes; 3.5 gives ~2.3 MB).
# Usage: scripts/bench/decode.sh [N_FILES] [PASSES] [ROUNDS] [NOISE]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N=${1:-4}
PASSES=${2:-3}
ROUNDS=${3:-2}
NOISE=${4:-2.5}
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
CXR="${CXR_BIN:-$ROOT/.build/release/cxr}"
WORK="${TMPDIR:-/tmp}/cxr-bench-decode-n$NOISE"
mkdir -p "$WORK/img"
if [ -z "${CXR_BIN:-}" ]; then "$ROOT/scripts/build/release.sh" --product cxr >/dev/null; fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
"$PY" "$ROOT/scripts/bench/decode_monai.py" make "$WORK/img" "$N" "$NOISE"
FILES=$(ls "$WORK"/img/*.jpg | head -n "$N")
rm -rf "$WORK/dump" "$WORK"/*.jsonl
"$CXR" bench decode $FILES --size 512 --equalize --rounds 1 --dump "$WORK/dump" > /dev/null  # warm-up + outputs
for pass in $(seq "$PASSES"); do
  "$CXR" bench decode $FILES --size 512 --equalize --rounds "$ROUNDS" >> "$WORK/cxr.jsonl"
  "$PY" "$ROOT/scripts/bench/decode_monai.py" time "$ROUNDS" $FILES >> "$WORK/monai.jsonl" 2>/dev/null
done
"$PY" "$ROOT/scripts/bench/decode_monai.py" report "$WORK" $FILES
