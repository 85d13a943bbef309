#pragma once
/// Analytic antialiasing with silhouette gradients (the algorithm of nvdiffrast's `antialias`, Laine et al. 2020,
/// "Modular Primitives for High-Performance Differentiable Rendering", re-implemented for the CPU).
///
/// For every pair of horizontally or vertically adjacent pixels with different triangle ids, the triangle of the
/// nearer pixel (or the only one, if the other is background) is examined; the other pixel of the pair is its
/// neighbour. If one of its silhouette edges (an edge whose adjacent face folds away as seen from the camera, or a
/// boundary edge) crosses the segment between the two pixel centres, at fraction dc of the way from its own pixel,
/// the colour of one pixel is blended toward the other: with alpha = 1/2 - dc, the own pixel gets
/// alpha (c_other - c_own) when alpha > 0, else the neighbour gets -alpha (c_own - c_other). Only edges that are
/// more perpendicular than parallel to the pair's direction are used, so each edge is handled by either the
/// horizontal or the vertical pairs. dc within 1/16 pixel outside [0, 1] is clamped.
///
/// Gradients: to the colours (linear blend), and to the clip positions of the two edge vertices through dc (the
/// crossing point of the projected edge with the pixel segment); none when alpha saturated at +-1/2, as in
/// nvdiffrast. Unlike nvdiffrast the edge slope is not regularised by a 1e-3 px epsilon, so the gradient is exact.
/// Differences from nvdiffrast, all in degenerate cases: an edge shared by three or more faces counts as a
/// silhouette for all of them; a pair whose chosen triangle has a vertex at or behind the eye (w <= 0) is left alone.

#include <torch/torch.h>

#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::render {

/// faces: F x 3 vertex indices in [0, num_vertices) -> F x 3 int32: entry (f, i) is the vertex opposite edge i of
/// face f (the edge from vertex i+1 to vertex i+2, opposite vertex i) in the other face sharing that edge, or -1 for
/// a boundary edge, an edge of three or more faces, or a face with a repeated vertex. Linear time; compute it once
/// per topology and pass it to `antialias` to save the work per call.
torch::Tensor edge_topology(const torch::Tensor& faces, int64_t num_vertices);

/// color: B x H x W x C (channels last, the raster's size and dtype), raster from `rasterize`, topology from
/// `edge_topology(raster.faces, V)` or undefined to compute it here -> B x H x W x C antialiased colour.
/// Differentiable w.r.t. color and raster.pos_clip (silhouette and occlusion edges). Deterministic.
torch::Tensor antialias(const torch::Tensor& color, const RasterOutput& raster, const torch::Tensor& topology = {});

}  // namespace pixel3dmm::render
