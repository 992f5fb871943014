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
CXR := $(ROOT)/.build/release/cxr
# libtorch's ABI, CUDA detection and headers, compile and link flags of libcxt.so: shim.mk, the
# one place for them (the GPU bundle builds its libcxt.so with the same file).
SHIM_MK := $(ROOT)/scripts/bundle/shim.mk

.PHONY: setup shim build test demo demo-readme install bench clean bundle cuda-check test-cuda-build test-debian-torch
setup:
	@bash scripts/setup.sh

shim: $(SHIM) $(DICOM_SHIM)
# Which libtorch libcxt.so was built against: a change (TORCH_DIR=/usr make test after the pinned
# wheel's build) rebuilds it.
TORCH_STAMP := $(SHIM_DIR)/torch-dir
$(shell mkdir -p $(SHIM_DIR) && { [ "$$(cat $(TORCH_STAMP) 2>/dev/null)" = "$(TORCH_DIR)" ] || echo "$(TORCH_DIR)" > $(TORCH_STAMP); })
$(SHIM): CShims/src/cxt.cpp CShims/src/dist.cpp CShims/src/internal.h CShims/src/exports.map CShims/include/cxt.h $(SHIM_MK) $(TORCH_STAMP)
	@$(MAKE) --no-print-directory -f $(SHIM_MK) SRC_DIR=$(ROOT)/CShims OUT=$@ TORCH_DIR=$(TORCH_DIR)

# Skipped (with a note) where GDCM's headers are missing: JPEG/PNG still work without it.
$(DICOM_SHIM): CShims/src/dicom.cpp CShims/include/cxt_dicom.h
	@mkdir -p $(SHIM_DIR)
	@if [ -n "$(GDCM_INC)" ]; then \
	  echo g++ dicom.cpp -o $@; \
	  g++ -std=c++17 -O2 -fPIC -Wall -I$(ROOT)/CShims/include -isystem $(GDCM_INC) CShims/src/dicom.cpp -o $@ \
	    -shared -Wl,-rpath,'$$ORIGIN' -lgdcmMSFF -lgdcmDSED -lgdcmCommon; \
	else echo "GDCM headers not found (apt-get install libgdcm-dev): DICOM reading disabled"; fi

# The release build's flags live in scripts/build/release.sh (the bench scripts and the bundle use
# it too, so no build undoes another's): the Swift runtime linked in, hot code packed by lld.
build: setup shim
	scripts/build/release.sh --product cxr

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

# The release binary and its C shims on the PATH: PREFIX/bin/cxr with libcxt*.so beside it (the
# binary's rpath includes $ORIGIN). libtorch stays where it is (the shim's rpath names it).
PREFIX ?= /usr/local
install: build
	install -d $(PREFIX)/bin
	install -m 755 $(CXR) $(PREFIX)/bin/cxr
	install -m 644 $(SHIM) $(PREFIX)/bin/
	@if [ -f $(DICOM_SHIM) ]; then install -m 644 $(DICOM_SHIM) $(PREFIX)/bin/; fi
	@echo "installed $(PREFIX)/bin/cxr ($$($(PREFIX)/bin/cxr info | head -1))"

# Regenerates the README's demo table and picture from a fresh demo run (scripts/demo-readme.sh).
demo-readme: build
	@bash scripts/demo-readme.sh

clean:
	rm -rf .build CShims/build demo-data demo-out

# GPU machine bundle (dist/cxr-bundle, < 64 MiB): static-stdlib cxr, shim sources, gpu-check.sh.
bundle: setup shim cuda-check
	@bash scripts/bundle.sh

# Optional, not in .ci/run (downloads, ~10 min each): cxr built and tested against the other two
# libtorch builds the README lists, each in its own scratch path (.build-cuda, .build-debian-torch)
# with its own libcxt.so, the default build untouched. The DICOM shim comes from `make shim`.
# The CUDA wheel from PyPI (.deps/cuda-venv, ~3.5 GB once), on the CPU: scripts/test-cuda-build.sh.
test-cuda-build: $(DICOM_SHIM)
	@bash scripts/test-cuda-build.sh
# Debian 12's libtorch-dev (1.13.1; apt-get install libtorch-dev): scripts/test-debian-torch.sh.
test-debian-torch: $(DICOM_SHIM)
	@bash scripts/test-debian-torch.sh

# Compile-only check of the shim's CUDA code against torch's CUDA wheel headers (no GPU needed).
cuda-check: setup
	@bash scripts/cuda-check.sh
