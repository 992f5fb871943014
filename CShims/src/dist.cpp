// Data-parallel training through c10d, the engine torch.distributed runs on: a TCPStore
// rendezvous, ProcessGroupGloo (CPU tensors) and ProcessGroupNCCL (CUDA tensors, when the shim
// has CUDA and libtorch has NCCL), and DistributedDataParallel's Reducer for the gradients.
// Compiled with -DCXT_WITH_DIST where Gloo's headers exist (Debian's libgloo-dev; the pip
// wheel ships c10d's headers but not Gloo's). c10d's headers hold Gloo's types only behind
// pointers (shared_ptr/unique_ptr), so an older Gloo snapshot's headers give the same layout of
// every c10d object this file allocates; and only cxt_* symbols leave libcxt.so (the version
// script in shim.mk), so no inline Gloo code of ours can stand in for libtorch's.
#include "internal.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

#ifdef CXT_WITH_DIST
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#if defined(CXT_WITH_CUDA) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define CXT_WITH_NCCL 1
#endif
#endif

using namespace cxt_internal;

#ifdef CXT_WITH_DIST
struct cxt_dist_group_s {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0, world = 1;
  std::chrono::milliseconds timeout{0};
};

// One collective in flight. Coalesced collectives reduce a flat buffer; the tensors it was made
// from get their values back when the work is waited on.
struct cxt_dist_work_s {
  c10::intrusive_ptr<c10d::Work> work;
  at::Tensor flat;
  std::vector<at::Tensor> targets;
  std::chrono::milliseconds timeout{0};
  bool finished = false;
};

struct cxt_dist_reducer_s {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::unique_ptr<c10d::Reducer> reducer;
};
#else
struct cxt_dist_group_s { int unused; };
struct cxt_dist_work_s { int unused; };
struct cxt_dist_reducer_s { int unused; };
#endif

namespace {
#ifdef CXT_WITH_DIST
std::chrono::milliseconds millis(double seconds) {
  if (!(seconds > 0)) throw Fail("the timeout must be a positive number of seconds");
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

c10d::ProcessGroup &group(cxt_dist_group g) {
  if (!g || !g->pg) throw Fail("null process group handle");
  return *g->pg;
}

c10d::ReduceOp reduce_op(cxt_dist_op op) {
  switch (op) {
    case CXT_DIST_SUM: return c10d::ReduceOp::SUM;
    case CXT_DIST_MAX: return c10d::ReduceOp::MAX;
    case CXT_DIST_MIN: return c10d::ReduceOp::MIN;
    default: break;
  }
  throw Fail("unknown reduction " + std::to_string(static_cast<int>(op)));
}

// One contiguous buffer for tensors of one dtype and device (the tensor itself when it is a
// single contiguous one: then the collective works in place and nothing is copied back).
at::Tensor coalesce(const std::vector<at::Tensor> &v, bool &copy_back) {
  if (v.empty()) throw Fail("a collective needs at least one tensor");
  for (const auto &t : v) {
    if (t.scalar_type() != v[0].scalar_type() || t.device() != v[0].device())
      throw Fail("a coalesced collective takes tensors of one dtype and device (got " +
                 std::string(c10::toString(t.scalar_type())) + " on " + t.device().str() + " beside " +
                 c10::toString(v[0].scalar_type()) + " on " + v[0].device().str() + ")");
  }
  if (v.size() == 1 && v[0].is_contiguous()) { copy_back = false; return v[0]; }
  copy_back = true;
  std::vector<at::Tensor> flat;
  flat.reserve(v.size());
  for (const auto &t : v) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

cxt_dist_work_s *launch(cxt_dist_group g, c10::intrusive_ptr<c10d::Work> w, at::Tensor flat,
                        std::vector<at::Tensor> targets) {
  auto *out = new cxt_dist_work_s();
  out->work = std::move(w);
  out->flat = std::move(flat);
  out->targets = std::move(targets);
  out->timeout = g->timeout;
  return out;
}
#endif

[[noreturn, maybe_unused]] void off() {
  throw Fail("distributed training is off: this libcxt.so was built without Gloo's headers "
             "(install Debian's libgloo-dev, then rebuild the shim with `make shim`)");
}
}  // namespace

extern "C" {

int cxt_dist_available(cxt_dist_backend backend, int *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
#ifdef CXT_WITH_NCCL
    *out = 1;
#else
    *out = backend == CXT_DIST_GLOO ? 1 : 0;
#endif
#else
    *out = 0;
#endif
  })
}

int cxt_dist_init(const char *host, int port, int is_server, int world_size, int rank,
                  cxt_dist_backend backend, const char *gloo_interface, const char *store_prefix,
                  double timeout_s, cxt_dist_group *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    if (!host || !*host) throw Fail("the rendezvous host is empty");
    if (port <= 0 || port > 65535) throw Fail("the rendezvous port " + std::to_string(port) + " is not a TCP port");
    if (world_size < 1 || rank < 0 || rank >= world_size)
      throw Fail("rank " + std::to_string(rank) + " is not in a world of size " + std::to_string(world_size));
    auto timeout = millis(timeout_s);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = is_server != 0;
    // As torch.distributed's env:// rendezvous: every process counts itself in, the server
    // waits until all world_size have.
    so.numWorkers = static_cast<std::size_t>(world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(host, so);
    if (store_prefix && *store_prefix) store = c10::make_intrusive<c10d::PrefixStore>(store_prefix, store);
    auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world_size);

    auto gopts = c10d::ProcessGroupGloo::Options::create(timeout);
    gopts->devices.push_back(gloo_interface && *gloo_interface
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(gloo_interface)
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo/", store), rank, world_size, gopts);
    pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::GLOO, gloo);
    if (backend == CXT_DIST_NCCL) {
#ifdef CXT_WITH_NCCL
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = timeout;
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl/", store), rank, world_size, nopts);
      pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::NCCL, nccl);
      pg->setDefaultBackend(c10d::ProcessGroup::NCCL);
#else
      throw Fail("NCCL is not available: this libcxt.so was built without CUDA or libtorch without NCCL; use the Gloo backend");
#endif
    } else {
#ifdef CXT_WITH_CUDA
      pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::GLOO, gloo);
#endif
      pg->setDefaultBackend(c10d::ProcessGroup::GLOO);
    }
    auto *g = new cxt_dist_group_s();
    g->store = store;
    g->pg = pg;
    g->rank = rank;
    g->world = world_size;
    g->timeout = timeout;
    *out = g;
#else
    off();
#endif
  })
}

int cxt_dist_free(cxt_dist_group g) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    if (g) {
      try { if (g->pg) g->pg->shutdown(); } catch (...) {}
      delete g;
    }
#endif
  })
}

int cxt_dist_rank(cxt_dist_group g, int *rank, int *world_size) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    group(g);
    *rank = g->rank;
    *world_size = g->world;
#else
    off();
#endif
  })
}

int cxt_dist_allreduce(cxt_dist_group g, const cxt_tensor *ts, int n, cxt_dist_op op, cxt_dist_work *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    auto v = list(ts, n);
    bool copy_back = false;
    auto flat = coalesce(v, copy_back);
    std::vector<at::Tensor> io{flat};
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    o.timeout = g->timeout;
    auto w = group(g).allreduce(io, o);
    *out = launch(g, w, flat, copy_back ? v : std::vector<at::Tensor>{});
#else
    off();
#endif
  })
}

int cxt_dist_broadcast(cxt_dist_group g, const cxt_tensor *ts, int n, int root, cxt_dist_work *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    auto v = list(ts, n);
    if (root < 0 || root >= g->world) throw Fail("broadcast root " + std::to_string(root) + " is not a rank");
    bool copy_back = false;
    auto flat = coalesce(v, copy_back);
    std::vector<at::Tensor> io{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = g->timeout;
    auto w = group(g).broadcast(io, o);
    *out = launch(g, w, flat, copy_back ? v : std::vector<at::Tensor>{});
#else
    off();
#endif
  })
}

int cxt_dist_allgather(cxt_dist_group g, cxt_tensor input, cxt_tensor output, cxt_dist_work *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    auto in = T(input).contiguous();
    const auto &o = T(output);
    if (!o.is_contiguous()) throw Fail("all-gather: the output tensor must be contiguous");
    if (o.scalar_type() != in.scalar_type()) throw Fail("all-gather: the output's dtype differs from the input's");
    if (o.numel() != in.numel() * g->world)
      throw Fail("all-gather: the output has " + std::to_string(o.numel()) + " elements, world size x input is " +
                 std::to_string(in.numel() * g->world));
    auto flat = o.reshape({-1});
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < g->world; ++r) outs[0].push_back(flat.narrow(0, r * in.numel(), in.numel()).view(in.sizes()));
    std::vector<at::Tensor> ins{in};
    c10d::AllgatherOptions ao;
    ao.timeout = g->timeout;
    auto w = group(g).allgather(outs, ins, ao);
    *out = launch(g, w, at::Tensor(), {});
#else
    off();
#endif
  })
}

int cxt_dist_barrier(cxt_dist_group g, cxt_dist_work *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    c10d::BarrierOptions o;
    o.timeout = g->timeout;
    auto w = group(g).barrier(o);
    *out = launch(g, w, at::Tensor(), {});
#else
    off();
#endif
  })
}

int cxt_dist_work_wait(cxt_dist_work w, double timeout_s) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    if (!w || !w->work) throw Fail("null work handle");
    if (w->finished) return 0;
    auto t = timeout_s > 0 ? millis(timeout_s) : w->timeout;
    if (!w->work->wait(t)) throw Fail("the collective did not finish within its timeout");
    if (!w->targets.empty()) {
      int64_t offset = 0;
      for (auto &t2 : w->targets) {
        auto n = t2.numel();
        t2.copy_(w->flat.narrow(0, offset, n).view(t2.sizes()));
        offset += n;
      }
    }
    w->finished = true;
#else
    off();
#endif
  })
}

int cxt_dist_work_free(cxt_dist_work w) {
  CXT_TRY({ delete w; })
}

int cxt_dist_store_set(cxt_dist_group g, const char *key, const void *value, size_t len) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    group(g);
    const auto *p = static_cast<const uint8_t *>(value);
    g->store->set(key, std::vector<uint8_t>(p, p + len));
#else
    off();
#endif
  })
}

int cxt_dist_store_get(cxt_dist_group g, const char *key, double timeout_s, void *buf, size_t cap, size_t *len) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    group(g);
    g->store->wait({key}, millis(timeout_s));
    auto v = g->store->get(key);
    *len = v.size();
    std::memcpy(buf, v.data(), std::min(cap, v.size()));
#else
    off();
#endif
  })
}

int cxt_dist_store_check(cxt_dist_group g, const char *key, int *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    group(g);
    *out = g->store->check({key}) ? 1 : 0;
#else
    off();
#endif
  })
}

int cxt_dist_reducer_new(cxt_dist_group g, const cxt_tensor *params, int n, int64_t bucket_bytes,
                         cxt_dist_reducer *out) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    group(g);
    auto ps = list(params, n);
    if (ps.empty()) throw Fail("the reducer needs at least one parameter");
    if (bucket_bytes < 1) throw Fail("the bucket size must be positive");
    // As DistributedDataParallel without unused parameters: one bucket for the first iteration,
    // rebuilt from the order the gradients really arrive in (first bucket 1 MiB, the others
    // bucket_bytes), the bucket list reversed to match backward's order.
    c10d::verify_params_across_processes(g->pg, ps, std::nullopt);
    auto assignment = c10d::compute_bucket_assignment_by_size(
        ps, std::vector<size_t>{std::numeric_limits<size_t>::max()}, std::vector<bool>(ps.size(), false));
    auto indices = std::get<0>(assignment);
    std::reverse(indices.begin(), indices.end());
    auto *r = new cxt_dist_reducer_s();
    r->pg = g->pg;
    try {
      r->reducer = std::make_unique<c10d::Reducer>(
          ps, indices, g->pg, std::vector<bool>(ps.size(), false), bucket_bytes,
          /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
          std::unordered_map<size_t, std::string>{}, c10d::kDefaultFirstBucketBytes,
          /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false, std::vector<int64_t>{});
    } catch (...) {
      delete r;
      throw;
    }
    *out = r;
#else
    off();
#endif
  })
}

int cxt_dist_reducer_prepare(cxt_dist_reducer r, int sync) {
  CXT_TRY({
#ifdef CXT_WITH_DIST
    if (!r || !r->reducer) throw Fail("null reducer handle");
    // DDP's _pre_forward/_post_forward, with find_unused_parameters off.
    if (sync) r->reducer->prepare_for_forward();
    r->reducer->rebuild_buckets();
    if (sync) r->reducer->prepare_for_backward({});
#else
    off();
#endif
  })
}

int cxt_dist_reducer_free(cxt_dist_reducer r) {
  CXT_TRY({ delete r; })
}

}  // extern "C"
