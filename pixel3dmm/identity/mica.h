#pragma once
/// MICA (Zielon et al. 2022) as Pixel3DMM's preprocessing uses it: an aligned 112 x 112 ArcFace blob ->
/// IResNet-100 -> L2 normalisation -> mapping network -> the first 300 FLAME shape coefficients (identity.npy).
///
/// Weights: `mica.safetensors`, written by `python -m pixel3dmm.convert_mica mica.tar`, holds the official names
/// `arcface.<IResNet state dict>` and `regressor.<MappingNetwork state dict>` (float32; BatchNorm's
/// num_batches_tracked counters are dropped) and metadata `format = pixel3dmm-mica`.

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/identity/arcface.h"
#include "pixel3dmm/identity/mapping_network.h"
#include "pixel3dmm/io/safetensors.h"  // TensorMap

namespace pixel3dmm::identity {

using io::TensorMap;  // {name: tensor}, the one map type of every reader and writer

struct MicaOptions {
  TORCH_ARG(IResNetOptions, arcface) = {};
  TORCH_ARG(MappingNetworkOptions, regressor) = {};
};

class MicaImpl : public torch::nn::Cloneable<MicaImpl> {
 public:
  explicit MicaImpl(const MicaOptions& options = {});
  void reset() override;
  /// blob: B x 3 x 112 x 112 float32 (arcface_blob's layout) -> B x 300 identity (FLAME shape) codes.
  torch::Tensor forward(const torch::Tensor& blob);
  /// blob -> B x 512 ArcFace features, L2-normalised over dim 1 (eps 1e-12), the mapping network's input.
  torch::Tensor identity_features(const torch::Tensor& blob);

  MicaOptions options;
  IResNet arcface{nullptr};
  MappingNetwork regressor{nullptr};
};
TORCH_MODULE(Mica);

/// Parameters and buffers under their official names (no num_batches_tracked).
TensorMap mica_state_dict(const Mica& mica);

/// The architecture a state dict describes: block counts from the `arcface.layerL.B.` names, dimensions from
/// fc / network / output shapes. FormatError naming `source` when the names do not describe one.
MicaOptions mica_options_from(const TensorMap& tensors, const std::string& source);

/// Strict copy into `mica`: every missing, unexpected or mis-shaped tensor is listed in one FormatError naming
/// `source`, with expected and found shapes. num_batches_tracked entries are ignored.
void load_mica_state_dict(Mica& mica, const TensorMap& tensors, const std::string& source);

/// Reads a converted `mica.safetensors`, builds the network it describes and returns it in eval mode.
/// FileNotFound for a missing file; FormatError (naming the file and key) for anything else wrong.
Mica load_mica(const std::string& path);

/// Writes the state dict (official names) and the format metadata, atomically.
void save_mica(const Mica& mica, const std::string& path);

/// The frames the official preprocessing feeds to MICA out of n sorted frames: every max(1, n / 10)-th, starting
/// at the first (all of them for n < 20, else 10 to 15).
std::vector<int64_t> identity_frames(int64_t n);

/// The identity of one face: image H x W x 3 uint8 RGB with keypoints 5 x 2 (image pixels), or, with undefined
/// keypoints, an aligned 112 x 112 ArcFace crop -> (300,) float32 code. No gradients.
torch::Tensor identity_code(Mica& mica, const torch::Tensor& image_rgb, const torch::Tensor& keypoints = {});

}  // namespace pixel3dmm::identity
