// What the shim's translation units share (cxt.cpp, dist.cpp): the handle structs, the
// thread-local error message and CXT_TRY, which turns every C++ exception into status -1.
// Not part of the ABI: only cxt_* symbols are exported (the version script in shim.mk).
#pragma once
#include "cxt.h"

#include <ATen/ATen.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#ifdef CXT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <ATen/cuda/CUDAGraph.h>
#endif

struct cxt_tensor_s { at::Tensor t; };
struct cxt_generator_s { at::Generator g; };
#ifdef CXT_WITH_CUDA
struct cxt_stream_s { c10::cuda::CUDAStream s; };
#else
struct cxt_stream_s { int unused; };
#endif
#ifdef CXT_WITH_CUDA
// CUDAGraph is neither copyable nor movable: hold it by pointer.
struct cxt_graph_s { std::unique_ptr<at::cuda::CUDAGraph> g; };
#else
struct cxt_graph_s { int unused; };
#endif

namespace cxt_internal {
inline thread_local std::string last_error;

inline void set_error(const char *msg) { last_error = msg ? msg : "unknown error"; }

#define CXT_TRY(...)                                                    \
  try {                                                                 \
    __VA_ARGS__;                                                        \
    return 0;                                                           \
  } catch (const c10::Error &e) {                                       \
    set_error(e.what_without_backtrace());                              \
    return -1;                                                          \
  } catch (const std::exception &e) {                                   \
    set_error(e.what());                                                \
    return -1;                                                          \
  } catch (...) {                                                       \
    set_error("unknown C++ exception in libtorch");                     \
    return -1;                                                          \
  }

struct Fail : std::runtime_error { using std::runtime_error::runtime_error; };

inline const at::Tensor &T(cxt_tensor t) {
  if (!t) throw Fail("null tensor handle");
  return t->t;
}

inline void put(cxt_tensor *out, at::Tensor t) {
  if (!out) throw Fail("null output pointer");
  *out = new cxt_tensor_s{std::move(t)};
}

inline std::vector<at::Tensor> list(const cxt_tensor *ts, int n) {
  if (n < 0 || (n > 0 && !ts)) throw Fail("bad tensor list");
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; ++i) v.push_back(T(ts[i]));
  return v;
}
}  // namespace cxt_internal
