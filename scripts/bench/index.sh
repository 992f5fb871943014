#!/usr/bin/env bash
# Index build for MIMIC-sized metadata (377,110 rows) and labels (227,827 rows):
# cxr (release) against a Python-stdlib reference doing the same steps, one run, best of 3 each.
# Usage: scripts/bench/index.sh [WORKDIR]   (generated files are cached in WORKDIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-${TMPDIR:-/tmp}/cxr-bench-index}
scripts/build/release.sh --product cxr >/dev/null
python3 scripts/bench/index.py .build/release/cxr "$work" 3
