#!/usr/bin/env bash
# make test-debian-torch: cxr against Debian 12's own libtorch (apt-get install libtorch-dev:
# 1.13.1, CPU-only, headers in /usr/include, libraries in /usr/lib/x86_64-linux-gnu), the
# libtorch a hospital's Debian machine has without pip. The shim takes per-tensor fallbacks for
# what 1.13 lacks (CShims/src/cxt.cpp, CXT_TORCH_AT_LEAST) and leaves data-parallel training out
# (shim.mk: dist.cpp needs libtorch 2's c10d); `cxr info` says both. Not part of .ci/run.
# Runs scripts/test-libtorch.sh (scratch path .build-debian-torch); SKIP_TESTS=1, FILTER=... as there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tdir="${TORCH_DIR:-/usr}"
[ -f "$tdir/include/torch/csrc/api/include/torch/torch.h" ] \
  || { echo "test-debian-torch: FAILED: no libtorch headers under $tdir: apt-get install libtorch-dev (Debian 12: libtorch 1.13.1)" >&2; exit 1; }
echo "test-debian-torch: $(dpkg-query -W -f='${Package} ${Version}' libtorch-dev 2>/dev/null || echo "libtorch at $tdir")"
exec bash "$root/scripts/test-libtorch.sh" debian-torch "$tdir" "CPU-only build"
