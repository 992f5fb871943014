#!/usr/bin/env bash
# make test-cuda-build: the CUDA build of the pinned PyTorch, proven on a machine without a GPU.
# Not part of .ci/run: it downloads about 3.5 GB once (4.7 GB installed).
#
# Once, into .deps/cuda-venv (not the default .deps/venv, which keeps the +cpu wheel): a venv
# with torch==2.13.0 from PyPI, whose Linux x86-64 wheel is the CUDA one (cu130), with the
# NVIDIA libraries it depends on (cuDNN, cuBLAS, NCCL, ...: its rpath finds them beside it), and
# the CUDA headers c10's CUDA headers include (cuda-toolkit's crt and cccl extras, headers only).
# Then scripts/test-libtorch.sh: libcxt.so against that libtorch (torch_cuda linked, ldd -r
# clean), cxr and the tests against that shim (--scratch-path .build-cuda), `cxr info` says
# "CUDA build, no device", device: cuda is an error naming the key, device: auto falls back to
# the CPU with one line, and the whole test suite passes on the CPU.
#   scripts/test-cuda-build.sh        (TORCH_VERSION=2.13.0; SKIP_TESTS=1, FILTER=... as test-libtorch.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${TORCH_VERSION:-2.13.0}"
venv="$root/.deps/cuda-venv"
stamp="$venv/.torch-$version"
fail() { echo "test-cuda-build: FAILED: $*" >&2; exit 1; }

# pip with PyPI only: the machine's pip config may point at a folder holding the +cpu wheel,
# which `torch==X` would otherwise match (as scripts/cuda-check.sh does).
pypi() { env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$venv/bin/python" -m pip install -q \
           --disable-pip-version-check --only-binary=:all: --index-url https://pypi.org/simple "$@"; }

if [ ! -f "$stamp" ]; then
  mkdir -p "$root/.deps"
  free_mb=$(df -Pm "$root/.deps" | awk 'NR==2 {print $4}')
  [ "$free_mb" -ge 9000 ] || fail "needs about 9 GB free under $root/.deps (downloads and the 4.7 GB install), has ${free_mb} MB"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || fail "python3 -m venv $venv (apt-get install python3-venv)"
  echo "test-cuda-build: installing torch==$version (the CUDA wheel) and its NVIDIA libraries from PyPI into $venv (~3.5 GB)"
  pypi "torch==$version" || fail "pip install torch==$version from PyPI (network? disk?)"
  # c10's CUDA headers include crt/ and nv/, which the runtime wheels lack: the toolkit's crt and
  # cccl extras, at the toolkit version torch pins (cu13 builds pin cuda-toolkit; cu12 builds
  # pin nvidia-cuda-runtime-cu12 directly and ship those headers).
  toolkit=$(sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([0-9.]*\).*/\1/p' "$venv"/lib/python3*/site-packages/torch-"$version".dist-info/METADATA | head -1)
  if [ -n "$toolkit" ]; then
    pypi "cuda-toolkit[crt,cccl]==$toolkit" || fail "pip install cuda-toolkit[crt,cccl]==$toolkit"
  fi
  touch "$stamp"
fi

tdir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) \
  || fail "torch does not import from $venv (rm -rf $venv and run again)"
read -r tver tcuda < <("$venv/bin/python" -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>/dev/null)
[ "$tcuda" != None ] || fail "$venv has torch $tver, a build without CUDA (rm -rf $venv and run again)"
[ -e "$tdir/lib/libtorch_cuda.so" ] || fail "no libtorch_cuda.so in $tdir/lib"
echo "test-cuda-build: torch $tver (CUDA $tcuda) at $tdir"
exec bash "$root/scripts/test-libtorch.sh" cuda "$tdir" "CUDA build, no device"
