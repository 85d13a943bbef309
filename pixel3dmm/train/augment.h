#pragma once
/// From a TrainingSample (files' resolution, the fitter's conventions) to what the network trains on: the input
/// at the network's size, the targets in the network's raw units at its output size, with the augmentations of
/// the official training (mirroring with the UV / normal un-flip rules, colour jitter, scale / shift crops).
/// Every random choice comes from the seed given, so a sample's augmentation never depends on thread timing.

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pixel3dmm/io/config.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/train/dataset.h"

namespace pixel3dmm::train {

struct AugmentOptions {
  /// Horizontal mirroring with probability 0.5 (the official `mirror_aug`, off in configs/base.yaml). The mirrored
  /// targets follow the official un-flip rules: UV u -> -u + 2 uv_mirror_offset (raw units), normals x -> -x.
  bool mirror = false;
  /// The u offset of FLAME's UV layout's mirror axis (official: 0.0075). A layout that is not mirror-symmetric in
  /// u (the synthetic model's eyeballs are not) should not be trained with mirroring.
  double uv_mirror_offset = 0.0075;
  /// Colour jitter (the official `disable_color_aug: False`): brightness, contrast and saturation factors drawn
  /// uniformly from [1 - j, 1 + j], per-channel gains from [1 - j/4, 1 + j/4]. 0 = off.
  double color_jitter = 0.2;
  /// Crops: zoom factor drawn from [1 - s, 1 + s] and a shift of up to `crop_shift` of the image side per axis.
  double crop_scale = 0.1;
  double crop_shift = 0.05;
};
PIXEL3DMM_CONFIG(AugmentOptions, mirror, uv_mirror_offset, color_jitter, crop_scale, crop_shift)

/// One batch in the network's units.
struct TrainingBatch {
  std::vector<std::string> ids;
  torch::Tensor image;   ///< B x 3 x S x S float32 in [0, 1] (S = the network's image_size)
  torch::Tensor target;  ///< B x C x T x T raw units: UV 2 (u, 1 - v) * 2 - 1; normals the raw frame (n0, n1, n2)
  torch::Tensor mask;    ///< B x 1 x T x T float32 in {0, 1} (T = the network's output size)
};

/// The Predictions-convention target of `type` converted to the network's raw output units:
/// UV 2 x H x W in [0, 1] -> 2 x H x W in [-1, 1]; normals (n0, -n2, -n1) -> (n0, n1, n2). The inverse of
/// predict::uv_from_raw / normals_from_raw (for unit normals). Works with or without a leading batch axis.
torch::Tensor target_to_raw(const torch::Tensor& target, nn::PredictionType type);

/// The network's output side for an input of side `image_size`: 16 * image_size / patch_size.
int64_t output_size(const nn::NetworkConfig& config);

/// Prepares one sample for `config`'s network: the image resized as the predictor does (Pillow's bicubic), the
/// target and mask resized by nearest neighbour (no blending across the silhouette), then, unless `augment` is
/// null, the augmentations drawn from `seed`. Throws ValueError naming the sample when it lacks the target type.
/// Returns a batch of one.
TrainingBatch prepare_sample(const TrainingSample& sample, const nn::NetworkConfig& config,
                             const AugmentOptions* augment, uint64_t seed);

/// Concatenates batches of one (or more) along the batch axis.
TrainingBatch collate(const std::vector<TrainingBatch>& items);

/// A 64-bit mix of the inputs (splitmix64): seeds of independent random streams derived from one run seed.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

}  // namespace pixel3dmm::train
