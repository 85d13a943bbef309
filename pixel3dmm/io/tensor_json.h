#pragma once
/// Small tensors in JSON files (landmarks, cameras, affine maps): nested arrays of numbers.

#include <torch/types.h>

#include <nlohmann/json.hpp>

namespace pixel3dmm::io {

/// A 1-D tensor -> [x, ...]; a 2-D tensor -> [[x, ...], ...] (values as doubles).
nlohmann::json tensor_to_json(const torch::Tensor& t);

}  // namespace pixel3dmm::io
