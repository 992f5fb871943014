# cxr — build, test, demo. Every target installs what it needs (make setup).
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.deps/venv
PY := $(VENV)/bin/python
# libtorch: TORCH_DIR if set, else the pinned CPU wheel that `make setup` installs.
TORCH_DIR ?= $(ROOT)/.deps/venv/lib/python3.11/site-packages/torch
SHIM_DIR := $(ROOT)/CShims/build
SHIM := $(SHIM_DIR)/libcxt.so
# DICOM reader over GDCM (Debian libgdcm-dev); loaded by dlopen only when a DICOM is read.
DICOM_SHIM := $(SHIM_DIR)/libcxt_dicom.so
GDCM_INC ?= $(firstword $(wildcard /usr/include/gdcm-*))
SWIFT_FLAGS ?= -c release
CXR := $(ROOT)/.build/release/cxr
TORCH_CUDA := $(wildcard $(TORCH_DIR)/lib/libtorch_cuda.so)
# CUDA runtime headers: a toolkit (CUDA_HOME, /usr/local/cuda) or, for a pip-installed CUDA
# PyTorch, the nvidia/*/include folders beside torch.
CUDA_INCLUDES ?= $(foreach d,$(wildcard $(CUDA_HOME)/include /usr/local/cuda/include $(TORCH_DIR)/../nvidia/*/include),-isystem $(d))
TORCH_ABI := $(shell sed -n 's/.*_GLIBCXX_USE_CXX11_ABI=\([01]\).*/\1/p' $(TORCH_DIR)/share/cmake/Torch/TorchConfig.cmake 2>/dev/null | head -1)
CXXFLAGS := -std=c++17 -O2 -fPIC -Wall -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=$(if $(TORCH_ABI),$(TORCH_ABI),1) \
  -I$(ROOT)/CShims/include -isystem $(TORCH_DIR)/include -isystem $(TORCH_DIR)/include/torch/csrc/api/include \
  $(if $(TORCH_CUDA),-DCXT_WITH_CUDA $(CUDA_INCLUDES),)
COMMA := ,
CUDA_LIBS := -Wl$(COMMA)--no-as-needed -ltorch_cuda -lc10_cuda -Wl$(COMMA)--as-needed
LDFLAGS := -shared -L$(TORCH_DIR)/lib -Wl,-rpath,$(TORCH_DIR)/lib -Wl,-rpath,'$$ORIGIN' \
  $(if $(TORCH_CUDA),$(CUDA_LIBS)) -ltorch -ltorch_cpu -lc10

.PHONY: setup shim build test demo bench clean bundle cuda-check
setup:
	@bash scripts/setup.sh

shim: $(SHIM) $(DICOM_SHIM)
$(SHIM): CShims/src/cxt.cpp CShims/include/cxt.h
	@mkdir -p $(SHIM_DIR)
	g++ $(CXXFLAGS) CShims/src/cxt.cpp -o $@ $(LDFLAGS)

# Skipped (with a note) where GDCM's headers are missing: JPEG/PNG still work without it.
$(DICOM_SHIM): CShims/src/dicom.cpp CShims/include/cxt_dicom.h
	@mkdir -p $(SHIM_DIR)
	@if [ -n "$(GDCM_INC)" ]; then \
	  echo g++ dicom.cpp -o $@; \
	  g++ -std=c++17 -O2 -fPIC -Wall -I$(ROOT)/CShims/include -isystem $(GDCM_INC) CShims/src/dicom.cpp -o $@ \
	    -shared -Wl,-rpath,'$$ORIGIN' -lgdcmMSFF -lgdcmDSED -lgdcmCommon; \
	else echo "GDCM headers not found (apt-get install libgdcm-dev): DICOM reading disabled"; fi

build: setup shim
	swift build $(SWIFT_FLAGS) --product cxr

# Builds every target first (the command-line tests run the cxr binary), then runs the tests.
test: setup shim
	swift build --build-tests
	CXR_PYTHON=$(PY) swift test --skip-build

# The study in miniature: a synthetic MIMIC-like training set and CANDID-like test set, one
# small ConvNeXt per labelling schema, evaluation against every reference, one report.
demo: build
	$(CXR) synth demo-data --size small --seed 0
	$(CXR) run configs/demo.yaml
	@echo "report: demo-out/demo/report.md (plots: demo-out/demo/evaluation/report.html)"

clean:
	rm -rf .build CShims/build demo-data demo-out

# GPU machine bundle (dist/cxr-bundle, < 64 MiB): static-stdlib cxr, shim sources, gpu-check.sh.
bundle: setup shim cuda-check
	@bash scripts/bundle.sh

# Compile-only check of the shim's CUDA code against torch's CUDA wheel headers (no GPU needed).
cuda-check: setup
	@bash scripts/cuda-check.sh
