// c10d's Gloo process group is only declared with USE_C10D_GLOO defined (Torch's CMake package and CMakeLists.txt
// define it).
#ifndef USE_C10D_GLOO
#error "pixel3dmm/distributed/process_group.cpp must be compiled with USE_C10D_GLOO defined (see CMakeLists.txt)"
#endif

#include "pixel3dmm/distributed/process_group.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace pixel3dmm::distributed {
namespace {

using Clock = std::chrono::steady_clock;

std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

std::string key(const char* kind, int64_t rank) { return std::string("pixel3dmm/") + kind + "/" + std::to_string(rank); }

std::string to_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return c10d::ReduceOp::MAX;
    case ReduceOp::Min: return c10d::ReduceOp::MIN;
    default: return c10d::ReduceOp::SUM;
  }
}

}  // namespace

struct ProcessGroup::State {
  Environment env;
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds beat{1000};  ///< heartbeat period
  c10::intrusive_ptr<c10d::TCPStore> store;  ///< this thread's connection (the server too, on rank 0)
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::thread heartbeat;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  mutable std::atomic<int64_t> rank0_jobs{0};

  ~State() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
    pg.reset();
    store.reset();
  }

  void start_heartbeat() {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = timeout;
    auto own = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);  // a connection of its own: not shared
    heartbeat = std::thread([this, own] {
      std::unique_lock<std::mutex> lock(mu);
      while (!stop) {
        try {
          own->add(key("alive", env.rank), 1);
        } catch (...) {
          return;  // the store is gone (rank 0 finished or died): the collectives will tell
        }
        cv.wait_for(lock, beat, [this] { return stop; });
      }
    });
  }

  /// Heartbeat counters of every rank (-1 where unreadable). Throws when the store is gone.
  std::vector<int64_t> beats() const {
    std::vector<int64_t> out;
    for (int64_t r = 0; r < env.world_size; ++r) out.push_back(store->add(key("alive", r), 0));
    return out;
  }

  /// Why `operation` failed: names the rank(s) that are gone, or says that none is.
  std::string diagnose() const {
    const std::string me = "rank " + std::to_string(env.rank);
    try {
      std::vector<std::string> lost;
      const auto published = [&] {
        for (int64_t r = 0; r < env.world_size; ++r)
          if (r != env.rank && store->check({key("failed", r)}))
            lost.push_back("rank " + std::to_string(r) + " failed: " + to_string(store->get(key("failed", r))));
        return !lost.empty();
      };
      if (published()) return join(lost);
      const auto before = beats();
      std::this_thread::sleep_for(beat * 3 + std::chrono::milliseconds(100));
      if (published()) return join(lost);
      const auto after = beats();
      for (int64_t r = 0; r < env.world_size; ++r)
        if (r != env.rank && after[static_cast<size_t>(r)] == before[static_cast<size_t>(r)])
          lost.push_back("rank " + std::to_string(r) + " stopped responding (its process died or is frozen)");
      if (!lost.empty()) return join(lost);
      return "every other rank still responds (one of them may be stuck before this collective, or the network "
             "between the ranks failed)";
    } catch (const std::exception&) {
      if (env.rank == 0) return "the rendezvous store on " + me + " failed";
      return "rank 0 is gone (its process, which hosts the rendezvous store at " + env.master_addr + ":" +
             std::to_string(env.master_port) + ", no longer answers)";
    }
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
    return s;
  }

  [[noreturn]] void lost(const std::string& operation, const std::exception& cause) const {
    throw PeerLost("distributed run stopped on rank " + std::to_string(env.rank) + " of " +
                   std::to_string(env.world_size) + ": " + diagnose() + " [" + operation + " failed: " +
                   message_of(cause) + "]");
  }

  void run(const std::string& operation, const c10::intrusive_ptr<c10d::Work>& work) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      lost(operation, e);
    }
  }
};

ProcessGroup::ProcessGroup() : state_(std::make_shared<State>()) {}

ProcessGroup ProcessGroup::from_env() { return create(Environment::from_env()); }

ProcessGroup ProcessGroup::create(const Environment& env) {
  ProcessGroup g;
  auto& s = *g.state_;
  s.env = env;
  if (!env.distributed()) return g;
  PIXEL3DMM_CHECK_T(ValueError, !env.master_addr.empty(), "distributed: a world of ", env.world_size,
                    " processes needs MASTER_ADDR (rank 0's host) and MASTER_PORT; torchrun sets them, under Slurm "
                    "export them (docs/distributed.md)");
  s.timeout = std::chrono::milliseconds(static_cast<int64_t>(env.timeout_s * 1000.0));
  s.beat = std::chrono::milliseconds(std::clamp<int64_t>(s.timeout.count() / 10, 50, 1000));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = true;
    o.timeout = s.timeout;
    s.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    s.start_heartbeat();
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("pixel3dmm/pg", s.store);
    if (env.backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = s.timeout;
      s.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, opts);
#else
      throw ValueError("distributed: PIXEL3DMM_DIST_BACKEND=nccl, but this build of pixel3dmm has no NCCL (it needs "
                       "a CUDA LibTorch with NCCL at configure time)");
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(s.timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      s.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, opts);
    }
  } catch (const pixel3dmm::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw PeerLost("distributed: the rendezvous of " + env.describe() + " at " + where + " failed within " +
                   std::to_string(env.timeout_s) + " s: " + message_of(e) +
                   " (are all " + std::to_string(env.world_size) +
                   " processes started, with the same MASTER_ADDR and MASTER_PORT, and is the port free?)");
  }
  return g;
}

int64_t ProcessGroup::rank() const { return state_->env.rank; }
int64_t ProcessGroup::world_size() const { return state_->env.world_size; }
const Environment& ProcessGroup::environment() const { return state_->env; }

void ProcessGroup::all_reduce(std::vector<torch::Tensor>& tensors, ReduceOp op) const {
  if (!distributed() || tensors.empty()) return;
  // Gloo reduces the tensors of one call into each other (they are replicas), so all go through one flat buffer.
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.reshape(-1).to(torch::kFloat64));
  std::vector<torch::Tensor> buffer{torch::cat(flat_parts)};
  c10d::AllreduceOptions o;
  o.reduceOp = to_c10d(op);
  o.timeout = state_->timeout;
  state_->run("all_reduce", state_->pg->allreduce(buffer, o));
  int64_t offset = 0;
  for (auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(buffer[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

std::vector<double> ProcessGroup::all_reduce_sum(std::vector<double> values) const {
  if (!distributed() || values.empty()) return values;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  all_reduce(t);
  const auto acc = t[0].accessor<double, 1>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = acc[static_cast<int64_t>(i)];
  return values;
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) const {
  if (!distributed() || tensors.empty()) return;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.detach().reshape(-1).to(torch::kFloat64));
  std::vector<torch::Tensor> buffer{torch::cat(flat_parts)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = state_->timeout;
  state_->run("broadcast", state_->pg->broadcast(buffer, o));
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(buffer[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

void ProcessGroup::barrier() const {
  if (!distributed()) return;
  c10d::BarrierOptions o;
  o.timeout = state_->timeout;
  state_->run("barrier", state_->pg->barrier(o));
}

void ProcessGroup::report_failure(const std::string& what) const noexcept {
  if (!distributed()) return;
  try {
    state_->store->set(key("failed", rank()), std::vector<uint8_t>(what.begin(), what.end()));
  } catch (...) {
  }
}

void ProcessGroup::run_on_rank0(const std::string& what, const std::function<void()>& work) const {
  if (!distributed()) return work();
  auto& s = *state_;
  const std::string done = "pixel3dmm/rank0-done/" + std::to_string(s.rank0_jobs++);
  if (rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      report_failure(what + ": " + message_of(e));
      throw;
    }
    s.store->set(done, std::vector<uint8_t>{'1'});
    return;
  }
  // However long rank 0 takes, as long as its heartbeat goes on.
  int64_t last = -1;
  auto last_change = Clock::now();
  try {
    while (!s.store->check({done})) {
      if (s.store->check({key("failed", 0)}))
        throw PeerLost("distributed run stopped on rank " + std::to_string(rank()) + ": rank 0 failed while " + what +
                       ": " + to_string(s.store->get(key("failed", 0))));
      const int64_t now = s.store->add(key("alive", 0), 0);
      if (now != last) last = now, last_change = Clock::now();
      if (Clock::now() - last_change > s.beat * 5 + std::chrono::milliseconds(200))
        throw PeerLost("distributed run stopped on rank " + std::to_string(rank()) +
                       ": rank 0 stopped responding (its process died or is frozen) while " + what);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const pixel3dmm::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw PeerLost("distributed run stopped on rank " + std::to_string(rank()) + ": rank 0 is gone while " + what +
                   " (its rendezvous store no longer answers: " + message_of(e) + ")");
  }
}

void ProcessGroup::Pending::wait() {
  if (wait_) wait_();
  wait_ = nullptr;
}

ProcessGroup::Pending ProcessGroup::start_all_reduce(torch::Tensor tensor) const {
  Pending p;
  if (!distributed()) return p;
  std::vector<torch::Tensor> buffer{tensor};
  c10d::AllreduceOptions o;
  o.timeout = state_->timeout;
  auto work = state_->pg->allreduce(buffer, o);
  auto state = state_;
  p.wait_ = [state, work] { state->run("gradient all_reduce", work); };
  return p;
}

void ProcessGroup::check_identical(const std::vector<torch::Tensor>& tensors, const std::vector<std::string>& names,
                                   const std::string& what) const {
  if (!distributed()) return;
  std::vector<torch::Tensor> copies;
  for (const auto& t : tensors) copies.push_back(t.detach().clone());
  broadcast(copies, 0);
  int64_t first_bad = -1;
  double worst = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto mine = tensors[i].detach().to(torch::kFloat64);
    if (!torch::equal(mine, copies[i].to(torch::kFloat64))) {
      if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      worst = std::max(worst, (mine - copies[i].to(torch::kFloat64)).abs().max().item<double>());
    }
  }
  // Every rank learns whether one differs, so all stop together.
  const auto bad = all_reduce_sum({first_bad >= 0 ? 1.0 : 0.0});
  if (bad[0] == 0) return;
  PIXEL3DMM_CHECK_T(Error, first_bad < 0, "distributed: ", what, " on rank ", rank(), " differ from rank 0's: '",
                    names[static_cast<size_t>(first_bad)], "' by up to ", worst);
  throw Error("distributed: " + what + " of " + std::to_string(static_cast<int64_t>(bad[0])) +
              " rank(s) differ from rank 0's");
}

// ------------------------------------------------------------------------------------------------------------------

struct GradientSync::State {
  struct Bucket {
    std::vector<size_t> params;
    torch::Tensor flat;
    size_t ready = 0;
    ProcessGroup::Pending pending;
  };
  ProcessGroup group;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<int64_t> offset;
  std::vector<int> arrived;
  std::vector<unsigned> hooks;
  size_t next_to_start = 0;  ///< buckets start in index order on every rank, whatever order they fill in
  bool irregular = false;

  void on_grad(size_t i, const torch::Tensor& grad) {
    if (arrived[i]++ > 0 || irregular) {
      irregular = true;
      return;
    }
    Bucket& b = buckets[bucket_of[i]];
    b.flat.narrow(0, offset[i], params[i].numel()).copy_(grad.reshape(-1));
    ++b.ready;
    while (next_to_start < buckets.size() && buckets[next_to_start].ready == buckets[next_to_start].params.size()) {
      buckets[next_to_start].pending = group.start_all_reduce(buckets[next_to_start].flat);
      ++next_to_start;
    }
  }
};

GradientSync::GradientSync(ProcessGroup group, std::vector<torch::Tensor> params, int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  auto& s = *state_;
  s.group = std::move(group);
  s.params = std::move(params);
  if (!s.group.distributed()) return;
  const size_t n = s.params.size();
  s.bucket_of.resize(n);
  s.offset.resize(n);
  s.arrived.assign(n, 0);
  int64_t filled = 0;
  for (size_t k = n; k-- > 0;) {  // backward produces the last layers' gradients first
    const auto& p = s.params[k];
    PIXEL3DMM_CHECK_T(ValueError, p.dtype() == torch::kFloat32 && p.is_contiguous(),
                      "GradientSync: parameters must be contiguous float32");
    if (s.buckets.empty() || filled + p.numel() * 4 > bucket_bytes) {
      s.buckets.emplace_back();
      filled = 0;
    }
    s.offset[k] = filled / 4;
    s.buckets.back().params.push_back(k);
    s.bucket_of[k] = s.buckets.size() - 1;
    filled += p.numel() * 4;
  }
  for (auto& b : s.buckets) {
    int64_t total = 0;
    for (size_t k : b.params) total += s.params[k].numel();
    b.flat = torch::zeros({total}, torch::kFloat32);
  }
  State* raw = state_.get();
  for (size_t k = 0; k < n; ++k)
    s.hooks.push_back(s.params[k].register_hook([raw, k](torch::Tensor grad) { raw->on_grad(k, grad); }));
}

GradientSync::~GradientSync() {
  auto& s = *state_;
  for (size_t k = 0; k < s.hooks.size(); ++k) s.params[k].remove_hook(s.hooks[k]);
}

int64_t GradientSync::buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

void GradientSync::prepare() {
  auto& s = *state_;
  std::fill(s.arrived.begin(), s.arrived.end(), 0);
  for (auto& b : s.buckets) b.ready = 0;
  s.next_to_start = 0;
  s.irregular = false;
}

void GradientSync::finish() {
  auto& s = *state_;
  if (!s.group.distributed()) return;
  for (size_t b = 0; b < s.next_to_start; ++b) s.buckets[b].pending.wait();
  const double world = static_cast<double>(s.group.world_size());
  torch::NoGradGuard no_grad;
  const bool regular = !s.irregular && s.next_to_start == s.buckets.size();
  if (regular) {
    for (auto& b : s.buckets) b.flat.div_(world);
    for (size_t k = 0; k < s.params.size(); ++k) {
      auto& p = s.params[k];
      const auto avg = s.buckets[s.bucket_of[k]].flat.narrow(0, s.offset[k], p.numel()).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(avg);
      else
        p.mutable_grad() = avg.clone();
    }
    return;
  }
  // Some gradient arrived twice or not at all (the same on every rank: the graphs are the same): reduce `.grad`s.
  std::vector<torch::Tensor> grads;
  for (auto& p : s.params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  s.group.all_reduce(grads);
  for (auto& g : grads) g.div_(world);
}

}  // namespace pixel3dmm::distributed
