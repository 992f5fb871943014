#!/usr/bin/env bash
# The c10d soak under AddressSanitizer: libcxt.so rebuilt with -fsanitize=address (into
# .deps/asan-shim, with the flags of scripts/bundle/shim.mk plus ASan), then two ranks of
# `cxr bench collectives` on loopback with libasan preloaded and that shim first on the library
# path: seeded all-reduces, broadcasts, all-gathers and barriers of 1 element to --max-mib MiB in
# five dtypes, every element checked. Why: the shim compiles c10d's headers against Debian's
# Gloo, an older snapshot than the one libtorch was built with (see the top of CShims/src/dist.cpp).
# Usage: scripts/dist-soak.sh [seconds (default 60)] [max MiB (default 8)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}; MAX_MIB=${2:-8}
T=${TORCH_DIR:-$PWD/.deps/venv/lib/python3.11/site-packages/torch}
out=.deps/asan-shim; mkdir -p "$out"
make -s shim
swift build --product cxr >/dev/null
BIN=$(swift build --show-bin-path)/cxr
if [ ! -f "$out/libcxt.so" ] || [ CShims/src/dist.cpp -nt "$out/libcxt.so" ] || [ CShims/src/cxt.cpp -nt "$out/libcxt.so" ]; then
  echo "dist-soak: building libcxt.so with AddressSanitizer"
  g++ -std=c++17 -O1 -g -fsanitize=address -fno-omit-frame-pointer -fPIC -Wall -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=1 \
    -ICShims/include -isystem "$T/include" -isystem "$T/include/torch/csrc/api/include" \
    -DCXT_WITH_DIST -DUSE_DISTRIBUTED -DUSE_C10D_GLOO CShims/src/cxt.cpp CShims/src/dist.cpp -o "$out/libcxt.so" \
    -shared -Wl,--version-script=CShims/src/exports.map -L"$T/lib" -Wl,-rpath,"$T/lib" -ltorch -ltorch_cpu -lc10
fi
ASAN_LIB=$(gcc -print-file-name=libasan.so)
port=$((20000 + RANDOM % 20000))
pids=()
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port LD_LIBRARY_PATH=$out LD_PRELOAD=$ASAN_LIB \
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 timeout $((SECONDS_TO_RUN + 300)) \
    "$BIN" bench collectives --seconds "$SECONDS_TO_RUN" --max-mib "$MAX_MIB" > "$out/rank$r.out" 2> "$out/rank$r.err" &
  pids+=($!)
done
status=0
for i in 0 1; do wait "${pids[$i]}" || { status=$?; echo "dist-soak: rank $i failed ($status):"; tail -30 "$out/rank$i.err"; }; done
[ $status -eq 0 ] && echo "dist-soak: ok under ASan: $(cat "$out/rank0.out")"
exit $status
