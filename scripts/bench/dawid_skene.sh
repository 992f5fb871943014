#!/usr/bin/env bash
# Dawid-Skene over 7 labellers x 227,827 studies x 2 findings: cxr (release build) against the same
# EM in numpy, in one run. Usage: scripts/bench/dawid_skene.sh [--items N] [--repeats R]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${CXR_PYTHON:-$ROOT/.deps/venv/bin/python}"
[ -x "$PY" ] || { echo "no Python with numpy at $PY: run make setup" >&2; exit 1; }
[ -f CShims/build/libcxt.so ] || make shim
scripts/build/release.sh --product cxr >&2
"$PY" scripts/bench/dawid_skene.py --cxr "$ROOT/.build/release/cxr" "$@"
