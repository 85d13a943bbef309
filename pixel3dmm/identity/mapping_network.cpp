#include "pixel3dmm/identity/mapping_network.h"

#include <torch/nn/functional/activation.h>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::identity {

MappingNetworkImpl::MappingNetworkImpl(const MappingNetworkOptions& options_) : options(options_) { reset(); }

void MappingNetworkImpl::reset() {
  PIXEL3DMM_CHECK(options.hidden_layers() >= 0 && options.hidden_layers() <= 5,
                  "MappingNetworkOptions::hidden_layers: expected 0..5 (more layers add skip connections, which "
                  "are not supported), found ",
                  options.hidden_layers());
  PIXEL3DMM_CHECK(options.z_dim() > 0 && options.hidden_dim() > 0 && options.output_dim() > 0,
                  "MappingNetworkOptions: dimensions must be positive");
  network = register_module("network", torch::nn::ModuleList());
  network->push_back(torch::nn::Linear(options.z_dim(), options.hidden_dim()));
  for (int64_t i = 0; i < options.hidden_layers(); ++i)
    network->push_back(torch::nn::Linear(options.hidden_dim(), options.hidden_dim()));
  output = register_module("output", torch::nn::Linear(options.hidden_dim(), options.output_dim()));
}

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z) {
  PIXEL3DMM_CHECK(z.dim() == 2 && z.size(1) == options.z_dim(), "mapping network input: expected B x ", options.z_dim(),
                  ", found ", z.sizes());
  auto h = z;
  for (const auto& layer : *network)
    h = torch::leaky_relu(layer->as<torch::nn::Linear>()->forward(h), options.negative_slope());
  return output(h);
}

}  // namespace pixel3dmm::identity
