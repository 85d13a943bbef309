// pixel3dmm::distributed: the torchrun / Slurm environment, work sharding, the distributed sampler (DataLoader's
// rank / world_size), and c10d process groups of two ranks run as two threads of this process (collectives,
// gradient buckets equal to the single-process gradient, a lost rank named).
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <set>

#include "pixel3dmm/distributed/environment.h"
#include "pixel3dmm/distributed/process_group.h"
#include "pixel3dmm/train/data_loader.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::distributed;

namespace {

/// Sets environment variables for the scope of a test and restores them after.
struct ScopedEnv {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE",
                             "PIXEL3DMM_DIST_TIMEOUT", "PIXEL3DMM_DIST_BACKEND"}) {
      const char* v = std::getenv(name);
      saved.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
    for (const auto& [k, v] : vars) setenv(k, v, 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved) {
      if (v)
        setenv(k.c_str(), v->c_str(), 1);
      else
        unsetenv(k.c_str());
    }
  }
};

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

Environment two_ranks(int64_t rank, int port, double timeout_s = 10) {
  Environment e;
  e.rank = rank;
  e.world_size = 2;
  e.local_rank = rank;
  e.local_world_size = 2;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  e.timeout_s = timeout_s;
  return e;
}

/// Runs `body(group)` as ranks 0 and 1 of a world of two (one thread each) and returns their results.
template <class Fn>
auto on_two_ranks(Fn body, double timeout_s = 10) {
  const int port = free_port();
  auto run = [&](int64_t r) { return body(ProcessGroup::create(two_ranks(r, port, timeout_s))); };
  auto f0 = std::async(std::launch::async, run, 0), f1 = std::async(std::launch::async, run, 1);
  auto r0 = f0.get();
  auto r1 = f1.get();
  return std::make_pair(r0, r1);
}

}  // namespace

TEST_CASE("environment: torchrun and Slurm variables, nothing set = a world of one") {
  {
    ScopedEnv env({});
    const auto e = Environment::from_env();
    CHECK(e.rank == 0);
    CHECK(e.world_size == 1);
    CHECK_FALSE(e.distributed());
    CHECK(e.timeout_s == 60.0);
    // A world of one needs no rendezvous: the group is a no-op.
    const auto g = ProcessGroup::create(e);
    std::vector<torch::Tensor> t{torch::ones({3})};
    g.all_reduce(t);
    g.barrier();
    CHECK(torch::equal(t[0], torch::ones({3})));
  }
  {
    ScopedEnv env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29555"}, {"PIXEL3DMM_DIST_TIMEOUT", "2.5"}});
    const auto e = Environment::from_env();
    CHECK(e.rank == 3);
    CHECK(e.world_size == 4);
    CHECK(e.local_rank == 1);
    CHECK(e.local_world_size == 2);
    CHECK(e.master_addr == "node7");
    CHECK(e.master_port == 29555);
    CHECK(e.timeout_s == 2.5);
    CHECK(e.describe() == "rank 3 of 4 (local 1 of 2)");
  }
  {
    ScopedEnv env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                   {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"MASTER_ADDR", "n1"}});
    const auto e = Environment::from_env();
    CHECK(e.rank == 5);
    CHECK(e.world_size == 8);
    CHECK(e.local_rank == 1);
    CHECK(e.local_world_size == 4);
  }
}

TEST_CASE("environment: malformed or inconsistent variables are named") {
  {
    ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
    test::require_throws_with<ValueError>([] { Environment::from_env(); }, {"rank 2", "world of 2"});
  }
  {
    ScopedEnv env({{"RANK", "x"}, {"WORLD_SIZE", "2"}});
    test::require_throws_with<ValueError>([] { Environment::from_env(); }, {"RANK='x'", "integer"});
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"PIXEL3DMM_DIST_TIMEOUT", "-1"}});
    test::require_throws_with<ValueError>([] { Environment::from_env(); }, {"PIXEL3DMM_DIST_TIMEOUT"});
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}});
    test::require_throws_with<ValueError>([] { ProcessGroup::from_env(); }, {"MASTER_ADDR"});
  }
}

TEST_CASE("shard: every item to exactly one rank, shares within one of each other") {
  for (int64_t n : {0, 1, 7, 10}) {
    for (int64_t world : {1, 2, 3, 4}) {
      std::multiset<int64_t> all;
      size_t smallest = SIZE_MAX, largest = 0;
      for (int64_t r = 0; r < world; ++r) {
        const auto s = shard(n, r, world);
        all.insert(s.begin(), s.end());
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      REQUIRE(all.size() == static_cast<size_t>(n));
      REQUIRE(std::set<int64_t>(all.begin(), all.end()).size() == static_cast<size_t>(n));
      REQUIRE(largest - smallest <= 1);
    }
  }
  CHECK_THROWS_AS(shard(4, 2, 2), ValueError);
}

TEST_CASE("distributed sampler: ranks split each global batch without overlap or loss, equal steps") {
  train::SampleSource source{23, nullptr};  // indices only: no sample is loaded
  nn::NetworkConfig config;
  for (int64_t world : {2, 3}) {
    train::DataLoaderOptions o;
    o.batch_size = 6;
    o.seed = 11;
    o.prefetch = 0;
    const train::DataLoader single(source, config, o, std::nullopt);
    std::vector<std::unique_ptr<train::DataLoader>> ranks;
    for (int64_t r = 0; r < world; ++r) {
      auto ro = o;
      ro.rank = r;
      ro.world_size = world;
      ranks.push_back(std::make_unique<train::DataLoader>(source, config, ro, std::nullopt));
      REQUIRE(ranks.back()->steps_per_epoch() == single.steps_per_epoch());
    }
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      std::set<int64_t> seen;
      for (int64_t k = 0; k < single.steps_per_epoch(); ++k) {
        const int64_t step = epoch * single.steps_per_epoch() + k;
        const auto global = single.indices(step);
        std::vector<int64_t> joined(global.size(), -1);
        for (int64_t r = 0; r < world; ++r) {
          const auto mine = ranks[static_cast<size_t>(r)]->indices(step);
          REQUIRE(static_cast<int64_t>(mine.size()) == o.batch_size / world);
          for (size_t j = 0; j < mine.size(); ++j) joined[static_cast<size_t>(r) + j * world] = mine[j];
        }
        REQUIRE(joined == global);  // the single-process batch, position by position
        for (auto i : global) REQUIRE(seen.insert(i).second);  // no sample twice in an epoch
      }
      REQUIRE(seen.size() == static_cast<size_t>(single.steps_per_epoch() * o.batch_size));
    }
    // deterministic per (seed, epoch): a fresh loader draws the same order; another seed another one
    const train::DataLoader again(source, config, o, std::nullopt);
    CHECK(again.indices(5) == single.indices(5));
    auto other = o;
    other.seed = 12;
    CHECK(train::DataLoader(source, config, other, std::nullopt).indices(0) != single.indices(0));
  }
  auto bad = train::DataLoaderOptions();
  bad.batch_size = 5;
  bad.world_size = 2;
  CHECK_THROWS_AS(train::DataLoader(source, config, bad, std::nullopt), ValueError);
}

TEST_CASE("process group: all-reduce, broadcast and barrier over two ranks") {
  const auto [a, b] = on_two_ranks([](ProcessGroup g) {
    std::vector<torch::Tensor> t{torch::full({2, 2}, static_cast<float>(g.rank() + 1)), torch::arange(3)};
    g.all_reduce(t);
    std::vector<torch::Tensor> m{torch::full({1}, static_cast<double>(g.rank() * 10))};
    g.all_reduce(m, ReduceOp::Max);
    std::vector<torch::Tensor> c{torch::full({4}, static_cast<float>(g.rank() + 7))};
    g.broadcast(c, 1);
    g.barrier();
    const auto s = g.all_reduce_sum({1.5, static_cast<double>(g.rank())});
    return std::vector<double>{t[0].sum().item<double>(), t[1].sum().item<double>(), m[0].item<double>(),
                               c[0].sum().item<double>(), s[0], s[1]};
  });
  CHECK(a == b);
  CHECK(a == std::vector<double>{12.0, 6.0, 10.0, 32.0, 3.0, 1.0});
}

TEST_CASE("gradient buckets: two ranks with half the batch each get the whole batch's mean gradient") {
  torch::manual_seed(3);
  const auto x = torch::randn({8, 5}), y = torch::randn({8, 2});
  auto make = [] {
    // The two ranks are threads of this process sharing torch's one default generator: seeding and drawing must
    // not interleave, or the ranks start from different weights (seen under ASan's slower timing).
    static std::mutex rng;
    const std::lock_guard<std::mutex> lock(rng);
    torch::manual_seed(4);
    return torch::nn::Sequential(torch::nn::Linear(5, 16), torch::nn::Tanh(), torch::nn::Linear(16, 2));
  };
  auto reference = make();
  torch::mse_loss(reference->forward(x), y).backward();
  std::vector<torch::Tensor> expected;
  for (const auto& p : reference->parameters()) expected.push_back(p.grad().clone());

  for (int64_t bucket_bytes : {64, 1 << 20}) {  // many small buckets, and one
    const auto [g0, g1] = on_two_ranks([&](ProcessGroup g) {
      auto net = make();
      GradientSync sync(g, net->parameters(), bucket_bytes);
      std::vector<torch::Tensor> grads;
      for (int step = 0; step < 2; ++step) {  // the hooks serve every step
        for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
        sync.prepare();
        const auto rows = torch::arange(g.rank(), 8, 2);
        torch::mse_loss(net->forward(x.index_select(0, rows)), y.index_select(0, rows)).backward();
        sync.finish();
      }
      for (const auto& p : net->parameters()) grads.push_back(p.grad().clone());
      return std::make_pair(grads, sync.buckets());
    });
    CHECK(g0.second == (bucket_bytes == 64 ? 4 : 1));
    for (size_t i = 0; i < expected.size(); ++i) {
      test::require_close(g0.first[i], expected[i], 1e-6);
      REQUIRE(torch::equal(g0.first[i], g1.first[i]));
    }
  }
}

TEST_CASE("gradient buckets: a parameter without a gradient falls back to reducing the .grads") {
  const auto [g0, g1] = on_two_ranks([](ProcessGroup g) {
    auto w = torch::full({3}, 2.0f).requires_grad_(true), unused = torch::ones({2}).requires_grad_(true);
    GradientSync sync(g, {w, unused});
    sync.prepare();
    const float k = static_cast<float>(g.rank() + 1);
    ((w * k).sum() + (w * w).sum()).backward();  // `unused` gets no gradient: its bucket never fills
    sync.finish();
    return std::make_pair(w.grad().clone(), unused.grad().clone());
  });
  // d/dw = k + 2w: ranks 1 + 4, 2 + 4 -> mean 5.5; the unused parameter's gradient is zero everywhere
  CHECK(torch::allclose(g0.first, torch::full({3}, 5.5f)));
  CHECK(torch::equal(g0.first, g1.first));
  CHECK(torch::equal(g0.second, torch::zeros({2})));
}

TEST_CASE("process group: a rank that leaves is named by the one waiting for it") {
  const int port = free_port();
  auto leaver = std::async(std::launch::async, [&] {
    auto g = ProcessGroup::create(two_ranks(1, port, 3));
    g.barrier();
    g.report_failure("out of disk (test)");
  });  // its group is destroyed here: heartbeat and Gloo pairs gone
  auto g = ProcessGroup::create(two_ranks(0, port, 3));
  g.barrier();
  leaver.get();
  std::vector<torch::Tensor> t{torch::ones({4})};
  const auto start = std::chrono::steady_clock::now();
  test::require_throws_with<PeerLost>([&] { g.all_reduce(t); }, {"rank 1 failed: out of disk (test)"});
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("process group: replicas that differ are reported on every rank") {
  const auto [m0, m1] = on_two_ranks([](ProcessGroup g) {
    auto p = torch::zeros({3});
    g.check_identical({p}, {"w"}, "weights");  // equal: returns
    if (g.rank() == 1) p[2] = 1e-3;
    try {
      g.check_identical({p}, {"w"}, "weights");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  });
  CHECK(m0.find("weights of 1 rank(s) differ") != std::string::npos);
  CHECK(m1.find("'w'") != std::string::npos);
}
