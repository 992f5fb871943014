# Builds libcxt.so next to the bundle's cxr (rpath $ORIGIN finds it there) with g++ against a
# libtorch. Part of dist/cxr-bundle (make bundle); scripts/gpu-check.sh runs it as
#   make -C CShims -f shim.mk TORCH_DIR=/path/to/site-packages/torch CUDA_INCLUDES="-isystem ..."
# With a CUDA libtorch (lib/libtorch_cuda.so present) it compiles the CUDA code (-DCXT_WITH_CUDA)
# and links torch_cuda with --no-as-needed so that CUDA registers itself when cxr loads.
HERE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# the shim's sources (include/, src/): beside this file in the bundle, CShims/ in the project
SRC_DIR ?= $(HERE)
OUT ?= $(abspath $(HERE)/..)/libcxt.so
TORCH_DIR ?= $(shell python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
TORCH_ABI ?= $(shell python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))' 2>/dev/null || echo 1)
CUDA_INCLUDES ?=
TORCH_CUDA := $(wildcard $(TORCH_DIR)/lib/libtorch_cuda.so)
COMMA := ,
CXXFLAGS := -std=c++17 -O2 -fPIC -Wall -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) \
  -I$(SRC_DIR)/include -isystem $(TORCH_DIR)/include -isystem $(TORCH_DIR)/include/torch/csrc/api/include \
  $(if $(TORCH_CUDA),-DCXT_WITH_CUDA $(CUDA_INCLUDES),)
LDFLAGS := -shared -L$(TORCH_DIR)/lib -Wl,-rpath,$(TORCH_DIR)/lib \
  $(if $(TORCH_CUDA),-Wl$(COMMA)--no-as-needed -ltorch_cuda -lc10_cuda -Wl$(COMMA)--as-needed) -ltorch -ltorch_cpu -lc10

$(OUT): $(SRC_DIR)/src/cxt.cpp $(SRC_DIR)/include/cxt.h
	@test -f $(TORCH_DIR)/include/torch/csrc/api/include/torch/torch.h || { echo "shim.mk: no libtorch headers under TORCH_DIR=$(TORCH_DIR)" >&2; exit 1; }
	g++ $(CXXFLAGS) $(SRC_DIR)/src/cxt.cpp -o $@ $(LDFLAGS)
