#pragma once
// The embedded files of the demo networks (pixel3dmm/predict/demo_model.h is the interface).
#include <string_view>

namespace pixel3dmm::predict::detail {

struct DemoModelFiles {
  std::string_view weights;  ///< the .safetensors file
  std::string_view config;   ///< the .json beside it
};

/// The UV network's files (uv = true) or the normal network's.
DemoModelFiles demo_model_files(bool uv);

}  // namespace pixel3dmm::predict::detail
