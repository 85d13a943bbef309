#pragma once
/// The official PNG encodings of the network's maps, in one place for every writer and reader (prediction outputs,
/// training targets, dataset previews): uv (u, 1 - v) in channels 0 and 1, channel 2 zero; normals (n + 1) / 2.
/// 8-bit files store round(255 x), 16-bit ones round(65535 x) (io::write_image / io::read_image).

#include <torch/types.h>

namespace pixel3dmm::io {

/// uv: [B x] 2 x H x W, (u, 1 - v) in [0, 1] -> [B x] 3 x H x W image (u, 1 - v, 0), clamped to [0, 1].
torch::Tensor uv_png_image(const torch::Tensor& uv);

/// normals: [B x] 3 x H x W in [-1, 1] -> [B x] 3 x H x W image (n + 1) / 2, clamped to [0, 1].
torch::Tensor normals_png_image(const torch::Tensor& normals);

/// image: [B x] 3 x H x W in [0, 1] (io::read_image of a uv PNG) -> [B x] 2 x H x W (u, 1 - v).
torch::Tensor uv_from_png_image(const torch::Tensor& image);

/// image: [B x] 3 x H x W in [0, 1] (io::read_image of a normals PNG) -> [B x] 3 x H x W normals 2 x - 1.
torch::Tensor normals_from_png_image(const torch::Tensor& image);

}  // namespace pixel3dmm::io
