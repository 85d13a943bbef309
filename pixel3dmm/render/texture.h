#pragma once
/// Bilinear lookup of a fixed texture at per-pixel texture coordinates (nvdiffrast's `texture` with linear
/// filtering), differentiable with respect to the coordinates. One fused kernel for what `grid_sample` (with border
/// padding, align_corners=false) followed by a coverage multiply computes, without grid_sample's normalised grid,
/// its channels-first output and the permutes around it.

#include <torch/torch.h>

#include <array>

namespace pixel3dmm::render {

/// texture: C x Ht x Wt (any floating dtype; converted to coords' dtype; never differentiated).
/// coords: B x H x W x 2 float32/float64 (channels last, as `interpolate` returns them); the texel-space position
/// of a pixel is (x, y) = (coords[..., 0] * scale[0] + offset[0], coords[..., 1] * scale[1] + offset[1]), with
/// texel (i, j) (column i, row j) centred at (i, j).
/// triangle_id: B x H x W int32 (the raster's): pixels with an id < 0 get 0 and pass no gradient.
/// Returns B x H x W x C: the bilinear blend of the four texels around (x, y), each coordinate first clamped to
/// [0, Wt - 1] / [0, Ht - 1] (grid_sample's border padding; a clamped coordinate gets no gradient).
/// Backward: to coords only (dL/dcoords = scale * dL/d(x, y)), from d(out)/d(coords) (B x H x W x C x 2) that the
/// forward keeps when coords require grad: the backward reads no texels.
torch::Tensor sample_texture(const torch::Tensor& texture, const torch::Tensor& coords,
                             const torch::Tensor& triangle_id, std::array<double, 2> scale,
                             std::array<double, 2> offset);

}  // namespace pixel3dmm::render
