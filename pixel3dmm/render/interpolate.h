#pragma once
/// Perspective-correct attribute interpolation over a raster (nvdiffrast's `interpolate`), differentiable with
/// respect to the attributes and to the clip positions that were rasterised.

#include <torch/torch.h>

#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::render {

/// attr: B x V x C, 1 x V x C or V x C (shared by the batch), dtype of raster.pos_clip; faces: F x 3 indices into
/// attr's V, defaulting to raster.faces (pass separate faces for per-corner attributes such as UVs with their own
/// index buffer; F must equal the rasterised face count). Returns B x H x W x C (channels last, like nvdiffrast):
/// b0 a[f0] + b1 a[f1] + (1 - b0 - b1) a[f2] at covered pixels, 0 elsewhere.
///
/// Backward: to attr (scatter of the barycentric weights) and to raster.pos_clip through the perspective-correct
/// barycentrics b = M^-1 q / sum(M^-1 q): dL/d(x_j, y_j, w_j) = -b_j M^-T (g - (g . b) 1) with g_i = dL/db_i
/// (z receives no gradient). Gradients inside triangles only; visibility changes at edges get theirs from
/// `antialias`. Accumulation is in float64, per thread chunk, so results are reproducible for a thread count.
torch::Tensor interpolate(const torch::Tensor& attr, const RasterOutput& raster, const torch::Tensor& faces = {});

}  // namespace pixel3dmm::render
