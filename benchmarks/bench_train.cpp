// Training throughput (images per second, optimiser steps included) with 2 threads: the demo recipe's network
// (training/recipes/demo-uv.json) at its batch size, and one step of the official architecture at 512 x 512 with a
// ViT-B/16 backbone, frozen (the official default) and fine-tuned, batch 1.
//
//   bench_train [--threads N] [--steps N] [--no-vitb]
// Data: random images and targets held in memory, so the figures measure the network and the optimiser
// (augmentation included), not the disk.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_samples.h"
#include "bench_util.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/train/trainer.h"

#ifndef PIXEL3DMM_SOURCE_DIR
#define PIXEL3DMM_SOURCE_DIR "."
#endif

namespace {

using namespace pixel3dmm;

using bench::random_samples;

/// Median images per second over the steps after the first (warm-up).
double images_per_second(const nn::NetworkConfig& config, train::TrainerOptions options, int64_t steps) {
  options.steps = steps + 1;
  options.warmup_steps = 0;
  options.log_every = 1;
  options.checkpoint_every = 0;
  options.val_every = 0;
  const auto dir = std::filesystem::temp_directory_path() / ("pixel3dmm-bench-train-" + std::to_string(::getpid()));
  std::vector<double> rates;
  {
    train::Trainer trainer(train::Trainer::initial_network(config, 0), options, dir.string());
    train::TrainCallbacks cb;
    cb.on_log = [&](const train::TrainLogEntry& e) {
      if (e.step > 1) rates.push_back(e.images_per_second);
    };
    trainer.train(random_samples(std::max<int64_t>(options.batch_size * 2, 4), config.image_size),
                  train::SampleSource{}, cb);
  }
  std::filesystem::remove_all(dir);
  std::nth_element(rates.begin(), rates.begin() + rates.size() / 2, rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t steps = 6;
  bool vitb = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-vitb")) vitb = false;
  }
  set_num_threads(threads);
  bench::print_header("bench_train: training throughput");
  std::printf("%d threads; random in-memory data; median over %lld steps after one warm-up step\n\n", threads,
              static_cast<long long>(steps));
  std::printf("%-44s %6s %10s %12s\n", "configuration", "batch", "images/s", "s per step");

  const std::string recipe_path = std::string(PIXEL3DMM_SOURCE_DIR) + "/training/recipes/demo-uv.json";
  if (std::filesystem::exists(recipe_path)) {
    const auto recipe = io::read_json(recipe_path);
    const auto config = nn::NetworkConfig::from_json(recipe.at("network"), recipe_path + ": network");
    auto options = recipe.at("trainer").get<train::TrainerOptions>();
    const double ips = images_per_second(config, options, steps);
    std::printf("%-44s %6lld %10.2f %12.3f\n", ("demo recipe (" + std::to_string(config.image_size) + " px)").c_str(),
                static_cast<long long>(options.batch_size), ips, options.batch_size / ips);
  } else {
    std::printf("(no %s: demo row skipped)\n", recipe_path.c_str());
  }
  if (vitb) {
    for (const bool finetune : {false, true}) {
      auto config = nn::NetworkConfig::official(nn::PredictionType::UV, "vit_base_patch16_224.dino");
      train::TrainerOptions options;
      options.batch_size = 1;
      options.finetune_backbone = finetune;
      options.prefetch = 1;
      const double ips = images_per_second(config, options, std::max<int64_t>(2, steps / 3));
      std::printf("%-44s %6d %10.3f %12.2f\n",
                  finetune ? "ViT-B/16 512 px, backbone fine-tuned" : "ViT-B/16 512 px, backbone frozen (official)",
                  1, ips, 1.0 / ips);
    }
  }
  return 0;
}
