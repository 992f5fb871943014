// The C ABI over libtorch. Thin by design: each function maps to one ATen call.
// Every body runs inside CXT_TRY so that no C++ exception crosses into Swift.
#include "cxt.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#include <torch/autograd.h>
#include <torch/cuda.h>
#include <c10/core/GradMode.h>

#ifdef CXT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
// c10::Event, not at::cuda::CUDAEvent: the latter pulls in cuBLAS/cuSPARSE/cuSOLVER headers,
// which a pip-installed CUDA PyTorch does not always ship.
#include <c10/core/Event.h>
#include <ATen/cuda/CUDAGraph.h>
#endif

#include <cmath>
#include <memory>
#include <cstring>
#include <string>
#include <vector>

#include "internal.h"

// One source for every libtorch the project is tested with (README, "libtorch builds"): the
// pinned 2.x wheels (CPU and CUDA) and Debian 12's libtorch-dev (1.13). Where an API is newer
// than 1.13, the older libtorch takes a fallback of the same meaning, chosen at compile time.
#define CXT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace {
using namespace cxt_internal;


at::ScalarType to_scalar(cxt_dtype d) {
  switch (d) {
    case CXT_F32: return at::kFloat;
    case CXT_BF16: return at::kBFloat16;
    case CXT_F16: return at::kHalf;
    case CXT_U8: return at::kByte;
    case CXT_I64: return at::kLong;
    case CXT_BOOL: return at::kBool;
    case CXT_F64: return at::kDouble;
    case CXT_I32: return at::kInt;
    default: break;
  }
  throw Fail("unknown dtype code " + std::to_string(static_cast<int>(d)));
}

cxt_dtype from_scalar(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return CXT_F32;
    case at::kBFloat16: return CXT_BF16;
    case at::kHalf: return CXT_F16;
    case at::kByte: return CXT_U8;
    case at::kLong: return CXT_I64;
    case at::kBool: return CXT_BOOL;
    case at::kDouble: return CXT_F64;
    case at::kInt: return CXT_I32;
    default: throw Fail(std::string("dtype not supported by cxr: ") + c10::toString(s));
  }
}

at::Device to_device(cxt_device_type type, int index) {
  if (type == CXT_CPU) return at::Device(at::kCPU);
  if (type == CXT_CUDA) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  throw Fail("unknown device type " + std::to_string(static_cast<int>(type)));
}

at::DeviceType to_device_type(cxt_device_type type) { return to_device(type, 0).type(); }

at::MemoryFormat to_format(cxt_memory_format f) {
  if (f == CXT_CONTIGUOUS) return at::MemoryFormat::Contiguous;
  if (f == CXT_CHANNELS_LAST) return at::MemoryFormat::ChannelsLast;
  throw Fail("unknown memory format " + std::to_string(static_cast<int>(f)));
}


c10::optional<at::Tensor> opt(cxt_tensor t) {
  if (!t) return c10::nullopt;
  return t->t;
}

c10::optional<at::Generator> gen(cxt_generator g) {
  if (!g) return c10::nullopt;
  return g->g;
}


at::IntArrayRef ints(const int64_t *p, int n) {
  if (n < 0 || (n > 0 && !p)) throw Fail("bad integer list");
  return at::IntArrayRef(p, static_cast<size_t>(n));
}


at::Tensor unary(const at::Tensor &x, cxt_unary_op op) {
  switch (op) {
    case CXT_NEG: return x.neg();
    case CXT_ABS: return x.abs();
    case CXT_EXP: return x.exp();
    case CXT_LOG: return x.log();
    case CXT_SQRT: return x.sqrt();
    case CXT_RSQRT: return x.rsqrt();
    case CXT_SIGMOID: return x.sigmoid();
    case CXT_TANH: return x.tanh();
    case CXT_SIGN: return x.sign();
    case CXT_RELU: return x.relu();
    case CXT_GELU: return at::gelu(x, "none");
    case CXT_GELU_TANH: return at::gelu(x, "tanh");
    case CXT_FLOOR: return x.floor();
    case CXT_CEIL: return x.ceil();
    case CXT_ROUND: return x.round();
    case CXT_SIN: return x.sin();
    case CXT_COS: return x.cos();
    case CXT_LOGICAL_NOT: return x.logical_not();
    case CXT_ISNAN: return x.isnan();
    case CXT_ISFINITE: return x.isfinite();
    case CXT_ERF: return x.erf();
    case CXT_RECIPROCAL: return x.reciprocal();
    case CXT_SQUARE: return x.square();
    case CXT_LOG1P: return x.log1p();
    case CXT_LOGSIGMOID: return at::log_sigmoid(x);
    default: break;
  }
  throw Fail("unknown unary op " + std::to_string(static_cast<int>(op)));
}

template <typename B>
at::Tensor binary(const at::Tensor &a, const B &b, cxt_binary_op op) {
  switch (op) {
    case CXT_ADD: return at::add(a, b);
    case CXT_SUB: return at::sub(a, b);
    case CXT_MUL: return at::mul(a, b);
    case CXT_DIV: return at::div(a, b);
    case CXT_POW: return at::pow(a, b);
    case CXT_EQ: return at::eq(a, b);
    case CXT_NE: return at::ne(a, b);
    case CXT_LT: return at::lt(a, b);
    case CXT_LE: return at::le(a, b);
    case CXT_GT: return at::gt(a, b);
    case CXT_GE: return at::ge(a, b);
    case CXT_REMAINDER: return at::remainder(a, b);
    default: break;
  }
  throw Fail("binary op " + std::to_string(static_cast<int>(op)) + " is not defined for this operand kind");
}

at::Tensor binary_tt(const at::Tensor &a, const at::Tensor &b, cxt_binary_op op) {
  switch (op) {
    case CXT_MAXIMUM: return at::maximum(a, b);
    case CXT_MINIMUM: return at::minimum(a, b);
    case CXT_LOGICAL_AND: return at::logical_and(a, b);
    case CXT_LOGICAL_OR: return at::logical_or(a, b);
    case CXT_ATAN2: return at::atan2(a, b);
    default: break;
  }
  return binary(a, b, op);
}

at::Tensor binary_ts(const at::Tensor &a, double s, cxt_binary_op op) {
  switch (op) {
    case CXT_MAXIMUM: return at::clamp_min(a, s);
    case CXT_MINIMUM: return at::clamp_max(a, s);
    default: break;
  }
  return binary(a, at::Scalar(s), op);
}

c10::optional<at::Scalar> bound(double v) {
  if (std::isnan(v)) return c10::nullopt;
  return at::Scalar(v);
}
}  // namespace

extern "C" {

const char *cxt_last_error(void) { return last_error.c_str(); }

int cxt_version(char *buf, size_t len) {
  CXT_TRY({
    if (!buf || len == 0) throw Fail("null buffer");
    std::snprintf(buf, len, "%s", TORCH_VERSION);
  })
}

int cxt_has_cuda_build(int *out) {
#ifdef CXT_WITH_CUDA
  CXT_TRY(*out = 1)
#else
  CXT_TRY(*out = 0)
#endif
}

int cxt_cuda_is_available(int *out) { CXT_TRY(*out = torch::cuda::is_available() ? 1 : 0) }
int cxt_cuda_device_count(int *out) {
  CXT_TRY(*out = static_cast<int>(torch::cuda::device_count()))
}
int cxt_cuda_synchronize(int device) {
  CXT_TRY({
    if (!torch::cuda::is_available()) throw Fail("CUDA is not available (no GPU, or a CPU-only libtorch)");
    torch::cuda::synchronize(device);
  })
}
int cxt_cudnn_set_benchmark(int enabled) { CXT_TRY(at::globalContext().setBenchmarkCuDNN(enabled != 0)) }
int cxt_cudnn_get_benchmark(int *out) { CXT_TRY(*out = at::globalContext().benchmarkCuDNN() ? 1 : 0) }
int cxt_set_num_threads(int n) {
  CXT_TRY({
    if (n < 1) throw Fail("thread count must be at least 1, got " + std::to_string(n));
    at::set_num_threads(n);
  })
}
int cxt_get_num_threads(int *out) { CXT_TRY(*out = at::get_num_threads()) }
int cxt_manual_seed(uint64_t seed) { CXT_TRY(at::manual_seed(seed)) }

int cxt_cuda_memory_stats(int device, int64_t *allocated, int64_t *peak) {
  CXT_TRY({
    *allocated = 0;
    *peak = 0;
#ifdef CXT_WITH_CUDA
    if (at::hasCUDA()) {
      auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
      auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
      *allocated = stats.allocated_bytes[agg].current;
      *peak = stats.allocated_bytes[agg].peak;
    }
#else
    (void)device;
#endif
  })
}

// ---- lifetime and data --------------------------------------------------------
int cxt_tensor_free(cxt_tensor t) { CXT_TRY(delete t) }

int cxt_tensor_from_data(const void *data, size_t nbytes, const int64_t *shape, int ndim,
                         cxt_dtype dtype, cxt_tensor *out) {
  CXT_TRY({
    auto t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(to_scalar(dtype)));
    size_t need = static_cast<size_t>(t.numel()) * t.element_size();
    if (nbytes != need)
      throw Fail("buffer holds " + std::to_string(nbytes) + " bytes but shape and dtype need " +
                 std::to_string(need));
    if (need > 0) {
      if (!data) throw Fail("null data pointer");
      std::memcpy(t.data_ptr(), data, need);
    }
    put(out, t);
  })
}

int cxt_tensor_empty(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type, int device_index,
                     int pinned, cxt_tensor *out) {
  CXT_TRY({
    auto o = at::TensorOptions().dtype(to_scalar(dtype)).device(to_device(device_type, device_index));
    if (pinned) o = o.pinned_memory(true);
    put(out, at::empty(ints(shape, ndim), o));
  })
}

int cxt_tensor_full(const int64_t *shape, int ndim, double value, cxt_dtype dtype, cxt_device_type device_type,
                    int device_index, cxt_tensor *out) {
  CXT_TRY(put(out, at::full(ints(shape, ndim), value,
                            at::TensorOptions().dtype(to_scalar(dtype)).device(to_device(device_type, device_index)))))
}

int cxt_tensor_arange(double start, double end, double step, cxt_dtype dtype, cxt_device_type device_type,
                      int device_index, cxt_tensor *out) {
  CXT_TRY(put(out, at::arange(start, end, step,
                              at::TensorOptions().dtype(to_scalar(dtype)).device(to_device(device_type, device_index)))))
}

int cxt_tensor_copy_to_buffer(cxt_tensor t, void *dst, size_t nbytes) {
  CXT_TRY({
    auto c = T(t).detach().to(at::kCPU).contiguous();
    size_t have = static_cast<size_t>(c.numel()) * c.element_size();
    if (nbytes != have)
      throw Fail("tensor holds " + std::to_string(have) + " bytes, buffer " + std::to_string(nbytes));
    if (have > 0) std::memcpy(dst, c.data_ptr(), have);
  })
}

int cxt_tensor_ndim(cxt_tensor t, int *out) { CXT_TRY(*out = static_cast<int>(T(t).dim())) }
int cxt_tensor_shape(cxt_tensor t, int64_t *out, int cap) {
  CXT_TRY({
    auto s = T(t).sizes();
    if (cap < static_cast<int>(s.size())) throw Fail("shape buffer too small");
    for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
  })
}
int cxt_tensor_strides(cxt_tensor t, int64_t *out, int cap) {
  CXT_TRY({
    auto s = T(t).strides();
    if (cap < static_cast<int>(s.size())) throw Fail("stride buffer too small");
    for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
  })
}
int cxt_tensor_dtype(cxt_tensor t, cxt_dtype *out) { CXT_TRY(*out = from_scalar(T(t).scalar_type())) }
int cxt_tensor_device(cxt_tensor t, cxt_device_type *type, int *index) {
  CXT_TRY({
    auto d = T(t).device();
    *type = d.is_cuda() ? CXT_CUDA : CXT_CPU;
    *index = d.has_index() ? d.index() : 0;
  })
}
int cxt_tensor_numel(cxt_tensor t, int64_t *out) { CXT_TRY(*out = T(t).numel()) }
int cxt_tensor_item(cxt_tensor t, double *out) { CXT_TRY(*out = T(t).item().toDouble()) }
int cxt_tensor_is_contiguous(cxt_tensor t, cxt_memory_format memory_format, int *out) {
  CXT_TRY(*out = T(t).is_contiguous(to_format(memory_format)) ? 1 : 0)
}
int cxt_tensor_is_pinned(cxt_tensor t, int *out) { CXT_TRY(*out = T(t).is_pinned() ? 1 : 0) }
int cxt_tensor_same_storage(cxt_tensor a, cxt_tensor b, int *out) {
  CXT_TRY(*out = T(a).storage().is_alias_of(T(b).storage()) ? 1 : 0)
}

// ---- conversion and layout ----------------------------------------------------
int cxt_tensor_to(cxt_tensor t, cxt_device_type device_type, int device_index, cxt_dtype dtype, int non_blocking,
                  cxt_tensor *out) {
  CXT_TRY({
    const auto &x = T(t);
    auto dev = device_type == CXT_DEVICE_KEEP ? x.device() : to_device(device_type, device_index);
    auto st = dtype == CXT_DTYPE_KEEP ? x.scalar_type() : to_scalar(dtype);
    put(out, x.to(dev, st, non_blocking != 0, false));
  })
}
int cxt_tensor_contiguous(cxt_tensor t, cxt_memory_format memory_format, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).contiguous(to_format(memory_format))))
}
int cxt_tensor_clone(cxt_tensor t, cxt_tensor *out) { CXT_TRY(put(out, T(t).clone())) }
int cxt_tensor_detach(cxt_tensor t, cxt_tensor *out) { CXT_TRY(put(out, T(t).detach())) }
int cxt_tensor_pin_memory(cxt_tensor t, cxt_tensor *out) { CXT_TRY(put(out, T(t).pin_memory())) }

// ---- views and indexing -------------------------------------------------------
int cxt_tensor_reshape(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).reshape(ints(shape, ndim))))
}
int cxt_tensor_view(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).view(ints(shape, ndim))))
}
int cxt_tensor_permute(cxt_tensor t, const int64_t *dims, int ndim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).permute(ints(dims, ndim))))
}
int cxt_tensor_transpose(cxt_tensor t, int64_t d0, int64_t d1, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).transpose(d0, d1)))
}
int cxt_tensor_slice(cxt_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step,
                     cxt_tensor *out) {
  CXT_TRY(put(out, T(t).slice(dim, start, end, step)))
}
int cxt_tensor_select(cxt_tensor t, int64_t dim, int64_t index, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).select(dim, index)))
}
int cxt_tensor_index_select(cxt_tensor t, int64_t dim, cxt_tensor index, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).index_select(dim, T(index))))
}
int cxt_tensor_cat(const cxt_tensor *ts, int n, int64_t dim, cxt_tensor *out) {
  CXT_TRY(put(out, at::cat(list(ts, n), dim)))
}
int cxt_tensor_stack(const cxt_tensor *ts, int n, int64_t dim, cxt_tensor *out) {
  CXT_TRY(put(out, at::stack(list(ts, n), dim)))
}
int cxt_tensor_expand(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).expand(ints(shape, ndim))))
}
int cxt_tensor_unsqueeze(cxt_tensor t, int64_t dim, cxt_tensor *out) { CXT_TRY(put(out, T(t).unsqueeze(dim))) }
int cxt_tensor_squeeze(cxt_tensor t, int64_t dim, cxt_tensor *out) { CXT_TRY(put(out, T(t).squeeze(dim))) }
int cxt_tensor_flatten(cxt_tensor t, int64_t start, int64_t end, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).flatten(start, end)))
}
int cxt_tensor_flip(cxt_tensor t, const int64_t *dims, int ndim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).flip(ints(dims, ndim))))
}
int cxt_tensor_roll(cxt_tensor t, int64_t shift, int64_t dim, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).roll({shift}, {dim})))
}
int cxt_tensor_where(cxt_tensor cond, cxt_tensor a, cxt_tensor b, cxt_tensor *out) {
  CXT_TRY(put(out, at::where(T(cond), T(a), T(b))))
}
int cxt_tensor_masked_fill(cxt_tensor t, cxt_tensor mask, double value, cxt_tensor *out) {
  CXT_TRY(put(out, T(t).masked_fill(T(mask), value)))
}

// ---- elementwise --------------------------------------------------------------
int cxt_tensor_unary(cxt_tensor t, cxt_unary_op op, cxt_tensor *out) { CXT_TRY(put(out, unary(T(t), op))) }
int cxt_tensor_binary(cxt_tensor a, cxt_tensor b, cxt_binary_op op, cxt_tensor *out) {
  CXT_TRY(put(out, binary_tt(T(a), T(b), op)))
}
int cxt_tensor_binary_scalar(cxt_tensor a, double s, cxt_binary_op op, cxt_tensor *out) {
  CXT_TRY(put(out, binary_ts(T(a), s, op)))
}
int cxt_scalar_binary_tensor(double s, cxt_tensor a, cxt_binary_op op, cxt_tensor *out) {
  CXT_TRY({
    const auto &x = T(a);
    switch (op) {
      case CXT_SUB: put(out, at::rsub(x, s)); break;
      case CXT_DIV: put(out, at::mul(x.reciprocal(), s)); break;
      case CXT_POW: put(out, at::pow(at::Scalar(s), x)); break;
      default: put(out, binary_ts(x, s, op));
    }
  })
}
int cxt_tensor_clamp(cxt_tensor t, double lo, double hi, cxt_tensor *out) {
  CXT_TRY(put(out, at::clamp(T(t), bound(lo), bound(hi))))
}
int cxt_tensor_lerp(cxt_tensor a, cxt_tensor b, double weight, cxt_tensor *out) {
  CXT_TRY(put(out, at::lerp(T(a), T(b), weight)))
}
int cxt_tensor_addcmul(cxt_tensor t, cxt_tensor a, cxt_tensor b, double value, cxt_tensor *out) {
  CXT_TRY(put(out, at::addcmul(T(t), T(a), T(b), value)))
}

int cxt_tensor_copy_(cxt_tensor dst, cxt_tensor src, int non_blocking) {
  CXT_TRY({
    auto d = T(dst);
    d.copy_(T(src), non_blocking != 0);
  })
}
int cxt_tensor_fill_(cxt_tensor t, double value) { CXT_TRY({ auto x = T(t); x.fill_(value); }) }
int cxt_tensor_mul_scalar_(cxt_tensor t, double s) { CXT_TRY({ auto x = T(t); x.mul_(s); }) }
int cxt_tensor_add_(cxt_tensor t, cxt_tensor other, double alpha) {
  CXT_TRY({ auto x = T(t); x.add_(T(other), alpha); })
}
int cxt_tensor_add_scalar_(cxt_tensor t, double s) { CXT_TRY({ auto x = T(t); x.add_(s); }) }
int cxt_tensor_clamp_(cxt_tensor t, double lo, double hi) {
  CXT_TRY({ auto x = T(t); x.clamp_(bound(lo), bound(hi)); })
}
int cxt_tensor_bernoulli_(cxt_tensor t, double p, cxt_generator g) {
  CXT_TRY({ auto x = T(t); x.bernoulli_(p, gen(g)); })
}
int cxt_tensor_uniform_(cxt_tensor t, double lo, double hi, cxt_generator g) {
  CXT_TRY({ auto x = T(t); x.uniform_(lo, hi, gen(g)); })
}
int cxt_tensor_normal_(cxt_tensor t, double mean, double std, cxt_generator g) {
  CXT_TRY({ auto x = T(t); x.normal_(mean, std, gen(g)); })
}
// timm / PyTorch trunc_normal_ (mean 0): inverse-CDF sampling, then clamp.
int cxt_tensor_trunc_normal_(cxt_tensor t, double std, double a, double b, cxt_generator g) {
  CXT_TRY({
    auto x = T(t);
    at::NoGradGuard no_grad;
    auto cdf = [](double v) { return (1.0 + std::erf(v / std::sqrt(2.0))) / 2.0; };
    double l = cdf(a / std), u = cdf(b / std);
    x.uniform_(2 * l - 1, 2 * u - 1, gen(g));
    x.erfinv_();
    x.mul_(std * std::sqrt(2.0));
    x.clamp_(a, b);
  })
}

// ---- reductions -----------------------------------------------------------------
int cxt_tensor_reduce(cxt_tensor t, cxt_reduce_op op, const int64_t *dims, int ndims, int keepdim,
                      cxt_tensor *out) {
  CXT_TRY({
    const auto &x = T(t);
    bool all = ndims == 0;
    at::OptionalIntArrayRef d = all ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(ints(dims, ndims));
    bool k = keepdim != 0;
    switch (op) {
      case CXT_SUM: put(out, at::sum(x, d, k)); break;
      case CXT_MEAN: put(out, at::mean(x, d, k)); break;
      case CXT_AMAX: put(out, all ? at::amax(x, {}, k) : at::amax(x, ints(dims, ndims), k)); break;
      case CXT_AMIN: put(out, all ? at::amin(x, {}, k) : at::amin(x, ints(dims, ndims), k)); break;
      case CXT_PROD:
        if (all) { put(out, at::prod(x)); break; }
        if (ndims != 1) throw Fail("prod reduces over one dim at a time");
        put(out, at::prod(x, dims[0], k));
        break;
      case CXT_VAR: put(out, at::var(x, d, 1, k)); break;
      case CXT_STD: put(out, at::std(x, d, 1, k)); break;
      default: throw Fail("unknown reduction " + std::to_string(static_cast<int>(op)));
    }
  })
}
int cxt_tensor_argmax(cxt_tensor t, int64_t dim, int keepdim, cxt_tensor *out) {
  CXT_TRY(put(out, at::argmax(T(t), dim, keepdim != 0)))
}
int cxt_tensor_cumsum(cxt_tensor t, int64_t dim, cxt_tensor *out) { CXT_TRY(put(out, at::cumsum(T(t), dim))) }
int cxt_tensor_sort(cxt_tensor t, int64_t dim, int descending, int stable, cxt_tensor *values,
                    cxt_tensor *indices) {
  CXT_TRY({
    auto r = at::sort(T(t), stable != 0, dim, descending != 0);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  })
}
int cxt_tensor_histc(cxt_tensor t, int64_t bins, double lo, double hi, cxt_tensor *out) {
  CXT_TRY(put(out, at::histc(T(t), bins, lo, hi)))
}
int cxt_tensor_gather(cxt_tensor t, int64_t dim, cxt_tensor index, cxt_tensor *out) {
  CXT_TRY(put(out, at::gather(T(t), dim, T(index))))
}
int cxt_tensor_all_finite(cxt_tensor t, int *out) {
  CXT_TRY(*out = T(t).isfinite().all().item<bool>() ? 1 : 0)
}
int cxt_tensor_equal(cxt_tensor a, cxt_tensor b, int *out) { CXT_TRY(*out = at::equal(T(a), T(b)) ? 1 : 0) }

// ---- neural network primitives --------------------------------------------------
int cxt_matmul(cxt_tensor a, cxt_tensor b, cxt_tensor *out) { CXT_TRY(put(out, at::matmul(T(a), T(b)))) }
int cxt_linear(cxt_tensor x, cxt_tensor w, cxt_tensor b, cxt_tensor *out) {
  CXT_TRY(put(out, at::linear(T(x), T(w), opt(b))))
}
int cxt_conv2d(cxt_tensor x, cxt_tensor w, cxt_tensor b, const int64_t *stride,
               const int64_t *padding, const int64_t *dilation, int64_t groups, cxt_tensor *out) {
  CXT_TRY(put(out, at::conv2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2),
                              ints(dilation, 2), groups)))
}
int cxt_layer_norm(cxt_tensor x, const int64_t *shape, int ndim, cxt_tensor w, cxt_tensor b,
                   double eps, cxt_tensor *out) {
  CXT_TRY(put(out, at::layer_norm(T(x), ints(shape, ndim), opt(w), opt(b), eps, true)))
}
int cxt_adaptive_avg_pool2d(cxt_tensor x, int64_t h, int64_t w, cxt_tensor *out) {
  CXT_TRY(put(out, at::adaptive_avg_pool2d(T(x), {h, w})))
}
int cxt_avg_pool2d(cxt_tensor x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, cxt_tensor *out) {
  CXT_TRY(put(out, at::avg_pool2d(T(x), {kh, kw}, {sh, sw})))
}
int cxt_dropout(cxt_tensor x, double p, int train, cxt_tensor *out) {
  CXT_TRY(put(out, at::dropout(T(x), p, train != 0)))
}
int cxt_softmax(cxt_tensor x, int64_t dim, cxt_tensor *out) { CXT_TRY(put(out, at::softmax(T(x), dim))) }
int cxt_bce_with_logits(cxt_tensor logits, cxt_tensor target, cxt_tensor weight,
                        cxt_tensor pos_weight, cxt_loss_reduction reduction, cxt_tensor *out) {
  CXT_TRY({
    if (reduction < CXT_REDUCTION_NONE || reduction > CXT_REDUCTION_SUM)
      throw Fail("reduction must be 0 (none), 1 (mean) or 2 (sum)");
    put(out, at::binary_cross_entropy_with_logits(T(logits), T(target), opt(weight), opt(pos_weight),
                                                  reduction));
  })
}
int cxt_affine_grid(cxt_tensor theta, const int64_t *size, int ndim, int align_corners,
                    cxt_tensor *out) {
  CXT_TRY(put(out, at::affine_grid_generator(T(theta), ints(size, ndim), align_corners != 0)))
}
int cxt_grid_sample(cxt_tensor x, cxt_tensor grid, cxt_grid_mode mode, cxt_grid_padding padding,
                    int align_corners, cxt_tensor *out) {
  CXT_TRY({
    if (mode < CXT_GRID_BILINEAR || mode > CXT_GRID_BICUBIC) throw Fail("grid_sample mode must be 0 bilinear, 1 nearest, 2 bicubic");
    if (padding < CXT_GRID_PAD_ZEROS || padding > CXT_GRID_PAD_REFLECTION) throw Fail("grid_sample padding must be 0 zeros, 1 border, 2 reflection");
    put(out, at::grid_sampler(T(x), T(grid), mode, padding, align_corners != 0));
  })
}
int cxt_pad(cxt_tensor x, const int64_t *pads, int npads, double value, cxt_tensor *out) {
  CXT_TRY(put(out, at::constant_pad_nd(T(x), ints(pads, npads), value)))
}
int cxt_interpolate(cxt_tensor x, int64_t h, int64_t w, cxt_interp_mode mode, int align_corners,
                    int antialias, cxt_tensor *out) {
  CXT_TRY({
    const auto &t = T(x);
    std::vector<int64_t> sz{h, w};
    switch (mode) {
      case CXT_INTERP_BILINEAR:
        put(out, antialias ? at::_upsample_bilinear2d_aa(t, sz, align_corners != 0)
                           : at::upsample_bilinear2d(t, sz, align_corners != 0));
        break;
      case CXT_INTERP_NEAREST: put(out, at::upsample_nearest2d(t, sz)); break;
      case CXT_INTERP_AREA: put(out, at::adaptive_avg_pool2d(t, sz)); break;
      case CXT_INTERP_BICUBIC:
        put(out, antialias ? at::_upsample_bicubic2d_aa(t, sz, align_corners != 0)
                           : at::upsample_bicubic2d(t, sz, align_corners != 0));
        break;
      default: throw Fail("interpolate mode must be 0 bilinear, 1 nearest, 2 area, 3 bicubic");
    }
  })
}

// ---- random -----------------------------------------------------------------------
int cxt_generator_new(uint64_t seed, cxt_device_type device_type, int device_index, cxt_generator *out) {
  CXT_TRY({
    auto dev = to_device(device_type, device_index);
    auto g = at::globalContext().defaultGenerator(dev).clone();
    {
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_current_seed(seed);
    }
    *out = new cxt_generator_s{g};
  })
}
int cxt_generator_free(cxt_generator g) { CXT_TRY(delete g) }
int cxt_generator_default(cxt_device_type device_type, int device_index, cxt_generator *out) {
  CXT_TRY(*out = new cxt_generator_s{at::globalContext().defaultGenerator(to_device(device_type, device_index))})
}
int cxt_generator_get_state(cxt_generator g, cxt_tensor *out) {
  CXT_TRY({
    if (!g) throw Fail("null generator");
    std::lock_guard<std::mutex> lock(g->g.mutex());
    put(out, g->g.get_state());
  })
}
int cxt_generator_set_state(cxt_generator g, cxt_tensor state) {
  CXT_TRY({
    if (!g) throw Fail("null generator");
    std::lock_guard<std::mutex> lock(g->g.mutex());
    g->g.set_state(T(state));
  })
}
int cxt_rand(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type, int device_index,
             cxt_generator g, cxt_tensor *out) {
  CXT_TRY(put(out, at::rand(ints(shape, ndim), gen(g),
                            at::TensorOptions().dtype(to_scalar(dtype)).device(to_device(device_type, device_index)))))
}
int cxt_randn(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type, int device_index,
              cxt_generator g, cxt_tensor *out) {
  CXT_TRY(put(out, at::randn(ints(shape, ndim), gen(g),
                             at::TensorOptions().dtype(to_scalar(dtype)).device(to_device(device_type, device_index)))))
}
int cxt_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, cxt_device_type device_type,
                int device_index, cxt_generator g, cxt_tensor *out) {
  CXT_TRY(put(out, at::randint(lo, hi, ints(shape, ndim), gen(g),
                               at::TensorOptions().dtype(at::kLong).device(to_device(device_type, device_index)))))
}
int cxt_randperm(int64_t n, cxt_device_type device_type, int device_index, cxt_generator g, cxt_tensor *out) {
  CXT_TRY(put(out, at::randperm(n, gen(g), at::TensorOptions().dtype(at::kLong).device(to_device(device_type, device_index)))))
}
int cxt_bernoulli(cxt_tensor p, cxt_generator g, cxt_tensor *out) { CXT_TRY(put(out, at::bernoulli(T(p), gen(g)))) }
int cxt_standard_gamma(cxt_tensor alpha, cxt_generator g, cxt_tensor *out) {
  CXT_TRY(put(out, at::_standard_gamma(T(alpha), gen(g))))
}

// ---- autograd ---------------------------------------------------------------------
int cxt_tensor_set_requires_grad(cxt_tensor t, int requires_grad) {
  CXT_TRY({ auto x = T(t); x.set_requires_grad(requires_grad != 0); })
}
int cxt_tensor_requires_grad(cxt_tensor t, int *out) { CXT_TRY(*out = T(t).requires_grad() ? 1 : 0) }
int cxt_tensor_backward(cxt_tensor t, cxt_tensor grad, int retain_graph) {
  CXT_TRY({
    auto x = T(t);
    x.backward(grad ? T(grad) : at::Tensor(), retain_graph != 0, false);
  })
}
int cxt_tensor_grad(cxt_tensor t, cxt_tensor *out) {
  CXT_TRY({
    const auto &g = T(t).grad();
    if (g.defined()) put(out, g);
    else *out = nullptr;
  })
}
int cxt_tensor_set_grad(cxt_tensor t, cxt_tensor grad) {
  CXT_TRY({
    auto x = T(t);
    x.mutable_grad() = grad ? T(grad) : at::Tensor();
  })
}
int cxt_tensor_has_grad_fn(cxt_tensor t, int *out) { CXT_TRY(*out = T(t).grad_fn() ? 1 : 0) }
int cxt_grad_mode_set(int enabled, int *previous) {
  CXT_TRY({
    if (previous) *previous = c10::GradMode::is_enabled() ? 1 : 0;
    c10::GradMode::set_enabled(enabled != 0);
  })
}
int cxt_grad_mode_get(int *out) { CXT_TRY(*out = c10::GradMode::is_enabled() ? 1 : 0) }

// Autocast per device type: the device-generic calls since libtorch 2.4; before that, one call
// per device (CUDA's named "gpu"), and only CPU and CUDA.
namespace {
#if CXT_TORCH_AT_LEAST(2, 4)
bool autocast_enabled(at::DeviceType dt) { return at::autocast::is_autocast_enabled(dt); }
at::ScalarType autocast_dtype(at::DeviceType dt) { return at::autocast::get_autocast_dtype(dt); }
void set_autocast(at::DeviceType dt, bool on, at::ScalarType dtype) {
  at::autocast::set_autocast_enabled(dt, on);
  at::autocast::set_autocast_dtype(dt, dtype);
}
#else
bool autocast_enabled(at::DeviceType dt) {
  return dt == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
at::ScalarType autocast_dtype(at::DeviceType dt) {
  return dt == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast(at::DeviceType dt, bool on, at::ScalarType dtype) {
  if (dt == at::kCUDA) {
    at::autocast::set_enabled(on);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(on);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif
}  // namespace

int cxt_autocast_enter(cxt_device_type device_type, int enabled, cxt_dtype dtype, int *prev_enabled,
                       cxt_dtype *prev_dtype) {
  CXT_TRY({
    auto dt = to_device_type(device_type);
    *prev_enabled = autocast_enabled(dt) ? 1 : 0;
    *prev_dtype = from_scalar(autocast_dtype(dt));
    set_autocast(dt, enabled != 0, to_scalar(dtype));
    at::autocast::increment_nesting();
  })
}
int cxt_autocast_exit(cxt_device_type device_type, int prev_enabled, cxt_dtype prev_dtype) {
  CXT_TRY({
    auto dt = to_device_type(device_type);
    // Cast weights are cached while any autocast region is open; drop them on the way out.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast(dt, prev_enabled != 0, to_scalar(prev_dtype));
  })
}

// ---- _foreach_ ----------------------------------------------------------------------
int cxt_foreach_mul_scalar_(const cxt_tensor *ts, int n, double s) { CXT_TRY(at::_foreach_mul_(list(ts, n), s)) }
int cxt_foreach_add_scalar_(const cxt_tensor *ts, int n, double s) { CXT_TRY(at::_foreach_add_(list(ts, n), s)) }
int cxt_foreach_add_list_(const cxt_tensor *ts, const cxt_tensor *others, int n, double alpha) {
  CXT_TRY(at::_foreach_add_(list(ts, n), list(others, n), alpha))
}
int cxt_foreach_mul_list_(const cxt_tensor *ts, const cxt_tensor *others, int n) {
  CXT_TRY(at::_foreach_mul_(list(ts, n), list(others, n)))
}
// _foreach_lerp_, _foreach_sign_ and _foreach_copy_ are newer than libtorch 1.13 (2.0 to 2.1):
// below 2.2 they run tensor by tensor, with the same results (one kernel per tensor, not fused).
#if CXT_TORCH_AT_LEAST(2, 2)
int cxt_foreach_lerp_scalar_(const cxt_tensor *ts, const cxt_tensor *ends, int n, double weight) {
  CXT_TRY(at::_foreach_lerp_(list(ts, n), list(ends, n), weight))
}
int cxt_foreach_sign_(const cxt_tensor *ts, int n) { CXT_TRY(at::_foreach_sign_(list(ts, n))) }
int cxt_foreach_copy_(const cxt_tensor *dst, const cxt_tensor *src, int n) {
  CXT_TRY(at::_foreach_copy_(list(dst, n), list(src, n), false))
}
#else
int cxt_foreach_lerp_scalar_(const cxt_tensor *ts, const cxt_tensor *ends, int n, double weight) {
  CXT_TRY({
    auto v = list(ts, n), e = list(ends, n);
    for (int i = 0; i < n; ++i) v[i].lerp_(e[i], weight);
  })
}
int cxt_foreach_sign_(const cxt_tensor *ts, int n) {
  CXT_TRY(for (auto &t : list(ts, n)) t.sign_())
}
int cxt_foreach_copy_(const cxt_tensor *dst, const cxt_tensor *src, int n) {
  CXT_TRY({
    auto d = list(dst, n), s = list(src, n);
    for (int i = 0; i < n; ++i) d[i].copy_(s[i], false);
  })
}
#endif
int cxt_foreach_zero_(const cxt_tensor *ts, int n) { CXT_TRY(at::_foreach_zero_(list(ts, n))) }
int cxt_foreach_clone(const cxt_tensor *ts, int n, cxt_tensor *outs) {
  CXT_TRY({
    auto v = list(ts, n);
    std::vector<at::Tensor> r;
    r.reserve(v.size());
    for (auto &t : v) r.push_back(t.clone());
    for (int i = 0; i < n; ++i) outs[i] = new cxt_tensor_s{std::move(r[i])};
  })
}
int cxt_foreach_norm(const cxt_tensor *ts, int n, double ord, cxt_tensor *outs) {
  CXT_TRY({
    auto r = at::_foreach_norm(list(ts, n), ord);
    for (int i = 0; i < n; ++i) outs[i] = new cxt_tensor_s{std::move(r[i])};
  })
}

// ---- CUDA streams ---------------------------------------------------------------------
#ifdef CXT_WITH_CUDA
int cxt_stream_new(int device_index, cxt_stream *out) {
  CXT_TRY(*out = new cxt_stream_s{c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device_index))})
}
int cxt_stream_current(int device_index, cxt_stream *out) {
  CXT_TRY(*out = new cxt_stream_s{c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_index))})
}
int cxt_stream_free(cxt_stream s) { CXT_TRY(delete s) }
int cxt_stream_set_current(cxt_stream s) { CXT_TRY(c10::cuda::setCurrentCUDAStream(s->s)) }
int cxt_stream_synchronize(cxt_stream s) { CXT_TRY(s->s.synchronize()) }
int cxt_stream_wait_stream(cxt_stream waiter, cxt_stream s) {
  CXT_TRY({
    c10::Event ev(c10::DeviceType::CUDA);
    ev.record(s->s.unwrap());
    ev.block(waiter->s.unwrap());
  })
}
int cxt_tensor_record_stream(cxt_tensor t, cxt_stream s) {
  CXT_TRY({ auto x = T(t); x.record_stream(s->s.unwrap()); })
}
#else
#define CXT_NO_CUDA throw Fail("CUDA streams need a shim built against a CUDA libtorch")
int cxt_stream_new(int, cxt_stream *) { CXT_TRY(CXT_NO_CUDA) }
int cxt_stream_current(int, cxt_stream *) { CXT_TRY(CXT_NO_CUDA) }
int cxt_stream_free(cxt_stream s) { CXT_TRY(delete s) }
int cxt_stream_set_current(cxt_stream) { CXT_TRY(CXT_NO_CUDA) }
int cxt_stream_synchronize(cxt_stream) { CXT_TRY(CXT_NO_CUDA) }
int cxt_stream_wait_stream(cxt_stream, cxt_stream) { CXT_TRY(CXT_NO_CUDA) }
int cxt_tensor_record_stream(cxt_tensor, cxt_stream) { CXT_TRY(CXT_NO_CUDA) }
#endif

// ---- CUDA graphs ------------------------------------------------------------------------
#ifdef CXT_WITH_CUDA
namespace {
at::cuda::CUDAGraph &G(cxt_graph g) {
  if (!g || !g->g) throw Fail("null CUDA graph handle");
  return *g->g;
}
}  // namespace
int cxt_graph_new(cxt_graph *out) {
  CXT_TRY({
    if (!out) throw Fail("null output pointer");
    if (!at::hasCUDA()) throw Fail("CUDA graphs need a CUDA device, and none is available");
    *out = new cxt_graph_s{std::make_unique<at::cuda::CUDAGraph>()};
  })
}
int cxt_graph_free(cxt_graph g) { CXT_TRY(delete g) }
int cxt_graph_capture_begin(cxt_graph g) {
  CXT_TRY({
    auto &graph = G(g);
    if (c10::cuda::getCurrentCUDAStream() == c10::cuda::getDefaultCUDAStream())
      throw Fail("CUDA graph capture needs a side stream: make a non-default stream current first");
    graph.capture_begin();
  })
}
int cxt_graph_capture_end(cxt_graph g) { CXT_TRY(G(g).capture_end()) }
int cxt_graph_replay(cxt_graph g) { CXT_TRY(G(g).replay()) }
#else
#define CXT_NO_CUDA_GRAPH throw Fail("CUDA graphs need a shim built against a CUDA libtorch")
int cxt_graph_new(cxt_graph *) { CXT_TRY(CXT_NO_CUDA_GRAPH) }
int cxt_graph_free(cxt_graph g) { CXT_TRY(delete g) }
int cxt_graph_capture_begin(cxt_graph) { CXT_TRY(CXT_NO_CUDA_GRAPH) }
int cxt_graph_capture_end(cxt_graph) { CXT_TRY(CXT_NO_CUDA_GRAPH) }
int cxt_graph_replay(cxt_graph) { CXT_TRY(CXT_NO_CUDA_GRAPH) }
#endif

}  // extern "C"
