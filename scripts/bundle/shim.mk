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
override TORCH_DIR := $(patsubst %/,%,$(TORCH_DIR))
# Its libraries: lib/ in a wheel or a libtorch zip; lib/<multiarch>/ for a distribution's package
# (Debian 12's libtorch-dev: TORCH_DIR=/usr, libraries in /usr/lib/x86_64-linux-gnu).
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
TORCH_LIB ?= $(or $(patsubst %/libtorch.so,%,$(firstword $(wildcard $(TORCH_DIR)/lib/libtorch.so $(TORCH_DIR)/lib/$(MULTIARCH)/libtorch.so))),$(TORCH_DIR)/lib)
# Headers: include/ and the C++ API's include/; /usr/include is the compiler's own and must stay
# out of -isystem (libstdc++'s #include_next <stdlib.h> breaks otherwise).
TORCH_INCLUDES := $(addprefix -isystem ,$(filter-out /usr/include,$(TORCH_DIR)/include) $(TORCH_DIR)/include/torch/csrc/api/include)
# The libtorch version (torch/version.h; since 2.x it includes torch/headeronly/version.h, which
# holds the numbers): dist.cpp's c10d API is that of libtorch 2.
TORCH_VERSION_H := $(wildcard $(TORCH_DIR)/include/torch/csrc/api/include/torch/version.h $(TORCH_DIR)/include/torch/headeronly/version.h)
TORCH_MAJOR := $(shell sed -n 's/.*define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' $(TORCH_VERSION_H) /dev/null 2>/dev/null | head -1)
# libtorch's C++ ABI: what its TorchConfig.cmake says, else what its Python says, else the new ABI.
TORCH_ABI ?= $(or $(shell sed -n 's/.*_GLIBCXX_USE_CXX11_ABI=\([01]\).*/\1/p' $(wildcard $(TORCH_DIR)/share/cmake/Torch/TorchConfig.cmake $(TORCH_LIB)/cmake/Torch/TorchConfig.cmake) /dev/null 2>/dev/null | head -1),$(shell python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))' 2>/dev/null),1)
# CUDA code when the libtorch has CUDA; WITH_CUDA=1 forces it (syntax-check against header-only torch).
WITH_CUDA ?= $(if $(wildcard $(TORCH_LIB)/libtorch_cuda.so),1,)
# CUDA runtime headers: a toolkit (CUDA_HOME, /usr/local/cuda) or, for a pip-installed CUDA
# PyTorch, the nvidia/*/include folders beside torch.
CUDA_INCLUDES ?= $(foreach d,$(wildcard $(CUDA_HOME)/include /usr/local/cuda/include $(TORCH_DIR)/../nvidia/*/include),-isystem $(d))
# Data-parallel training (src/dist.cpp, c10d) where Gloo's headers exist (Debian's libgloo-dev):
# the definitions torch's own CMake config gives torch_cpu. NCCL as well with a CUDA libtorch
# whose NCCL headers are found (pip's nvidia/nccl/include).
# Not for libtorch 1.x (Debian 12's 1.13): its c10d headers differ (reducer.hpp includes
# distributed/autograd headers the package does not ship); distributed training is off there.
GLOO_INCLUDE ?= $(firstword $(wildcard /usr/include/gloo/config.h))
DIST_LIBTORCH := $(if $(filter 0 1,$(TORCH_MAJOR)),,1)
NCCL_HEADER := $(firstword $(wildcard $(TORCH_DIR)/../nvidia/nccl/include/nccl.h $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
DIST_FLAGS := $(if $(and $(GLOO_INCLUDE),$(DIST_LIBTORCH)),-DCXT_WITH_DIST -DUSE_DISTRIBUTED -DUSE_C10D_GLOO $(if $(and $(WITH_CUDA),$(NCCL_HEADER)),-DUSE_C10D_NCCL -isystem $(dir $(NCCL_HEADER)),),)
COMMA := ,
CXXFLAGS := -std=c++17 -O2 -fPIC -Wall -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) \
  -I$(SRC_DIR)/include $(TORCH_INCLUDES) \
  $(if $(WITH_CUDA),-DCXT_WITH_CUDA $(CUDA_INCLUDES),) $(DIST_FLAGS)
# Only the C ABI (cxt_*) is exported: libtorch's and Gloo's inline C++ compiled into the shim
# stays local to it and can never stand in for libtorch's own copies.
LDFLAGS := -shared -Wl,--version-script=$(SRC_DIR)/src/exports.map -L$(TORCH_LIB) -Wl,-rpath,$(TORCH_LIB) -Wl,-rpath,'$$ORIGIN' \
  $(if $(WITH_CUDA),-Wl$(COMMA)--no-as-needed -ltorch_cuda -lc10_cuda -Wl$(COMMA)--as-needed,) -ltorch -ltorch_cpu -lc10

.PHONY: check-torch syntax-check
SOURCES := $(SRC_DIR)/src/cxt.cpp $(SRC_DIR)/src/dist.cpp
$(OUT): $(SOURCES) $(SRC_DIR)/src/internal.h $(SRC_DIR)/src/exports.map $(SRC_DIR)/include/cxt.h $(SELF) | check-torch
	@mkdir -p $(dir $@)
	@$(if $(DIST_LIBTORCH),,echo "shim.mk: libtorch $(TORCH_MAJOR).x at $(TORCH_DIR): distributed training (c10d, libtorch 2 API) is off in this build")
	@$(if $(GLOO_INCLUDE),,echo "shim.mk: Gloo's headers not found (apt-get install libgloo-dev): distributed training is off in this build")
	g++ $(CXXFLAGS) $(SOURCES) -o $@ $(LDFLAGS)

# Compiles without linking (make cuda-check: the CUDA code against a CUDA wheel's headers).
syntax-check: check-torch
	g++ $(CXXFLAGS) -fsyntax-only $(SRC_DIR)/src/cxt.cpp
	g++ $(CXXFLAGS) -fsyntax-only $(SRC_DIR)/src/dist.cpp

check-torch:
	@test -f $(TORCH_DIR)/include/torch/csrc/api/include/torch/torch.h || { echo "shim.mk: no libtorch headers under TORCH_DIR=$(TORCH_DIR)" >&2; exit 1; }
