#pragma once
// Random in-memory training samples for the training benchmarks: throughput does not depend on what the pixels show.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "pixel3dmm/train/data_loader.h"

namespace pixel3dmm::bench {

/// `count` samples of size x size: random image, UV, unit normals and a ~70% mask; the same for every call.
inline train::SampleSource random_samples(int64_t count, int64_t size) {
  std::vector<train::TrainingSample> samples;
  torch::manual_seed(0);
  for (int64_t i = 0; i < count; ++i) {
    train::TrainingSample s;
    s.id = std::to_string(i);
    s.image = torch::rand({3, size, size});
    s.uv = torch::rand({2, size, size});
    s.normals = torch::nn::functional::normalize(torch::randn({3, size, size}),
                                                 torch::nn::functional::NormalizeFuncOptions().dim(0));
    s.mask = (torch::rand({1, size, size}) > 0.3).to(torch::kFloat32);
    samples.push_back(s);
  }
  return train::SampleSource::from(std::move(samples));
}

}  // namespace pixel3dmm::bench
