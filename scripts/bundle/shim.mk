# How libcxt.so is compiled and linked, written once: the project's Makefile (`make shim`), the
# GPU bundle (scripts/gpu-check.sh builds libcxt.so beside the bundle's cxr, rpath $ORIGIN finds
# it there) and `make cuda-check` (target syntax-check) all run this file:
#   make -f shim.mk TORCH_DIR=/path/to/site-packages/torch [SRC_DIR=... OUT=... CUDA_INCLUDES="-isystem ..."]
# With a CUDA libtorch (lib/libtorch_cuda.so present) it compiles the CUDA code (-DCXT_WITH_CUDA)
# and links torch_cuda with --no-as-needed so that CUDA registers itself when cxr loads.
SELF := $(abspath $(lastword $(MAKEFILE_LIST)))
HERE := $(patsubst %/,%,$(dir $(SELF)))
# the shim's sources (include/, src/): beside this file in the bundle, CShims/ in the project
SRC_DIR ?= $(HERE)
OUT ?= $(abspath $(HERE)/..)/libcxt.so
TORCH_DIR ?= $(shell python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# libtorch's C++ ABI: what its TorchConfig.cmake says, else what its Python says, else the new ABI.
TORCH_ABI ?= $(or $(shell sed -n 's/.*_GLIBCXX_USE_CXX11_ABI=\([01]\).*/\1/p' $(TORCH_DIR)/share/cmake/Torch/TorchConfig.cmake 2>/dev/null | head -1),$(shell python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))' 2>/dev/null),1)
# CUDA code when the libtorch has CUDA; WITH_CUDA=1 forces it (syntax-check against header-only torch).
WITH_CUDA ?= $(if $(wildcard $(TORCH_DIR)/lib/libtorch_cuda.so),1,)
# CUDA runtime headers: a toolkit (CUDA_HOME, /usr/local/cuda) or, for a pip-installed CUDA
# PyTorch, the nvidia/*/include folders beside torch.
CUDA_INCLUDES ?= $(foreach d,$(wildcard $(CUDA_HOME)/include /usr/local/cuda/include $(TORCH_DIR)/../nvidia/*/include),-isystem $(d))
# Data-parallel training (src/dist.cpp, c10d) where Gloo's headers exist (Debian's libgloo-dev):
# the definitions torch's own CMake config gives torch_cpu. NCCL as well with a CUDA libtorch
# whose NCCL headers are found (pip's nvidia/nccl/include).
GLOO_INCLUDE ?= $(firstword $(wildcard /usr/include/gloo/config.h))
NCCL_HEADER := $(firstword $(wildcard $(TORCH_DIR)/../nvidia/nccl/include/nccl.h $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
DIST_FLAGS := $(if $(GLOO_INCLUDE),-DCXT_WITH_DIST -DUSE_DISTRIBUTED -DUSE_C10D_GLOO $(if $(and $(WITH_CUDA),$(NCCL_HEADER)),-DUSE_C10D_NCCL -isystem $(dir $(NCCL_HEADER)),),)
COMMA := ,
CXXFLAGS := -std=c++17 -O2 -fPIC -Wall -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) \
  -I$(SRC_DIR)/include -isystem $(TORCH_DIR)/include -isystem $(TORCH_DIR)/include/torch/csrc/api/include \
  $(if $(WITH_CUDA),-DCXT_WITH_CUDA $(CUDA_INCLUDES),) $(DIST_FLAGS)
# Only the C ABI (cxt_*) is exported: libtorch's and Gloo's inline C++ compiled into the shim
# stays local to it and can never stand in for libtorch's own copies.
LDFLAGS := -shared -Wl,--version-script=$(SRC_DIR)/src/exports.map -L$(TORCH_DIR)/lib -Wl,-rpath,$(TORCH_DIR)/lib -Wl,-rpath,'$$ORIGIN' \
  $(if $(WITH_CUDA),-Wl$(COMMA)--no-as-needed -ltorch_cuda -lc10_cuda -Wl$(COMMA)--as-needed,) -ltorch -ltorch_cpu -lc10

.PHONY: check-torch syntax-check
SOURCES := $(SRC_DIR)/src/cxt.cpp $(SRC_DIR)/src/dist.cpp
$(OUT): $(SOURCES) $(SRC_DIR)/src/internal.h $(SRC_DIR)/src/exports.map $(SRC_DIR)/include/cxt.h $(SELF) | check-torch
	@mkdir -p $(dir $@)
	@$(if $(GLOO_INCLUDE),,echo "shim.mk: Gloo's headers not found (apt-get install libgloo-dev): distributed training is off in this build")
	g++ $(CXXFLAGS) $(SOURCES) -o $@ $(LDFLAGS)

# Compiles without linking (make cuda-check: the CUDA code against a CUDA wheel's headers).
syntax-check: check-torch
	g++ $(CXXFLAGS) -fsyntax-only $(SRC_DIR)/src/cxt.cpp
	g++ $(CXXFLAGS) -fsyntax-only $(SRC_DIR)/src/dist.cpp

check-torch:
	@test -f $(TORCH_DIR)/include/torch/csrc/api/include/torch/torch.h || { echo "shim.mk: no libtorch headers under TORCH_DIR=$(TORCH_DIR)" >&2; exit 1; }
