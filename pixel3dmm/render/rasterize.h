#pragma once
/// Triangle rasterisation of clip-space meshes on the CPU (the counterpart of nvdiffrast's `rasterize`).
///
/// Pixel convention (nvdiffrast's): pixel (col, row) samples NDC ((2 col + 1)/W - 1, (2 row + 1)/H - 1), so row 0
/// is NDC y = -1. With the library's projection matrix (camera.h, -2fy/H) that row is the top of the image: images
/// come out upright.
///
/// Coverage is decided per pixel in homogeneous coordinates (no 2D projection of vertices, so vertices behind the
/// camera are handled exactly): with M = [[x0 x1 x2], [y0 y1 y2], [w0 w1 w2]] and q = (X, Y, 1) the pixel's NDC
/// position, e = adj(M) q; the pixel's ray meets the triangle in front of the eye iff every e_i has the sign of
/// det M. The perspective-correct barycentrics are b = e / sum(e), and the hit point P = sum b_i p_i is then clipped
/// against OpenGL's depth range -P.w <= P.z <= P.w, which is exactly what clipping the triangle against the near and
/// far planes before rasterising would give (barycentrics stay relative to the original triangle, as in nvdiffrast).
/// Triangles with det M = 0 (zero screen area, or their plane passes through the eye) cover nothing. Both facings
/// are drawn (no culling), as in nvdiffrast.
///
/// Visibility: the smallest NDC depth z/w wins; on equal depth the lower triangle id wins, so the output depends on
/// neither the thread count nor the scheduling. Edges are inclusive (a pixel exactly on a shared edge goes to the
/// nearer, then lower-id, triangle).

#include <torch/torch.h>

namespace pixel3dmm::render {

/// What `rasterize` returns. The clip positions and faces are kept (by reference, not copied) because
/// `interpolate` and `antialias` differentiate through them.
struct RasterOutput {
  torch::Tensor triangle_id;  ///< B x H x W int32, index into faces, -1 where no triangle covers the pixel
  torch::Tensor bary;         ///< B x H x W x 2 (b0, b1) perspective-correct, b2 = 1 - b0 - b1; 0 on background
  torch::Tensor depth;        ///< B x H x W NDC depth z/w in [-1, 1] (smaller = nearer); 0 on background
  torch::Tensor pos_clip;     ///< B x V x 4 the clip positions that were rasterised (dtype of bary and depth)
  torch::Tensor faces;        ///< F x 3 int64 vertex indices that were rasterised
  int64_t height = 0;
  int64_t width = 0;

  /// B x H x W x 4 in nvdiffrast's layout (b0, b1, z/w, triangle_id + 1), dtype of `bary`.
  torch::Tensor nvdiffrast_layout() const;
  /// B x H x W bool: a triangle covers the pixel.
  torch::Tensor coverage() const;
};

/// pos_clip: B x V x 4 (float32 or float64) clip coordinates; faces: F x 3 int32/int64 vertex indices in [0, V).
/// Returns the visible triangle, its barycentrics and depth per pixel of an height x width image. Not
/// differentiable (gradients flow through `interpolate` and `antialias`). Runs on at::get_num_threads() threads
/// over 16 x 16-pixel tiles, each triangle binned into the tiles its clipped bounding box touches.
/// Throws ValueError on wrong shapes/dtypes, out-of-range face indices, or non-finite positions.
RasterOutput rasterize(const torch::Tensor& pos_clip, const torch::Tensor& faces, int64_t height, int64_t width);

}  // namespace pixel3dmm::render
