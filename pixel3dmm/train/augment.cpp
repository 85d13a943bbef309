#include "pixel3dmm/train/augment.h"

#include <torch/torch.h>

#include <random>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/resize.h"

namespace pixel3dmm::train {
namespace F = torch::nn::functional;

namespace {

/// Nearest-neighbour resize sampling each output pixel's centre (Pillow's NEAREST), so a map resized to its own
/// size is unchanged and no value is ever blended with the background. x: N x C x H x W.
torch::Tensor resize_nearest(const torch::Tensor& x, int64_t size) {
  const auto index = [&](int64_t in) {
    auto i = ((torch::arange(size, torch::kFloat64) + 0.5) * (static_cast<double>(in) / size)).floor();
    return i.clamp(0, in - 1).to(torch::kLong);
  };
  if (x.size(2) == size && x.size(3) == size) return x;
  return x.index_select(2, index(x.size(2))).index_select(3, index(x.size(3)));
}

/// The mirror image of a prepared sample under the official un-flip rules.
void mirror(TrainingBatch& b, nn::PredictionType type, double uv_offset) {
  b.image = b.image.flip({3});
  b.mask = b.mask.flip({3});
  auto t = b.target.flip({3}).clone();
  auto x = t.select(1, 0);
  if (type == nn::PredictionType::UV)
    x.mul_(-1).add_(2.0 * uv_offset);
  else
    x.mul_(-1);
  b.target = t;
}

/// Brightness, contrast, saturation and per-channel gains, in a fixed order. image: 1 x 3 x H x W.
torch::Tensor jitter_colour(const torch::Tensor& image, double j, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> factor(1.0 - j, 1.0 + j), gain(1.0 - j / 4, 1.0 + j / 4);
  const double brightness = factor(rng), contrast = factor(rng), saturation = factor(rng);
  const double gains[3] = {gain(rng), gain(rng), gain(rng)};
  auto x = image * brightness;
  const auto gray = (x * torch::tensor({0.299, 0.587, 0.114}, x.options()).view({1, 3, 1, 1})).sum(1, true);
  x = (x - gray.mean()) * contrast + gray.mean();
  const auto gray2 = (x * torch::tensor({0.299, 0.587, 0.114}, x.options()).view({1, 3, 1, 1})).sum(1, true);
  x = (x - gray2) * saturation + gray2;
  x = x * torch::tensor({gains[0], gains[1], gains[2]}, x.options()).view({1, 3, 1, 1});
  return x.clamp(0.0, 1.0);
}

/// Zoom and shift the same way at every resolution (affine_grid in normalised coordinates, align_corners false):
/// input position = output position / zoom + shift. Outside the source the image is black and the mask 0.
void crop(TrainingBatch& b, double zoom, double dx, double dy) {
  const auto theta = torch::tensor({1.0 / zoom, 0.0, dx, 0.0, 1.0 / zoom, dy}, torch::kFloat32).view({1, 2, 3});
  const auto warp = [&](const torch::Tensor& x, torch::nn::functional::GridSampleFuncOptions::mode_t mode) {
    const auto grid = F::affine_grid(theta, {1, x.size(1), x.size(2), x.size(3)}, false);
    return F::grid_sample(x, grid, F::GridSampleFuncOptions().mode(mode).padding_mode(torch::kZeros)
                                       .align_corners(false));
  };
  b.image = warp(b.image, torch::kBilinear);
  b.target = warp(b.target, torch::kNearest);
  b.mask = warp(b.mask, torch::kNearest);
}

}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = a;
  for (const uint64_t v : {b, c}) {
    x += 0x9e3779b97f4a7c15ULL + v;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
  }
  return x;
}

torch::Tensor target_to_raw(const torch::Tensor& target, nn::PredictionType type) {
  const int64_t c = target.dim() - 3;
  PIXEL3DMM_CHECK_T(ValueError, c == 0 || c == 1, "target_to_raw: expected C x H x W or B x C x H x W, found ",
                    shape_string(target.sizes()));
  PIXEL3DMM_CHECK_T(ValueError, target.size(c) == nn::prediction_channels(type), "target_to_raw: a ",
                    nn::to_string(type), " target has ", nn::prediction_channels(type), " channels, found ",
                    shape_string(target.sizes()));
  if (type == nn::PredictionType::UV) return target * 2.0 - 1.0;
  return torch::stack({target.select(c, 0), -target.select(c, 2), -target.select(c, 1)}, c);
}

int64_t output_size(const nn::NetworkConfig& config) {
  return 16 * config.image_size / config.backbone.patch_size();
}

TrainingBatch prepare_sample(const TrainingSample& sample, const nn::NetworkConfig& config,
                             const AugmentOptions* augment, uint64_t seed) {
  const auto type = config.prediction_type;
  const torch::Tensor& target = type == nn::PredictionType::UV ? sample.uv : sample.normals;
  const std::string what = "training sample '" + sample.id + "'";
  PIXEL3DMM_CHECK_T(ValueError, target.defined(), what, " has no ", nn::to_string(type),
                    " target, which this network trains on");
  check_shape(sample.image, {3, -1, -1}, what + " image");
  const int64_t h = sample.image.size(1), w = sample.image.size(2);
  check_shape(target, {nn::prediction_channels(type), h, w}, what + " " + nn::to_string(type));
  check_shape(sample.mask, {1, h, w}, what + " mask");

  const int64_t s = config.image_size, t = output_size(config);
  TrainingBatch b;
  b.ids = {sample.id};
  b.image = io::resize_pil_bicubic(sample.image.to(torch::kFloat32).unsqueeze(0), s, s).contiguous();
  b.target = target_to_raw(resize_nearest(target.to(torch::kFloat32).unsqueeze(0), t), type).contiguous();
  b.mask = (resize_nearest(sample.mask.to(torch::kFloat32).unsqueeze(0), t) > 0.5).to(torch::kFloat32);
  if (augment == nullptr) return b;

  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (augment->mirror && unit(rng) < 0.5) mirror(b, type, augment->uv_mirror_offset);
  if (augment->color_jitter > 0) b.image = jitter_colour(b.image, augment->color_jitter, rng);
  if (augment->crop_scale > 0 || augment->crop_shift > 0) {
    const double zoom = 1.0 + augment->crop_scale * (2.0 * unit(rng) - 1.0);
    const double dx = 2.0 * augment->crop_shift * (2.0 * unit(rng) - 1.0);  // normalised units span 2 per side
    const double dy = 2.0 * augment->crop_shift * (2.0 * unit(rng) - 1.0);
    crop(b, zoom, dx, dy);
  }
  return b;
}

TrainingBatch collate(const std::vector<TrainingBatch>& items) {
  PIXEL3DMM_CHECK_T(ValueError, !items.empty(), "collate: no samples");
  TrainingBatch out;
  std::vector<torch::Tensor> images, targets, masks;
  for (const auto& b : items) {
    out.ids.insert(out.ids.end(), b.ids.begin(), b.ids.end());
    images.push_back(b.image);
    targets.push_back(b.target);
    masks.push_back(b.mask);
  }
  out.image = torch::cat(images);
  out.target = torch::cat(targets);
  out.mask = torch::cat(masks);
  return out;
}

}  // namespace pixel3dmm::train
