#pragma once
/// Face crop -> per-pixel FLAME UV coordinates and normals, as the official network inference computes them
/// (official-network.md section 3): the crop is resized to the network's input size as Pillow does, both
/// networks run on it and on its mirror image, the mirrored outputs are un-flipped (UV: u -> -u + 2 * 0.0075,
/// normals: x -> -x) and averaged.

#include <torch/types.h>

#include <string>

#include "pixel3dmm/nn/network.h"

namespace pixel3dmm::predict {

/// The arithmetic the networks run in. BFloat16 runs both networks in bfloat16 (weights and activations; the
/// resize, mirror averaging and outputs stay float32): about 2x faster where the CPU multiplies bfloat16 natively,
/// at an error against float32 measured in docs/speed.md.
enum class Precision { Float32, BFloat16 };

/// "float32" / "fp32" -> Float32, "bf16" / "bfloat16" -> BFloat16; ValueError naming the accepted values otherwise.
Precision parse_precision(const std::string& name);
/// "float32" or "bf16".
std::string to_string(Precision precision);

/// Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX-BF16). Without them LibTorch emulates
/// bfloat16 in float32 arithmetic with conversions, slower than float32 itself.
bool cpu_has_native_bf16();

struct PredictorOptions {
  /// Mirror test-time averaging (the official inference always does it).
  bool mirror = true;
  /// Run the image and its mirror image as one batch (faster; the results differ from two separate passes
  /// only by float rounding).
  bool batch_mirror = true;
  /// BFloat16 needs cpu_has_native_bf16() (the Predictor refuses it otherwise, saying why).
  Precision precision = Precision::Float32;
};

/// The predictions for a batch of crops. Tensors are undefined for a network the predictor does not have.
struct Predictions {
  /// B x 2 x H x W in [0, 1]: clamp((o + 1) / 2, 0, 1) of the averaged UV output o, i.e. (u, 1 - v) of the FLAME
  /// texture coordinates, the value the official uv_map PNGs store and the fitter compares with.
  torch::Tensor uv;
  /// B x 3 x H x W unit vectors: (n0, -n2, -n1) of the normalised averaged output n, the official normals PNGs'
  /// convention ("normals in the FLAME coordinate system"), decoded to [-1, 1].
  torch::Tensor normals;
  /// The averaged raw outputs (UV in [-1, 1] units; unnormalised normals): B x 2 / 3 x H x W.
  torch::Tensor uv_raw, normals_raw;
};

class Predictor {
 public:
  /// Either network may be null (that prediction is then skipped); at least one must be given. With
  /// Precision::BFloat16 the predictor runs bfloat16 copies of the networks (the caller's stay float32);
  /// uv_net() / normals_net() return the copies.
  Predictor(nn::Pixel3DMMNet uv_net, nn::Pixel3DMMNet normals_net, PredictorOptions options = {});

  /// Loads converted networks (.safetensors with the .json beside it); an empty path skips that network.
  static Predictor load(const std::string& uv_weights, const std::string& normals_weights,
                        PredictorOptions options = {});

  /// rgb: B x 3 x H x W float32 RGB crops in [0, 1], any size (resized to the network's input size with
  /// io::resize_pil_bicubic, as the official inference's PIL resize) -> Predictions at the network's output size
  /// (512 x 512 for the official networks). No gradients; the networks run in eval mode.
  Predictions predict(const torch::Tensor& rgb) const;

  /// The network input for a crop: B x 3 x H x W -> B x 3 x S x S (S = the networks' image_size).
  torch::Tensor prepare(const torch::Tensor& rgb) const;

  const nn::Pixel3DMMNet& uv_net() const { return uv_net_; }
  const nn::Pixel3DMMNet& normals_net() const { return normals_net_; }
  const PredictorOptions& options() const { return options_; }
  int64_t image_size() const { return image_size_; }

 private:
  torch::Tensor run(nn::Pixel3DMMNet net, const torch::Tensor& x) const;

  nn::Pixel3DMMNet uv_net_{nullptr}, normals_net_{nullptr};
  PredictorOptions options_;
  int64_t image_size_ = 512;
};

/// The official un-mirroring of a prediction made on the mirror image: flip back (last axis) and negate
/// channel 0; for UV add 2 * 0.0075 to it. out: B x C x H x W.
torch::Tensor unmirror(const torch::Tensor& out, nn::PredictionType type);

/// Predictions::uv from the averaged raw UV output: B x 2 x H x W -> B x 2 x H x W.
torch::Tensor uv_from_raw(const torch::Tensor& uv_raw);
/// Predictions::normals from the averaged raw normals output: B x 3 x H x W -> B x 3 x H x W.
torch::Tensor normals_from_raw(const torch::Tensor& normals_raw);

/// The official uv_map PNG pixels: B x 2 x H x W raw UV -> B x H x W x 3 uint8,
/// trunc(255 * clamp((o + 1) / 2, 0, 1)) in channels 0 and 1, channel 2 zero.
torch::Tensor uv_png(const torch::Tensor& uv_raw);
/// The official normals PNG pixels: B x 3 x H x W raw normals -> B x H x W x 3 uint8,
/// t = clamp((n / |n| + 1) / 2, 0, 1); trunc(255 * [t0, 1 - t2, 1 - t1]).
torch::Tensor normals_png(const torch::Tensor& normals_raw);
/// The official "p3dmm_wGT" picture: the network input beside the prediction, trunc(255 * [rgb | t]).
/// rgb: B x 3 x H x W in [0, 1]; png: B x H x W x 3 uint8 from uv_png / normals_png -> B x H x 2W x 3 uint8.
torch::Tensor side_by_side_png(const torch::Tensor& rgb, const torch::Tensor& png);

/// Writes an H x W x 3 uint8 RGB tensor as a PNG file, atomically. Throws Error naming the path on failure.
void write_png_rgb8(const std::string& path, const torch::Tensor& pixels);

}  // namespace pixel3dmm::predict
