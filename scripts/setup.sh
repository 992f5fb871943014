#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test cxr. Idempotent.
#   apt: libjpeg-turbo, libpng, zlib, GDCM (DICOM) development packages
#   .deps/venv: the pinned CPU libtorch (torch==2.13.0+cpu wheel) and, test-only,
#               the reference implementations (timm, lion-pytorch, scikit-learn,
#               scikit-image, MONAI, pydicom, safetensors, statsmodels, tensorboard).
#   evaluation figures: apt librsvg2-2, fonts-dejavu-core (PDF files), poppler-utils (tests).
#   cxr annotate: apt libsqlite3-dev, chromium, chromium-driver; pip selenium, irrCAC (tests).
# TORCH_DIR=/path/to/torch uses another libtorch for the build (the venv is still
# made, for the parity tests).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.deps"
venv="$deps/venv"
fail() { echo "setup: FAILED: $*" >&2; exit 1; }

apt_pkgs=(libjpeg62-turbo-dev libpng-dev zlib1g-dev libgdcm-dev python3-venv g++ make pkg-config)
# cxr annotate: SQLite for GRDB; Chromium + chromedriver for the real-browser test.
apt_pkgs+=(libsqlite3-dev chromium chromium-driver)
# data-parallel training: Gloo's headers for c10d's ProcessGroupGloo (the wheel lacks them)
apt_pkgs+=(libgloo-dev)
# evaluation figures as PDF (librsvg + cairo, loaded by dlopen; DejaVu Sans is the figures' font);
# poppler-utils: the tests' pdfinfo/pdffonts
apt_pkgs+=(librsvg2-2 fonts-dejavu-core poppler-utils)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || fail "apt-get update (network or permissions?)"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]}"
fi

py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$py" -m venv "$venv" || fail "python3 -m venv $venv (install python3-venv)"
fi
vpy="$venv/bin/python"
pipi() { "$vpy" -m pip install -q --disable-pip-version-check "$@"; }
stamp="$deps/.pip-stamp-5"
if [ ! -f "$stamp" ]; then
  # The +cpu wheel is not on PyPI: a local wheel folder if the machine has one, else PyTorch's index.
  src=(--extra-index-url https://download.pytorch.org/whl/cpu)
  ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && src=(--find-links /opt/wheels)
  echo "setup: installing torch==2.13.0+cpu into $venv"
  pipi "${src[@]}" "torch==2.13.0+cpu" \
    || fail "pip install torch==2.13.0+cpu"
  echo "setup: installing the test-only reference implementations"
  # --no-deps: torchvision/timm/monai would otherwise replace the CPU torch with a CUDA build.
  pipi --no-deps "torchvision==0.28.0" "timm==1.0.31" "lion-pytorch==0.2.5" "monai==1.6.1" \
    || fail "pip install torchvision timm lion-pytorch monai"
  pipi numpy scipy "scikit-learn==1.9.1" "scikit-image==0.26.0" "pydicom==3.0.2" "safetensors==0.8.0" \
       pyyaml huggingface_hub pillow "statsmodels==0.15.0" \
    || fail "pip install numpy scipy scikit-learn scikit-image pydicom safetensors statsmodels"
  # cxr annotate tests: Selenium drives Chromium; irrCAC is Gwet's reference for the q-category AC1.
  pipi "selenium==4.51.0" "irrCAC==0.4.4" \
    || fail "pip install selenium irrCAC"
  touch "$stamp"
fi
# TensorBoard's own reader checks the event files the trainer writes (tests only).
if [ ! -f "$deps/.pip-stamp-tensorboard-1" ]; then
  pipi "tensorboard==2.20.0" || fail "pip install tensorboard"
  touch "$deps/.pip-stamp-tensorboard-1"
fi

tdir="${TORCH_DIR:-$("$vpy" -c 'import torch, os; print(os.path.dirname(torch.__file__))')}"
[ -f "$tdir/include/torch/csrc/api/include/torch/torch.h" ] || fail "no libtorch headers under TORCH_DIR=$tdir"
ver=$(cat "$tdir/version.py" 2>/dev/null | sed -n "s/^__version__ = '\(.*\)'/\1/p")
cuda=no; [ -e "$tdir/lib/libtorch_cuda.so" ] && cuda=yes
abi=$(sed -n 's/.*_GLIBCXX_USE_CXX11_ABI=\([01]\).*/\1/p' "$tdir/share/cmake/Torch/TorchConfig.cmake" 2>/dev/null | head -1)
[ -n "$abi" ] || abi=1
echo "setup: libtorch ${ver:-unknown} at $tdir  CXX11_ABI=$abi  CUDA=$cuda"
echo "setup: ok"
