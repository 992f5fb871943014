/*
 * cxt — the C ABI between Swift and libtorch.
 *
 * Rules (see DESIGN.md):
 *  - every function returns a status: 0 on success, -1 on failure; on failure
 *    cxt_last_error() returns a thread-local message (valid until the next failing
 *    call on the same thread). No C++ exception crosses this boundary.
 *  - every handle returned through an out-parameter is owned by the caller and is
 *    freed exactly once with the matching _free function.
 *  - lists are pointer + length; optional tensors are NULL.
 *  - input handles are borrowed, never consumed.
 */
#ifndef CXT_H
#define CXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cxt_tensor_s *cxt_tensor;
typedef struct cxt_generator_s *cxt_generator;
typedef struct cxt_stream_s *cxt_stream;

/* Enumerations. Each is a named type used in every signature that takes or returns one; the
 * values are fixed (they cross the ABI as a C enum, i.e. an int). */
/* dtypes; CXT_DTYPE_KEEP only where a call says so (cxt_tensor_to) */
typedef enum cxt_dtype {
  CXT_DTYPE_KEEP = -1,
  CXT_F32 = 0, CXT_BF16 = 1, CXT_F16 = 2, CXT_U8 = 3, CXT_I64 = 4, CXT_BOOL = 5,
  CXT_F64 = 6, CXT_I32 = 7
} cxt_dtype;
/* device types; CXT_DEVICE_KEEP only where a call says so (cxt_tensor_to) */
typedef enum cxt_device_type { CXT_DEVICE_KEEP = -1, CXT_CPU = 0, CXT_CUDA = 1 } cxt_device_type;
/* memory formats */
typedef enum cxt_memory_format { CXT_CONTIGUOUS = 0, CXT_CHANNELS_LAST = 1 } cxt_memory_format;

/* ---- errors and runtime ------------------------------------------------- */
const char *cxt_last_error(void);
int cxt_version(char *buf, size_t len);             /* libtorch version string */
int cxt_cuda_is_available(int *out);
int cxt_cuda_device_count(int *out);
int cxt_cuda_synchronize(int device);
int cxt_has_cuda_build(int *out);                   /* shim compiled with CUDA support */
int cxt_cudnn_set_benchmark(int enabled);
int cxt_cudnn_get_benchmark(int *out);             /* torch.backends.cudnn.benchmark */
int cxt_set_num_threads(int n);
int cxt_get_num_threads(int *out);
int cxt_manual_seed(uint64_t seed);
/* CUDA caching allocator statistics (bytes); zeros on CPU-only builds */
int cxt_cuda_memory_stats(int device, int64_t *allocated, int64_t *peak);

/* ---- tensor lifetime and data ------------------------------------------ */
int cxt_tensor_free(cxt_tensor t);
/* copy `nbytes` from `data` into a new CPU tensor of shape/dtype */
int cxt_tensor_from_data(const void *data, size_t nbytes, const int64_t *shape, int ndim,
                         cxt_dtype dtype, cxt_tensor *out);
int cxt_tensor_empty(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type,
                     int device_index, int pinned, cxt_tensor *out);
int cxt_tensor_full(const int64_t *shape, int ndim, double value, cxt_dtype dtype,
                    cxt_device_type device_type, int device_index, cxt_tensor *out);
int cxt_tensor_arange(double start, double end, double step, cxt_dtype dtype,
                      cxt_device_type device_type, int device_index, cxt_tensor *out);
/* copy the (contiguous, CPU) values into dst; nbytes must equal numel*itemsize */
int cxt_tensor_copy_to_buffer(cxt_tensor t, void *dst, size_t nbytes);
int cxt_tensor_ndim(cxt_tensor t, int *out);
int cxt_tensor_shape(cxt_tensor t, int64_t *out, int cap); /* cap >= ndim */
int cxt_tensor_strides(cxt_tensor t, int64_t *out, int cap);
int cxt_tensor_dtype(cxt_tensor t, cxt_dtype *out);
int cxt_tensor_device(cxt_tensor t, cxt_device_type *type, int *index);
int cxt_tensor_numel(cxt_tensor t, int64_t *out);
int cxt_tensor_item(cxt_tensor t, double *out);
int cxt_tensor_is_contiguous(cxt_tensor t, cxt_memory_format memory_format, int *out);
int cxt_tensor_is_pinned(cxt_tensor t, int *out);
int cxt_tensor_same_storage(cxt_tensor a, cxt_tensor b, int *out);

/* ---- conversion and layout --------------------------------------------- */
/* CXT_DTYPE_KEEP keeps the dtype; CXT_DEVICE_KEEP keeps the device (device_index is then unused) */
int cxt_tensor_to(cxt_tensor t, cxt_device_type device_type, int device_index, cxt_dtype dtype,
                  int non_blocking, cxt_tensor *out);
int cxt_tensor_contiguous(cxt_tensor t, cxt_memory_format memory_format, cxt_tensor *out);
int cxt_tensor_clone(cxt_tensor t, cxt_tensor *out);
int cxt_tensor_detach(cxt_tensor t, cxt_tensor *out);
int cxt_tensor_pin_memory(cxt_tensor t, cxt_tensor *out);

/* ---- views and indexing ------------------------------------------------- */
int cxt_tensor_reshape(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out);
int cxt_tensor_view(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out);
int cxt_tensor_permute(cxt_tensor t, const int64_t *dims, int ndim, cxt_tensor *out);
int cxt_tensor_transpose(cxt_tensor t, int64_t d0, int64_t d1, cxt_tensor *out);
int cxt_tensor_slice(cxt_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step,
                     cxt_tensor *out);
int cxt_tensor_select(cxt_tensor t, int64_t dim, int64_t index, cxt_tensor *out);
int cxt_tensor_index_select(cxt_tensor t, int64_t dim, cxt_tensor index, cxt_tensor *out);
int cxt_tensor_cat(const cxt_tensor *ts, int n, int64_t dim, cxt_tensor *out);
int cxt_tensor_stack(const cxt_tensor *ts, int n, int64_t dim, cxt_tensor *out);
int cxt_tensor_expand(cxt_tensor t, const int64_t *shape, int ndim, cxt_tensor *out);
int cxt_tensor_unsqueeze(cxt_tensor t, int64_t dim, cxt_tensor *out);
int cxt_tensor_squeeze(cxt_tensor t, int64_t dim, cxt_tensor *out);
int cxt_tensor_flatten(cxt_tensor t, int64_t start, int64_t end, cxt_tensor *out);
int cxt_tensor_flip(cxt_tensor t, const int64_t *dims, int ndim, cxt_tensor *out);
int cxt_tensor_roll(cxt_tensor t, int64_t shift, int64_t dim, cxt_tensor *out);
int cxt_tensor_where(cxt_tensor cond, cxt_tensor a, cxt_tensor b, cxt_tensor *out);
int cxt_tensor_masked_fill(cxt_tensor t, cxt_tensor mask, double value, cxt_tensor *out);

/* ---- elementwise -------------------------------------------------------- */
typedef enum cxt_unary_op {
  CXT_NEG = 0, CXT_ABS, CXT_EXP, CXT_LOG, CXT_SQRT, CXT_RSQRT, CXT_SIGMOID, CXT_TANH,
  CXT_SIGN, CXT_RELU, CXT_GELU, CXT_GELU_TANH, CXT_FLOOR, CXT_CEIL, CXT_ROUND, CXT_SIN,
  CXT_COS, CXT_LOGICAL_NOT, CXT_ISNAN, CXT_ISFINITE, CXT_ERF, CXT_RECIPROCAL, CXT_SQUARE,
  CXT_LOG1P, CXT_LOGSIGMOID
} cxt_unary_op;
/* maximum, minimum, logical_and, logical_or, atan2: tensor-tensor only (maximum/minimum with a
 * scalar clamp) */
typedef enum cxt_binary_op {
  CXT_ADD = 0, CXT_SUB, CXT_MUL, CXT_DIV, CXT_POW, CXT_MAXIMUM, CXT_MINIMUM, CXT_EQ, CXT_NE,
  CXT_LT, CXT_LE, CXT_GT, CXT_GE, CXT_LOGICAL_AND, CXT_LOGICAL_OR, CXT_REMAINDER, CXT_ATAN2
} cxt_binary_op;
int cxt_tensor_unary(cxt_tensor t, cxt_unary_op op, cxt_tensor *out);
int cxt_tensor_binary(cxt_tensor a, cxt_tensor b, cxt_binary_op op, cxt_tensor *out);
int cxt_tensor_binary_scalar(cxt_tensor a, double s, cxt_binary_op op, cxt_tensor *out);
/* s op a, for the ops where order matters (sub, div, pow) */
int cxt_scalar_binary_tensor(double s, cxt_tensor a, cxt_binary_op op, cxt_tensor *out);
int cxt_tensor_clamp(cxt_tensor t, double lo, double hi, cxt_tensor *out); /* NaN bound = none */
int cxt_tensor_lerp(cxt_tensor a, cxt_tensor b, double weight, cxt_tensor *out);
int cxt_tensor_addcmul(cxt_tensor t, cxt_tensor a, cxt_tensor b, double value, cxt_tensor *out);

/* in place (on tensors that need no grad, or inside no-grad) */
int cxt_tensor_copy_(cxt_tensor dst, cxt_tensor src, int non_blocking);
int cxt_tensor_fill_(cxt_tensor t, double value);
int cxt_tensor_mul_scalar_(cxt_tensor t, double s);
int cxt_tensor_add_(cxt_tensor t, cxt_tensor other, double alpha);
int cxt_tensor_add_scalar_(cxt_tensor t, double s);
int cxt_tensor_clamp_(cxt_tensor t, double lo, double hi);
int cxt_tensor_bernoulli_(cxt_tensor t, double p, cxt_generator g);
int cxt_tensor_uniform_(cxt_tensor t, double lo, double hi, cxt_generator g);
int cxt_tensor_normal_(cxt_tensor t, double mean, double std, cxt_generator g);
int cxt_tensor_trunc_normal_(cxt_tensor t, double std, double a, double b, cxt_generator g);

/* ---- reductions --------------------------------------------------------- */
typedef enum cxt_reduce_op {
  CXT_SUM = 0, CXT_MEAN, CXT_AMAX, CXT_AMIN, CXT_PROD, CXT_VAR, CXT_STD
} cxt_reduce_op;
/* dims NULL/ndims 0 = all dims */
int cxt_tensor_reduce(cxt_tensor t, cxt_reduce_op op, const int64_t *dims, int ndims, int keepdim,
                      cxt_tensor *out);
int cxt_tensor_argmax(cxt_tensor t, int64_t dim, int keepdim, cxt_tensor *out);
int cxt_tensor_cumsum(cxt_tensor t, int64_t dim, cxt_tensor *out);
int cxt_tensor_sort(cxt_tensor t, int64_t dim, int descending, int stable, cxt_tensor *values,
                    cxt_tensor *indices);
int cxt_tensor_histc(cxt_tensor t, int64_t bins, double lo, double hi, cxt_tensor *out);
int cxt_tensor_gather(cxt_tensor t, int64_t dim, cxt_tensor index, cxt_tensor *out);
int cxt_tensor_all_finite(cxt_tensor t, int *out);
int cxt_tensor_equal(cxt_tensor a, cxt_tensor b, int *out);

/* ---- neural network primitives ----------------------------------------- */
int cxt_matmul(cxt_tensor a, cxt_tensor b, cxt_tensor *out);
int cxt_linear(cxt_tensor x, cxt_tensor w, cxt_tensor b /* nullable */, cxt_tensor *out);
int cxt_conv2d(cxt_tensor x, cxt_tensor w, cxt_tensor b /* nullable */, const int64_t *stride,
               const int64_t *padding, const int64_t *dilation, int64_t groups, cxt_tensor *out);
int cxt_layer_norm(cxt_tensor x, const int64_t *shape, int ndim, cxt_tensor w, cxt_tensor b,
                   double eps, cxt_tensor *out);
int cxt_adaptive_avg_pool2d(cxt_tensor x, int64_t h, int64_t w, cxt_tensor *out);
int cxt_avg_pool2d(cxt_tensor x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, cxt_tensor *out);
int cxt_dropout(cxt_tensor x, double p, int train, cxt_tensor *out);
int cxt_softmax(cxt_tensor x, int64_t dim, cxt_tensor *out);
/* a loss's reduction, as torch.nn.functional's `reduction=` */
typedef enum cxt_loss_reduction {
  CXT_REDUCTION_NONE = 0, CXT_REDUCTION_MEAN = 1, CXT_REDUCTION_SUM = 2
} cxt_loss_reduction;
/* weight and pos_weight nullable */
int cxt_bce_with_logits(cxt_tensor logits, cxt_tensor target, cxt_tensor weight,
                        cxt_tensor pos_weight, cxt_loss_reduction reduction, cxt_tensor *out);
int cxt_affine_grid(cxt_tensor theta, const int64_t *size, int ndim, int align_corners,
                    cxt_tensor *out);
/* grid_sample's mode and padding_mode */
typedef enum cxt_grid_mode {
  CXT_GRID_BILINEAR = 0, CXT_GRID_NEAREST = 1, CXT_GRID_BICUBIC = 2
} cxt_grid_mode;
typedef enum cxt_grid_padding {
  CXT_GRID_PAD_ZEROS = 0, CXT_GRID_PAD_BORDER = 1, CXT_GRID_PAD_REFLECTION = 2
} cxt_grid_padding;
int cxt_grid_sample(cxt_tensor x, cxt_tensor grid, cxt_grid_mode mode, cxt_grid_padding padding,
                    int align_corners, cxt_tensor *out);
/* constant padding: pads lists (last dim first), like torch.nn.functional.pad */
int cxt_pad(cxt_tensor x, const int64_t *pads, int npads, double value, cxt_tensor *out);
/* interpolate's mode (area is adaptive average pooling); antialias for bilinear/bicubic */
typedef enum cxt_interp_mode {
  CXT_INTERP_BILINEAR = 0, CXT_INTERP_NEAREST = 1, CXT_INTERP_AREA = 2, CXT_INTERP_BICUBIC = 3
} cxt_interp_mode;
int cxt_interpolate(cxt_tensor x, int64_t h, int64_t w, cxt_interp_mode mode, int align_corners,
                    int antialias, cxt_tensor *out);

/* ---- random numbers from seeded generators ----------------------------- */
int cxt_generator_new(uint64_t seed, cxt_device_type device_type, int device_index,
                      cxt_generator *out);
int cxt_generator_free(cxt_generator g);
int cxt_generator_get_state(cxt_generator g, cxt_tensor *out);   /* u8 tensor */
int cxt_generator_set_state(cxt_generator g, cxt_tensor state);
/* g may be NULL: the default generator of the device */
int cxt_rand(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type,
             int device_index, cxt_generator g, cxt_tensor *out);
int cxt_randn(const int64_t *shape, int ndim, cxt_dtype dtype, cxt_device_type device_type,
              int device_index, cxt_generator g, cxt_tensor *out);
int cxt_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, cxt_device_type device_type,
                int device_index, cxt_generator g, cxt_tensor *out);
int cxt_randperm(int64_t n, cxt_device_type device_type, int device_index, cxt_generator g,
                 cxt_tensor *out);
int cxt_bernoulli(cxt_tensor p, cxt_generator g, cxt_tensor *out);
/* Gamma(alpha, 1) samples, elementwise; Beta(a,b) = X/(X+Y) with X~G(a), Y~G(b) */
int cxt_standard_gamma(cxt_tensor alpha, cxt_generator g, cxt_tensor *out);
/* a handle that shares the device's default generator (what ops use when given NULL), so
 * its state can be saved and restored; free it with cxt_generator_free (the default stays) */
int cxt_generator_default(cxt_device_type device_type, int device_index, cxt_generator *out);

/* ---- autograd ----------------------------------------------------------- */
int cxt_tensor_set_requires_grad(cxt_tensor t, int requires_grad);
int cxt_tensor_requires_grad(cxt_tensor t, int *out);
int cxt_tensor_backward(cxt_tensor t, cxt_tensor grad /* nullable */, int retain_graph);
/* *out = NULL when the tensor has no gradient */
int cxt_tensor_grad(cxt_tensor t, cxt_tensor *out);
int cxt_tensor_set_grad(cxt_tensor t, cxt_tensor grad /* nullable: clears */);
int cxt_tensor_has_grad_fn(cxt_tensor t, int *out);
/* thread-local grad mode; returns the previous mode through *previous */
int cxt_grad_mode_set(int enabled, int *previous);
int cxt_grad_mode_get(int *out);
/* autocast: enter pushes a nesting level with (enabled, dtype) for a device type and
 * returns the previous (enabled, dtype) to pass back to exit */
int cxt_autocast_enter(cxt_device_type device_type, int enabled, cxt_dtype dtype, int *prev_enabled,
                       cxt_dtype *prev_dtype);
int cxt_autocast_exit(cxt_device_type device_type, int prev_enabled, cxt_dtype prev_dtype);

/* ---- multi-tensor (_foreach_) ops for optimizers ------------------------ */
int cxt_foreach_mul_scalar_(const cxt_tensor *ts, int n, double s);
int cxt_foreach_add_scalar_(const cxt_tensor *ts, int n, double s);
int cxt_foreach_add_list_(const cxt_tensor *ts, const cxt_tensor *others, int n, double alpha);
int cxt_foreach_mul_list_(const cxt_tensor *ts, const cxt_tensor *others, int n);
int cxt_foreach_lerp_scalar_(const cxt_tensor *ts, const cxt_tensor *ends, int n, double weight);
int cxt_foreach_sign_(const cxt_tensor *ts, int n);
int cxt_foreach_copy_(const cxt_tensor *dst, const cxt_tensor *src, int n);
int cxt_foreach_zero_(const cxt_tensor *ts, int n);
/* outs: caller-provided array of n handles, each to be freed */
int cxt_foreach_clone(const cxt_tensor *ts, int n, cxt_tensor *outs);
int cxt_foreach_norm(const cxt_tensor *ts, int n, double ord, cxt_tensor *outs);

/* ---- CUDA streams and events (no-ops / errors on CPU-only builds) ------- */
int cxt_stream_new(int device_index, cxt_stream *out);
int cxt_stream_current(int device_index, cxt_stream *out);
int cxt_stream_free(cxt_stream s);
int cxt_stream_set_current(cxt_stream s);
int cxt_stream_synchronize(cxt_stream s);
/* make `waiter` wait for all work queued on `s` so far */
int cxt_stream_wait_stream(cxt_stream waiter, cxt_stream s);
/* tell the caching allocator that t is used on stream s */
int cxt_tensor_record_stream(cxt_tensor t, cxt_stream s);

/* ---- CUDA graphs (capture a static-shape step once, replay it) ----------
 * Errors on CPU-only builds. Capture records the work queued on the *current*
 * stream, which must not be the default stream (make a side stream current first);
 * warm the captured code up on that stream before capturing. Tensors used inside
 * must keep their storage alive between replays (copy new inputs into them). */
typedef struct cxt_graph_s *cxt_graph;
int cxt_graph_new(cxt_graph *out);
int cxt_graph_free(cxt_graph g);
int cxt_graph_capture_begin(cxt_graph g);
int cxt_graph_capture_end(cxt_graph g);
int cxt_graph_replay(cxt_graph g);

/* ---- data-parallel training (c10d: PyTorch's own distributed engine) -----
 * A process group over a TCPStore rendezvous: Gloo for CPU tensors, NCCL for CUDA tensors when
 * the shim has CUDA and libtorch has NCCL. Built only where Gloo's headers were found
 * (libgloo-dev); elsewhere every cxt_dist_ call fails with a message that says so.
 * Collectives are asynchronous: they return a work handle to wait on (with a timeout) and
 * free. A peer that died or stopped answering makes the wait fail within the group's timeout,
 * never hang. */
typedef struct cxt_dist_group_s *cxt_dist_group;
typedef struct cxt_dist_work_s *cxt_dist_work;
typedef struct cxt_dist_reducer_s *cxt_dist_reducer;
typedef enum cxt_dist_backend { CXT_DIST_GLOO = 0, CXT_DIST_NCCL = 1 } cxt_dist_backend;
typedef enum cxt_dist_op { CXT_DIST_SUM = 0, CXT_DIST_MAX = 1, CXT_DIST_MIN = 2 } cxt_dist_op;
/* *out = 1 when this shim can make a group with `backend` */
int cxt_dist_available(cxt_dist_backend backend, int *out);
/* Rendezvous at host:port (the TCPStore; hosted here when is_server, which waits until all
 * world_size processes joined or timeout_s passed), then a process group. gloo_interface
 * (nullable) names the network interface Gloo uses (GLOO_SOCKET_IFNAME), else the address the
 * host name resolves to. store_prefix (nullable) namespaces the keys in a shared store. */
int cxt_dist_init(const char *host, int port, int is_server, int world_size, int rank,
                  cxt_dist_backend backend, const char *gloo_interface, const char *store_prefix,
                  double timeout_s, cxt_dist_group *out);
int cxt_dist_free(cxt_dist_group g);              /* shuts the group down */
int cxt_dist_rank(cxt_dist_group g, int *rank, int *world_size);
/* in place, coalesced: tensors of one dtype and device are flattened into one buffer,
 * reduced, and copied back when the work is waited on */
int cxt_dist_allreduce(cxt_dist_group g, const cxt_tensor *ts, int n, cxt_dist_op op,
                       cxt_dist_work *out);
/* in place: every rank's tensors take root's values */
int cxt_dist_broadcast(cxt_dist_group g, const cxt_tensor *ts, int n, int root, cxt_dist_work *out);
/* output: world_size * numel(input) elements of input's dtype; rank r's at [r*numel, (r+1)*numel) */
int cxt_dist_allgather(cxt_dist_group g, cxt_tensor input, cxt_tensor output, cxt_dist_work *out);
int cxt_dist_barrier(cxt_dist_group g, cxt_dist_work *out);
/* waits for the work (timeout_s <= 0: the group's timeout); fails with the peer's error */
int cxt_dist_work_wait(cxt_dist_work w, double timeout_s);
int cxt_dist_work_free(cxt_dist_work w);
/* the rendezvous store: small values under string keys, shared by all ranks */
int cxt_dist_store_set(cxt_dist_group g, const char *key, const void *value, size_t len);
/* waits up to timeout_s for the key; *len is the value's size (at most cap bytes are copied) */
int cxt_dist_store_get(cxt_dist_group g, const char *key, double timeout_s, void *buf, size_t cap,
                       size_t *len);
int cxt_dist_store_check(cxt_dist_group g, const char *key, int *out);
/* DistributedDataParallel's gradient engine (c10d::Reducer): the parameters' gradients are
 * averaged over the ranks in buckets of bucket_bytes (the first bucket 1 MiB, as DDP), each
 * bucket all-reduced by autograd hooks while backward still runs. Call prepare before each
 * backward: sync 0 is DDP's no_sync (gradients accumulate locally, nothing is sent). */
int cxt_dist_reducer_new(cxt_dist_group g, const cxt_tensor *params, int n, int64_t bucket_bytes,
                         cxt_dist_reducer *out);
int cxt_dist_reducer_prepare(cxt_dist_reducer r, int sync);
int cxt_dist_reducer_free(cxt_dist_reducer r);

#ifdef __cplusplus
}
#endif
#endif
