#pragma once
/// The loss terms of the official single-image / per-frame fit (official-fitting.md section 4), one function each,
/// on plain tensors so that each can be tested alone. Pixel coordinates follow the analytic projection of the
/// official tracker: integer (x, y) is the centre of column x, row y, row 0 at the top; S is the render size.

#include <torch/types.h>

#include <vector>

namespace pixel3dmm::fit {

/// For each valid vertex, the predicted-UV pixel nearest in UV space (computed once per frame).
struct UVCorrespondences {
  torch::Tensor target_px;  ///< B x N x 2 float: (x, y) pixel of the nearest predicted-UV pixel
  torch::Tensor uv_dist2;   ///< B x N float: its squared UV distance (the validity gate compares this)
};

/// Exact 1-nearest-neighbour from each vertex UV to all H*W predicted-UV pixels (vertex -> pixel, squared
/// Euclidean distance), as pytorch3d's knn_points in the official code.
/// pred_uv: B x 2 x H x W predicted (u, 1 - v) in [0, 1], already zeroed outside the UV mask (the official code
/// keeps those zero pixels as candidates); vertex_uv: N x 2 canonical (u, 1 - v) of the valid vertices.
/// The target row is `idx / H` as in the official code (official quirk: `// H` instead of `// W`; identical for
/// the square maps the fitter uses).
UVCorrespondences uv_correspondences(const torch::Tensor& pred_uv, const torch::Tensor& vertex_uv);

/// Options of the 2D vertex (UV-correspondence) loss; defaults are the official ones at S = 256.
struct UVVertexLossOptions {
  double delta_uv = 5e-5;  ///< squared-UV-distance gate (UV distance < 0.00707)
  double dist_uv = 20.0;   ///< pixel-distance (L1, in pixels) outlier gate, re-evaluated every iteration
  bool l2 = true;          ///< L2 (official default) or L1
};

/// UV-correspondence loss (official `loss/uv` before its weight): with D = target - projected (pixels),
/// w = [uv_dist2 < delta_uv] * [|Dx| + |Dy| < dist_uv] * visible, returns mean((D / S * w)^2) * 100 over
/// (B, N, 2) (rejected entries count as zeros in the mean), or mean(|D / S * w|) for L1.
/// projected: B x N x 2 analytic projections of the valid vertices; visible: B x N (bool or float; undefined =
/// all visible); image_size: S.
torch::Tensor uv_vertex_loss(const torch::Tensor& projected, const UVCorrespondences& corr,
                             const torch::Tensor& visible, int64_t image_size, const UVVertexLossOptions& options = {});

/// Dense UV pixel loss (official `loss/uv_pixel` before its weight): mean over (B, 2, H, W) of
/// ((pred_uv - rendered_uv) * mask)^2 * 100 (L2) or |.| (L1). pred_uv, rendered_uv: B x 2 x H x W; mask: B x H x W.
/// gate > 0 (not official; the official loss has no outlier rejection) also drops pixels whose UV error
/// |du| + |dv| is gate or more, as the normal loss drops its outliers.
torch::Tensor uv_pixel_loss(const torch::Tensor& pred_uv, const torch::Tensor& rendered_uv, const torch::Tensor& mask,
                            bool l2 = true, double gate = 0.0);

/// Options of the dense normal loss; defaults are the official ones.
struct NormalLossOptions {
  double delta_n = 0.33;   ///< per-pixel outlier gate on the channel-mean absolute difference
  int64_t eye_dilation = 13;  ///< square dilation of the rendered eyeball mask excluded from the loss
  bool l2 = false;         ///< L1 (official default) or L2
};

/// Excludes the neighbourhood of the eyes: 1 - dilate(eye_mask > 0, k x k square). eye_mask: B x H x W.
/// (The official code blurs with a 13 x 13 Gaussian and thresholds > 0: the same set, borders included.)
torch::Tensor eye_exclusion_mask(const torch::Tensor& eye_mask, int64_t kernel = 13);

/// Dense normal loss (official `loss/normal` before its weight): l = pred - rendered (B x 3 x H x W, in the FLAME
/// frame), valid = mean_c |l| < delta_n, returns mean(|l * valid * normal_mask * eye_exclusion|) over (B, 3, H, W)
/// (or the mean of squares). normal_mask, eye_mask: B x H x W.
torch::Tensor normal_loss(const torch::Tensor& pred_normals, const torch::Tensor& rendered_normals,
                          const torch::Tensor& normal_mask, const torch::Tensor& eye_mask,
                          const NormalLossOptions& options = {});

/// Silhouette loss (official `loss/sil` before its weight): mean over (B, H, W) of valid_bg * |fg_mask - rendered|.
/// Since fg_mask is 0 wherever valid_bg is 1, it only pushes rendered coverage off background pixels.
/// fg_mask, rendered_fg, valid_bg: B x H x W.
torch::Tensor silhouette_loss(const torch::Tensor& fg_mask, const torch::Tensor& rendered_fg,
                              const torch::Tensor& valid_bg);

/// Landmark loss (official `lmk_loss` on positions divided by S): mean over (B, L, 2) of ((pred - target) / S)^2
/// * mask. pred, target: B x L x 2 pixels; mask: B x L (undefined = all valid).
torch::Tensor landmark_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& mask,
                            int64_t image_size);

/// Eyelid-closure loss (official `loss/lmk_eye`): compares the 2D vectors upper - lower of iBUG pairs
/// (37,41), (38,40), (43,47), (44,46) between model and image: mean over (B, 4, 2) of (delta / S)^2 * mask_upper.
/// pred68, target68: B x 68 x 2 pixels; mask68: B x 68 (undefined = all valid).
torch::Tensor eyelid_closure_loss(const torch::Tensor& pred68, const torch::Tensor& target68,
                                  const torch::Tensor& mask68, int64_t image_size);

/// Mouth-closure loss (official `lmk_mouth_closure`): as eyelid_closure_loss on upper [49..53, 61..63] vs lower
/// [59..55, 67..65].
torch::Tensor mouth_closure_loss(const torch::Tensor& pred68, const torch::Tensor& target68,
                                 const torch::Tensor& mask68, int64_t image_size);

/// Sum over the last dimension of squares, mean over the batch: the official form of every regulariser.
/// x: B x D; target: broadcastable to x (undefined = zero).
torch::Tensor sum_squares(const torch::Tensor& x, const torch::Tensor& target = {});

/// Mirror-symmetry regulariser (official `reg/mirror`): mean over (B, V) of ||mirror(v) - v||^2 where
/// mirror(v)[i] = (-x, y, z) of v[mirror_index[i]]. vertices: B x V x 3; mirror_index: V int64.
torch::Tensor mirror_loss(const torch::Tensor& vertices, const torch::Tensor& mirror_index);

}  // namespace pixel3dmm::fit
