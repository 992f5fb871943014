#!/usr/bin/env bash
# Builds and tests cxr against another libtorch than the pinned CPU wheel, leaving the default
# build (CShims/build, .build) as it is. Called by scripts/test-cuda-build.sh (the CUDA wheel,
# make test-cuda-build) and scripts/test-debian-torch.sh (Debian's libtorch-dev, make
# test-debian-torch); not part of .ci/run.
#
#   scripts/test-libtorch.sh NAME TORCH_DIR "KIND"
#     NAME       the build's name: scratch path .build-NAME, its libcxt.so in .build-NAME/shim
#     TORCH_DIR  the libtorch (a wheel's torch folder, or /usr for a distribution's package)
#     KIND       what `cxr info` must say of it: "CPU-only build" or "CUDA build, no device"
#
# Steps, each stopping the script with one line saying what failed:
#   1. libcxt.so with scripts/bundle/shim.mk; `ldd -r` finds every library and symbol; with a CUDA
#      libtorch, libtorch_cuda.so and libc10_cuda.so are NEEDED (linked with --no-as-needed).
#   2. cxr and the tests: CXR_SHIM_DIR=.build-NAME/shim swift build --build-tests --scratch-path
#      .build-NAME; the binary loads that libcxt.so.
#   3. cxr info names the libtorch (its file under TORCH_DIR) and KIND; `device: cuda` is the
#      config error naming the key, `device: auto` runs on the CPU (with one line, on a CUDA build).
#   4. The whole test suite (FILTER=... runs only some), log in .build-NAME/test.log.
# Environment: SKIP_TESTS=1 stops after step 3; FILTER passes --filter to swift test; SCRATCH=DIR
# builds in another scratch path (e.g. another libtorch's: the Swift objects do not depend on the
# libtorch, only the link does, and SwiftPM redoes the link for the new CXR_SHIM_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ $# -eq 3 ] || { echo "usage: scripts/test-libtorch.sh NAME TORCH_DIR KIND" >&2; exit 2; }
name=$1; tdir=${2%/}; kind=$3
scratch="${SCRATCH:-$root/.build-$name}"
own="$root/.build-$name"      # the shim, the logs
shimdir="$own/shim"
mkdir -p "$scratch" "$own"
say() { echo "test-libtorch[$name]: $*"; }
fail() { echo "test-libtorch[$name]: FAILED: $*" >&2; exit 1; }
t0=$SECONDS

# ---- 1. the shim --------------------------------------------------------------------------------
say "libcxt.so against $tdir -> $shimdir"
make --no-print-directory -f scripts/bundle/shim.mk SRC_DIR="$root/CShims" TORCH_DIR="$tdir" OUT="$shimdir/libcxt.so" \
  || fail "libcxt.so did not build against $tdir"
unresolved=$(ldd -r "$shimdir/libcxt.so" 2>&1 | grep -E 'undefined symbol|not found' || true)
[ -z "$unresolved" ] || fail "ldd -r $shimdir/libcxt.so: $(echo "$unresolved" | head -5)"
needed=$(readelf -d "$shimdir/libcxt.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case "$kind" in
  CUDA*) for lib in libtorch_cuda.so libc10_cuda.so; do
           echo " $needed" | grep -q " $lib " || fail "libcxt.so does not need $lib (NEEDED: $needed): CUDA would not register"
         done ;;
  *)     if echo " $needed" | grep -q "cuda"; then fail "a CPU-only libtorch, yet libcxt.so needs: $needed"; fi ;;
esac
say "libcxt.so ok: ldd -r resolves every symbol; NEEDED: $needed"

# ---- 2. cxr and its tests against it ---------------------------------------------------------------
say "swift build --build-tests --scratch-path ${scratch#$root/} (CXR_SHIM_DIR=${shimdir#$root/})"
b0=$SECONDS
CXR_SHIM_DIR="$shimdir" nice -n 10 swift build --build-tests --scratch-path "$scratch" >"$own/build.log" 2>&1 \
  || { tail -30 "$own/build.log" >&2; fail "swift build (log: $own/build.log)"; }
say "built in $((SECONDS - b0)) s"
cxr="$scratch/debug/cxr"
loaded=$(ldd "$cxr" | awk '$1 == "libcxt.so" {print $3}')
[ "$loaded" = "$shimdir/libcxt.so" ] || fail "cxr loads libcxt.so from '$loaded', not $shimdir"

# ---- 3. what cxr says of its libtorch and devices -----------------------------------------------------
info=$("$cxr" info) || fail "cxr info"
echo "$info" | sed "s/^/test-libtorch[$name]:   /"
first=$(echo "$info" | head -1)
[[ "$first" == "cxr with libtorch "*", $kind" ]] || fail "cxr info says '$first', expected '..., $kind'"
lib=$(echo "$info" | sed -n 's/^libtorch: //p')
real_tdir=$(readlink -f "$tdir")
[[ "$(readlink -f "$lib")" == "$real_tdir"/* ]] || fail "cxr runs on $lib, not on the libtorch under $tdir"
cfg="$own/device-check.yaml"
printf 'name: device\nout: %s/device-out\nfindings: [Pneumothorax]\ntrain_data:\n  root: %s/no-such-data\nschemas:\n  - name: truth\n    file: %s/no-such.csv\n' \
  "$own" "$own" "$own" > "$cfg"
if out=$("$cxr" config resolve "$cfg" --check --set device=cuda 2>&1); then fail "device: cuda was accepted on a machine without a GPU"; fi
echo "$out" | grep -q -- "--set device=cuda: device: cuda cannot be used: " || fail "device: cuda: unexpected error: $out"
say "device: cuda -> $(echo "$out" | grep -- 'cannot be used' | head -1)"
out=$("$cxr" config resolve "$cfg" --check --set device=auto 2>&1 || true)
notes=$(echo "$out" | grep -c '^cxr: device auto: ' || true)
case "$kind" in
  CUDA*) [ "$notes" = 1 ] || fail "device: auto on a CUDA build without a GPU: expected one line saying so, got: $out" ;;
  *)     [ "$notes" = 0 ] || fail "device: auto on a CPU-only build printed a fallback line: $out" ;;
esac
echo "$out" | grep -q "no-such" || fail "device: auto did not get as far as the data check: $out"
say "device: auto -> the CPU$([ "$notes" = 1 ] && echo ", with: $(echo "$out" | grep '^cxr: device auto: ')")"
[ "${SKIP_TESTS:-0}" = 1 ] && { say "ok (SKIP_TESTS=1: tests not run; $((SECONDS - t0)) s)"; exit 0; }

# ---- 4. the test suite -----------------------------------------------------------------------------
say "swift test --skip-build ${FILTER:+--filter $FILTER }(log: ${own#$root/}/test.log)"
s0=$SECONDS
set +e
CXR_SHIM_DIR="$shimdir" CXR_PYTHON="$root/.deps/venv/bin/python" nice -n 10 swift test --skip-build --scratch-path "$scratch" \
  ${FILTER:+--filter "$FILTER"} >"$own/test.log" 2>&1
status=$?
set -e
summary=$(grep -E "^Test Suite '(All tests|Selected tests)' (passed|failed)" -A1 "$own/test.log" | grep -E 'Executed' | tail -1 | sed 's/^[[:space:]]*//')
failed=$(grep -E "error: .*: failed|: error: -\[|XCTAssert.*failed" "$own/test.log" | head -20 || true)
say "tests: ${summary:-no XCTest summary} ($((SECONDS - s0)) s)"
[ $status -eq 0 ] || { echo "$failed" >&2; fail "swift test exited $status (log: $own/test.log)"; }
say "ok: libtorch $(echo "$first" | sed 's/^cxr with libtorch //') at $tdir ($((SECONDS - t0)) s in all)"
