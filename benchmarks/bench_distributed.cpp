// Data-parallel training throughput on this machine: the same global batch trained by 1 process with 2 threads
// and by 2 processes with 1 thread each (c10d Gloo over localhost, gradients all-reduced in buckets during
// backward), printed side by side with the scaling ratio.
//
//   bench_distributed [--steps N] [--batch N] [--size PX]
// The program launches itself as the worker processes (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, as torchrun
// sets them). Network: the demo recipe's architecture (training/recipes/demo-uv.json) at --size (default its 128
// px); data: random images held in memory, so the figures measure compute and communication, not the disk.
#include <torch/torch.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_samples.h"
#include "bench_util.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/distributed/process_group.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/train/trainer.h"

#ifndef PIXEL3DMM_SOURCE_DIR
#define PIXEL3DMM_SOURCE_DIR "."
#endif

namespace {

using namespace pixel3dmm;
namespace fs = std::filesystem;

using bench::random_samples;

nn::NetworkConfig demo_config(int64_t size) {
  const std::string path = std::string(PIXEL3DMM_SOURCE_DIR) + "/training/recipes/demo-uv.json";
  auto config = nn::NetworkConfig::from_json(io::read_json(path).at("network"), path + ": network");
  if (size > 0) {
    config.image_size = size;
    config.backbone.img_size(size);
  }
  return config;
}

/// One worker: trains `steps` + 1 steps in the group the environment describes; rank 0 writes the median
/// images/s (global batch) of the steps after the first to `result`.
int worker(int64_t steps, int64_t batch, int64_t size, const std::string& result) {
  const auto group = distributed::ProcessGroup::from_env();
  const auto config = demo_config(size);
  train::TrainerOptions options;
  options.steps = steps + 1;
  options.batch_size = batch;
  options.warmup_steps = 0;
  options.log_every = 1;
  options.checkpoint_every = 0;
  options.val_every = 0;
  const auto dir = fs::temp_directory_path() / ("pixel3dmm-bench-dist-" + std::to_string(::getpid()));
  std::vector<double> rates;
  {
    train::Trainer trainer(train::Trainer::initial_network(config, 0), options, dir.string(), group);
    train::TrainCallbacks cb;
    cb.on_log = [&](const train::TrainLogEntry& e) {
      if (e.step > 1) rates.push_back(e.images_per_second);
    };
    trainer.train(random_samples(batch * 2, config.image_size), train::SampleSource{}, cb);
  }
  fs::remove_all(dir);
  if (group.rank() == 0) {
    std::nth_element(rates.begin(), rates.begin() + rates.size() / 2, rates.end());
    std::ofstream(result) << rates[rates.size() / 2] << "\n";
  }
  return 0;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

/// Runs `processes` workers of `threads` threads each; returns rank 0's images/s (0 on failure).
double measure(const std::string& self, int processes, int threads, int64_t steps, int64_t batch, int64_t size) {
  const std::string result = (fs::temp_directory_path() / ("pixel3dmm-bench-dist-" + std::to_string(::getpid()) +
                                                           ".txt")).string();
  fs::remove(result);
  const int port = free_port();
  std::string cmd;
  for (int r = 0; r < processes; ++r)
    cmd += "RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(processes) + " LOCAL_RANK=" +
           std::to_string(r) + " LOCAL_WORLD_SIZE=" + std::to_string(processes) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " OMP_NUM_THREADS=" +
           std::to_string(threads) + " '" + self + "' --worker --steps " + std::to_string(steps) + " --batch " +
           std::to_string(batch) + " --size " + std::to_string(size) + " --threads " + std::to_string(threads) +
           " --result '" + result + "' & ";
  cmd += "wait";
  if (std::system(cmd.c_str()) != 0 || !fs::exists(result)) return 0.0;
  double ips = 0;
  std::ifstream(result) >> ips;
  fs::remove(result);
  return ips;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 8, batch = 16, size = 0;
  int threads = 1;
  bool is_worker = false;
  std::string result;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--size") && i + 1 < argc) size = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--result") && i + 1 < argc) result = argv[++i];
    else if (!std::strcmp(argv[i], "--worker")) is_worker = true;
  }
  if (is_worker) {
    set_num_threads(threads);
    return worker(steps, batch, size, result);
  }
  const std::string self = fs::canonical("/proc/self/exe").string();
  const auto config = demo_config(size);
  bench::print_header("bench_distributed: data-parallel training throughput (c10d Gloo, localhost)");
  std::printf("demo architecture at %lld px, global batch %lld, random in-memory data; median images/s over %lld "
              "steps after one warm-up step\n\n",
              static_cast<long long>(config.image_size), static_cast<long long>(batch), static_cast<long long>(steps));
  const double one = measure(self, 1, 2, steps, batch, size);
  const double two = measure(self, 2, 1, steps, batch, size);
  std::printf("%-28s %-28s %s\n", "1 process x 2 threads", "2 processes x 1 thread", "ratio (2 proc / 1 proc)");
  std::printf("%-28s %-28s %.2f\n", (std::to_string(one).substr(0, 6) + " images/s").c_str(),
              (std::to_string(two).substr(0, 6) + " images/s").c_str(), one > 0 ? two / one : 0.0);
  return one > 0 && two > 0 ? 0 : 1;
}
