#!/usr/bin/env bash
# CANDID-PTX-sized evaluation, ours (release build) against scikit-learn in a Python loop, in one run.
# Usage: scripts/bench/evaluate.sh [--rounds 1000] [--sk-rounds 10] ...   (see scripts/bench/evaluate.py)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
[ -x "$PY" ] || { echo "no Python with scikit-learn at $PY: run make setup" >&2; exit 1; }
[ -f CShims/build/libcxt.so ] || make shim
scripts/build/release.sh --product cxr >&2
"$PY" scripts/bench/evaluate.py --cxr "$ROOT/.build/release/cxr" "$@"
