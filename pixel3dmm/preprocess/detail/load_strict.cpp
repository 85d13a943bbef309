#include "pixel3dmm/preprocess/detail/load_strict.h"

#include <map>

#include "pixel3dmm/nn/network.h"

namespace pixel3dmm::preprocess::detail {

namespace {
const std::string kCounter = ".num_batches_tracked";

bool is_counter(const std::string& name) {
  return name.size() >= kCounter.size() && name.compare(name.size() - kCounter.size(), kCounter.size(), kCounter) == 0;
}
}  // namespace

void load_state_dict_strict(torch::nn::Module& module, const io::TensorMap& found, const std::string& source) {
  std::map<std::string, torch::Tensor> expected;
  for (const auto& item : module.named_parameters()) expected[item.key()] = item.value();
  for (const auto& item : module.named_buffers())
    if (!is_counter(item.key())) expected[item.key()] = item.value();
  io::TensorMap weights;
  for (const auto& [name, t] : found) {
    const bool bn_counter =
        is_counter(name) && expected.count(name.substr(0, name.size() - kCounter.size()) + ".running_mean");
    if (!bn_counter) weights[name] = t;
  }
  nn::detail::copy_strict(expected, weights, {}, source);
}

}  // namespace pixel3dmm::preprocess::detail
