#pragma once
/// MICA's MappingNetwork (models/generator.py; official-preprocessing.md 6.4) with the official names:
/// network.0 Linear(z_dim -> hidden_dim), network.1..hidden_layers Linear(hidden_dim -> hidden_dim), each
/// followed by LeakyReLU(0.2), then output Linear(hidden_dim -> output_dim) without activation.
/// MICA builds it as Generator(512, 300, 300, 3): its state-dict names there carry the prefix `regressor.`.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace pixel3dmm::identity {

struct MappingNetworkOptions {
  TORCH_ARG(int64_t, z_dim) = 512;
  TORCH_ARG(int64_t, hidden_dim) = 300;
  TORCH_ARG(int64_t, output_dim) = 300;
  /// Hidden 300 -> 300 layers after the first. The official network concatenates z back in (skip connections)
  /// only for more than 5; those variants are not supported (ValueError).
  TORCH_ARG(int64_t, hidden_layers) = 3;
  TORCH_ARG(double, negative_slope) = 0.2;
};

class MappingNetworkImpl : public torch::nn::Cloneable<MappingNetworkImpl> {
 public:
  explicit MappingNetworkImpl(const MappingNetworkOptions& options = {});
  void reset() override;
  /// z: B x z_dim -> B x output_dim.
  torch::Tensor forward(const torch::Tensor& z);

  MappingNetworkOptions options;
  torch::nn::ModuleList network{nullptr};  ///< hidden_layers + 1 Linear layers
  torch::nn::Linear output{nullptr};
};
TORCH_MODULE(MappingNetwork);

}  // namespace pixel3dmm::identity
