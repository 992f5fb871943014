#!/usr/bin/env bash
# Compile-only check of the shim's CUDA code (-DCXT_WITH_CUDA) on a machine with no GPU and no
# CUDA toolkit: proves that what only a GPU machine compiles still compiles.
#
# Once, into .deps/cuda-check (not committed): downloads the CUDA PyTorch wheel of the pinned
# version from PyPI (about 530 MB; deleted after its headers are unzipped), reads from its
# METADATA which CUDA it was built for, downloads NVIDIA's matching header wheels (runtime,
# crt, cccl: a few MB) and unzips only headers (about 70 MB kept). Then compiles (no link)
# CShims/src/cxt.cpp with -DCXT_WITH_CUDA against them, with scripts/bundle/shim.mk's flags.
#
# The CUDA headers it collects (cuda-include/) also travel in the GPU bundle (make bundle):
# a pip-installed CUDA PyTorch ships the CUDA runtime headers but not always crt/ or nv/,
# which c10's CUDA headers include.
# Usage: scripts/cuda-check.sh      (TORCH_VERSION=2.13.0 by default)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.deps/cuda-check"
py="$root/.deps/venv/bin/python"
version="${TORCH_VERSION:-2.13.0}"
fail() { echo "cuda-check: FAILED: $*" >&2; exit 1; }
[ -x "$py" ] || py=python3
mkdir -p "$dir/wheels"
stamp="$dir/.headers-$version"

# pip with PyPI only: the project's pip config points at a local folder holding the +cpu wheel,
# which `torch==X` would otherwise match.
pip_dl() {
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$py" -m pip download -q --no-deps \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --index-url https://pypi.org/simple -d "$dir/wheels" "$@"
}

if [ ! -f "$stamp" ]; then
  free_mb=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
  [ "$free_mb" -ge 1500 ] || fail "needs about 1.5 GB free under $dir for the wheel, has ${free_mb} MB"
  echo "cuda-check: downloading torch==$version (CUDA wheel, ~530 MB) from PyPI"
  pip_dl "torch==$version" || fail "pip download torch==$version (network? disk?)"
  whl=$(ls "$dir"/wheels/torch-"$version"-*.whl 2>/dev/null | grep -v '+cpu' | head -1)
  [ -n "$whl" ] || fail "no CUDA wheel torch-$version-*.whl in $dir/wheels"
  rm -rf "$dir/torch-cuda" "$dir/cuda-include" "$dir/nvidia"
  unzip -q -o "$whl" 'torch/include/*' "torch-$version.dist-info/METADATA" -d "$dir/torch-cuda" \
    || fail "unzip headers from $whl"
  # Which NVIDIA header wheels match this torch: cu13 builds pin cuda-toolkit==X (whose
  # METADATA pins nvidia-cuda-runtime/crt/cccl); cu12 builds pin nvidia-cuda-runtime-cu12 directly.
  meta="$dir/torch-cuda/torch-$version.dist-info/METADATA"
  toolkit=$(sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([0-9.]*\).*/\1/p' "$meta" | head -1)
  reqs=()
  if [ -n "$toolkit" ]; then
    pip_dl "cuda-toolkit==$toolkit" || fail "pip download cuda-toolkit==$toolkit"
    tmeta=$(unzip -p "$dir"/wheels/cuda_toolkit-"$toolkit"*.whl '*/METADATA')
    for p in nvidia-cuda-runtime nvidia-cuda-crt nvidia-cuda-cccl; do
      pin=$(echo "$tmeta" | sed -n "s/^Requires-Dist: $p==\([0-9.*]*\);.*extra == 'all'.*/\1/p" | head -1)
      [ -n "$pin" ] || fail "cuda-toolkit==$toolkit METADATA names no $p"
      reqs+=("$p==$pin")
    done
  else
    pin=$(sed -n 's/^Requires-Dist: nvidia-cuda-runtime-cu12==\([0-9.]*\).*/\1/p' "$meta" | head -1)
    [ -n "$pin" ] || fail "torch-$version METADATA pins neither cuda-toolkit nor nvidia-cuda-runtime-cu12"
    reqs+=("nvidia-cuda-runtime-cu12==$pin")
  fi
  echo "cuda-check: CUDA header wheels: ${reqs[*]}"
  pip_dl "${reqs[@]}" || fail "pip download ${reqs[*]}"
  for w in "$dir"/wheels/nvidia_cuda_*.whl; do
    pattern='nvidia/*/include/*'
    # Of CCCL (thrust, cub, libcu++: 20 MB) the host code needs only nv/target.
    case "$(basename "$w")" in nvidia_cuda_cccl*) pattern='nvidia/*/include/nv/*' ;; esac
    unzip -q -o "$w" "$pattern" -d "$dir" || fail "unzip $w"
  done
  inc=$(dirname "$(dirname "$(ls "$dir"/nvidia/*/include/cuda_runtime_api.h | head -1)")")/include
  mv "$inc" "$dir/cuda-include" && rm -rf "$dir/nvidia"
  rm -f "$whl"   # 530 MB; only its headers are needed
  touch "$stamp"
fi

t="$dir/torch-cuda/torch"
echo "cuda-check: shim.mk syntax-check: CShims/src/cxt.cpp with -DCXT_WITH_CUDA (torch $version headers, CUDA headers from $dir/cuda-include)"
# The flags of the real build (scripts/bundle/shim.mk); the wheel's headers carry no TorchConfig.cmake,
# and PyPI's CUDA wheels use the new C++ ABI.
make --no-print-directory -f "$root/scripts/bundle/shim.mk" syntax-check SRC_DIR="$root/CShims" TORCH_DIR="$t" \
  WITH_CUDA=1 TORCH_ABI=1 CUDA_INCLUDES="-isystem $dir/cuda-include" \
  || fail "the CUDA code of CShims/src/cxt.cpp does not compile"
echo "cuda-check: ok (CUDA code compiles against torch $version + CUDA headers; not linked, not run)"
