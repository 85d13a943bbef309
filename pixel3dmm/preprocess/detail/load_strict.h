#pragma once
// Strict loading of the preprocessing networks' converted weights (FaceBoxesV2, PIPNet, RetinaFace).
#include <torch/nn/module.h>

#include <string>

#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::preprocess::detail {

/// Copies `found` (name -> tensor) into every parameter and buffer of `module`: one FormatError naming `source` and
/// every missing, unexpected or mis-shaped tensor (nn::detail::copy_strict). BatchNorm's step counters are
/// bookkeeping, not weights: the module's own are not expected, and a file's `<bn>.num_batches_tracked` is accepted
/// beside each BatchNorm layer (a name with a `<bn>.running_mean`) and ignored.
void load_state_dict_strict(torch::nn::Module& module, const io::TensorMap& found, const std::string& source);

}  // namespace pixel3dmm::preprocess::detail
