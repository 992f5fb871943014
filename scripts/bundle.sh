#!/usr/bin/env bash
# Builds dist/cxr-bundle: what a GPU machine without Swift needs to build the shim, check and
# benchmark cxr (scripts/gpu-check.sh there). Called by `make bundle`.
#
#   cxr.xz             release cxr (scripts/build/release.sh: Swift runtime and Foundation linked in),
#                      libjpeg/libpng/zlib from their static archives, rpath $ORIGIN, stripped,
#                      xz-compressed (81 MB -> 20 MB; ICU's data is most of it). gpu-check.sh
#                      unpacks it to cxr beside libcxt.so. `cxr label` is in it: its HTTP client is
#                      AsyncHTTPClient on SwiftNIO (BoringSSL compiled in), no libcurl.
#   CShims/            the shim's sources and shim.mk, which builds libcxt.so beside cxr with g++
#                      against a TORCH_DIR. DICOM shim sources travel too, but are not built there
#                      (no GDCM on the GPU machine: cxr trains on JPEGs without it).
#   cuda-include/      CUDA runtime/crt/nv headers (from `make cuda-check`): a pip-installed CUDA
#                      PyTorch may lack crt/ and nv/, which c10's CUDA headers include.
#   scripts/           gpu-check.sh and bench/gpu_*.py;  configs/ when the project has one.
#   pylib/             timm and lion-pytorch sources, a fallback for the reference scripts.
# Checks: the bundle fits in 64 MiB; ldd of cxr shows only libcxt.so and glibc/libstdc++/libgcc;
# cxr runs here (`cxr info`) with a libcxt.so built by the bundle's own shim.mk beside it.
# Against the CUDA wheel (after make test-cuda-build), as on the GPU machine:
#   CXR_SHIM_DIR=$PWD/.build-cuda/shim BUNDLE_TORCH_DIR=$PWD/.deps/cuda-venv/lib/python3.11/site-packages/torch make bundle
# links cxr against that CUDA libcxt.so and builds the self-check's shim against that libtorch
# (BUNDLE_TORCH_DIR, default TORCH_DIR, else the pinned CPU wheel), which must then say CUDA.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/dist/cxr-bundle"
limit=$((64 * 1024 * 1024))
fail() { echo "bundle: FAILED: $*" >&2; exit 1; }

# zlib from its static archive even where a package names `-lz` (Package.swift, bundleStaticLibs).
mkdir -p "$root/.build-bundle/static-libs"
zlib_a=$(gcc -print-file-name=libz.a)
[ -f "$zlib_a" ] || fail "no libz.a (apt-get install zlib1g-dev)"
ln -sf "$zlib_a" "$root/.build-bundle/static-libs/libz.a"
echo "bundle: scripts/build/release.sh (static Swift runtime; scratch .build-bundle)"
CXR_BUNDLE=1 scripts/build/release.sh --scratch-path "$root/.build-bundle" --product cxr \
  || fail "swift build of the bundle's cxr"
bin="$root/.build-bundle/release/cxr"

rm -rf "$out"
mkdir -p "$out/CShims/include" "$out/CShims/src" "$out/scripts/bench"
strip -o "$out/cxr" "$bin"
cp CShims/include/*.h "$out/CShims/include/"
cp CShims/src/* "$out/CShims/src/"
cp scripts/bundle/shim.mk "$out/CShims/shim.mk"
cp scripts/gpu-check.sh "$out/scripts/"
cp scripts/bench/gpu_*.py "$out/scripts/bench/"
[ -d configs ] && cp -r configs "$out/configs"
if [ -d "$root/.deps/cuda-check/cuda-include" ]; then
  cp -r "$root/.deps/cuda-check/cuda-include" "$out/cuda-include"
else
  echo "bundle: note: no .deps/cuda-check/cuda-include (run make cuda-check): the GPU machine must have CUDA headers"
fi
# timm and lion-pytorch (pure Python) for a GPU machine whose PyTorch lacks them: the reference
# scripts append pylib/ to their path, so the machine's own installs win. (timm needs torchvision.)
site=$(ls -d "$root"/.deps/venv/lib/python3*/site-packages | head -1)
for pkg in timm lion_pytorch; do
  [ -d "$site/$pkg" ] || fail "no $pkg in $site (make setup installs it)"
  mkdir -p "$out/pylib"
  cp -r "$site/$pkg" "$out/pylib/" && find "$out/pylib/$pkg" -name __pycache__ -type d -prune -exec rm -rf {} + \
    || fail "copy $pkg into the bundle"
done
git -C "$root" rev-parse HEAD > "$out/COMMIT" 2>/dev/null || true

# Dynamic dependencies: libcxt.so and the C/C++ runtime only.
deps=$(ldd "$out/cxr" | awk '{print $1}' | sed 's/.*\///')
allowed='^(linux-vdso\.so\.1|libcxt\.so|libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libutil\.so\.1)$'
bad=$(echo "$deps" | grep -v -E "$allowed" || true)
[ -z "$bad" ] || fail "cxr needs shared libraries the GPU machine may lack: $(echo $bad)"
echo "bundle: cxr's dynamic libraries: $(echo $deps)"
# Every rpath entry must be $ORIGIN (lld keeps the one SwiftPM adds and Package.swift's apart:
# "$ORIGIN:$ORIGIN"); a build machine's folder in it would be searched on the GPU machine.
rpath=$(readelf -d "$out/cxr" | sed -n 's/.*R[UN]*PATH.*\[\(.*\)\]/\1/p')
[ -n "$rpath" ] && [ -z "$(tr ':' '\n' <<< "$rpath" | grep -vx '\$ORIGIN')" ] \
  || fail "cxr's rpath is not \$ORIGIN: $(readelf -d "$out/cxr" | grep PATH)"

# It runs here with a CPU shim built by the bundle's own shim.mk beside it (in a scratch copy).
try=$(mktemp -d)
trap 'rm -rf "$try"' EXIT
cp -r "$out/." "$try/"
check_torch="${BUNDLE_TORCH_DIR:-${TORCH_DIR:-$root/.deps/venv/lib/python3.11/site-packages/torch}}"
make -s -C "$try/CShims" -f shim.mk TORCH_DIR="$check_torch" \
  >/dev/null || fail "the bundle's shim.mk did not build libcxt.so against $check_torch"
info=$("$try/cxr" info) || fail "cxr info from the bundle"
echo "$info" | sed 's/^/bundle:   /'
echo "$info" | grep -q '^cxr with libtorch' || fail "unexpected cxr info output"
if [ -e "$check_torch/lib/libtorch_cuda.so" ]; then
  echo "$info" | grep -q '^shim built with CUDA: yes' || fail "the bundle's shim, built against the CUDA libtorch $check_torch, has no CUDA"
fi

# Carried: the binary compressed (gpu-check.sh unpacks it); must fit in 64 MiB with the sources.
xz -T0 -6 -f "$out/cxr"
bytes=$(du -sb "$out" | cut -f1)
printf 'bundle: %s: %.1f MiB of 64 MiB (cxr.xz %.1f MiB)\n' "$out" "$(echo "$bytes / 1048576" | bc -l)" \
  "$(echo "$(stat -c %s "$out/cxr.xz") / 1048576" | bc -l)"
[ "$bytes" -le "$limit" ] || fail "the bundle is $bytes bytes, over 64 MiB"
echo "bundle: ok"
