#pragma once
/// The reconstruction itself: FLAME identity, expression, jaw / neck / eye pose, eyelids, the head pose and the
/// camera, optimised with Adam through the differentiable renderer against per-pixel UV and normal predictions,
/// as the official Pixel3DMM tracker's single-image path (official-fitting.md sections 4 and 5):
///   stage A  camera warm-up: head R, t, focal, principal point against 68 landmarks, then UV correspondences;
///   stage B  full fit: every FLAME parameter and R, t against UV correspondences, dense UV, normals, silhouette,
///            eye / eyelid / iris landmarks and the regularisers; camera intrinsics frozen.
/// Image sets (several photos of one person) fit jointly: one identity, per-image everything else.

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/fit/losses.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/mesh_renderer.h"

namespace pixel3dmm::fit {

/// The per-vertex data the losses need besides FLAME itself, derived from the FLAME model's masks.
struct FitAssets {
  torch::Tensor uv_vertices;    ///< N int64: vertices of the UV-correspondence loss (official VALID_VERTS)
  torch::Tensor uv_vertex_uv;   ///< N x 2 their canonical (u, 1 - v)
  torch::Tensor eye_vertices;   ///< eyeball vertices (normal-loss exclusion, eye region masks)
  torch::Tensor iris_vertices;  ///< 2: image-left pupil vertex, image-right pupil vertex (official 4597, 4051)
  torch::Tensor mirror_index;   ///< V (undefined: no mirror regulariser)

  /// From a FLAME model: uv_vertices = mask "uv_valid" if present (the official asset
  /// uv_valid_verty_noEyes_noEyeRegion_debug_wEars.npy, converter option --uv-vertices), else ours:
  /// (face \ eye_region) + ears + neck; eye_vertices = left_eyeball + right_eyeball; iris = masks
  /// "iris_image_left"/"iris_image_right" if present, else the official FLAME vertices 4597 / 4051 on FLAME's
  /// topology (5023 vertices, 9976 faces, 4597 in right_eyeball, 4051 in left_eyeball), else the front-most
  /// rest-pose vertex of right_eyeball / left_eyeball (the subject's right eye appears on the image's left).
  /// Throws ValueError naming what the model lacks (per-vertex UVs, face or eyeball masks).
  static FitAssets from_model(const flame::FlameModel& model);
};

/// Targets resized to the fit resolution S, with their UV correspondences: what the loss terms read. The video
/// tracker prepares each frame once and reuses the rows in its global stage. B = number of targets.
struct PreparedTargets {
  int64_t batch = 0, size = 0;
  torch::Tensor uv, normals;                              ///< B x 2 x S x S (zeroed outside uv_mask), B x 3 x S x S
  torch::Tensor uv_mask, normal_mask, fg_mask, valid_bg;  ///< B x S x S (valid_bg undefined: no silhouette term)
  torch::Tensor landmarks, landmark_mask;                 ///< B x 68 x 2 pixels at S, B x 68 (undefined: none)
  torch::Tensor iris, iris_mask;                          ///< B x 2 x 2, B x 2 (undefined: none)
  UVCorrespondences corr;                                 ///< B x N correspondences of the UV-vertex loss
  /// 1 x n_shape: the identity prior of the whole set (mean of the targets' `identity` codes; undefined: none,
  /// i.e. zero), the start of the identity and the target of reg/shape; `rows` keeps it as it is.
  torch::Tensor identity_prior;
  int64_t identity_codes = 0;                             ///< how many codes identity_prior averages

  /// The targets at `rows` (int64 indices), in that order.
  PreparedTargets rows(const torch::Tensor& rows) const;
  /// Concatenates along the batch; an optional field that some parts lack is filled with zeros (and zero masks);
  /// the identity prior is the mean of the parts' priors weighted by their identity_codes.
  static PreparedTargets cat(const std::vector<PreparedTargets>& parts);
};

class Fitter {
 public:
  Fitter(flame::Flame flame, FitConfig config = {});

  /// Fits one image (or, with several targets, one person in several images: shared identity, per-image
  /// expression, pose and head placement, one camera).
  FitResult fit(const std::vector<FitTarget>& targets, const FitCallback& on_step = {}) const;
  FitResult fit(const FitTarget& target, const FitCallback& on_step = {}) const {
    return fit(std::vector<FitTarget>{target}, on_step);
  }

  /// Fits starting from `start` (e.g. the previous video frame's result) instead of the official neutral start
  /// (or the identity prior); `start` must have as many images as `targets` and the configured component counts.
  /// The targets' identity codes still set the prior reg/shape pulls toward.
  FitResult fit_from(const std::vector<FitTarget>& targets, const FitParams& start,
                     const FitCallback& on_step = {}) const;
  /// Landmark-only baseline with the same schedule: UV, normal and silhouette terms off; 68 landmarks (not only
  /// the eyes) drive the full stage. For comparisons (benchmark), not the method.
  FitResult fit_landmarks_only(const std::vector<FitTarget>& targets, const FitCallback& on_step = {}) const;

  /// Resizes targets to S and computes their UV correspondences (exact 1-NN, the costly part of preparation) and
  /// the identity prior (identity_prior).
  PreparedTargets prepare(const std::vector<FitTarget>& targets) const;
  /// The mean of the targets' identity codes, 1 x n_shape float32 (undefined when none has one), and how many
  /// there were. Throws ValueError naming the target on a code of the wrong size or with NaN / Inf.
  std::pair<torch::Tensor, int64_t> identity_prior(const std::vector<FitTarget>& targets) const;
  /// The general form of fit / fit_from: prepared targets, a start (B rows as the targets) and the stages to run.
  FitResult fit_stages(const PreparedTargets& data, const FitParams& start, const FitStages& stages,
                       const FitCallback& on_step = {}) const;
  /// The weighted loss terms of the full stage for parameters of B = data.batch images (official names:
  /// lmk_eye2, lmk_eye, lmk_iris_*, reg/*, uv, uv_pixel, normal, sil). silhouette_weight: the sil term's weight
  /// (official: FitLossConfig::silhouette, / 10 on the first frame). The video tracker's global stage adds its
  /// smoothness terms to these.
  std::map<std::string, torch::Tensor> full_stage_terms(const FitParams& params, const PreparedTargets& data,
                                                        double silhouette_weight,
                                                        bool landmarks_only = false) const;

  /// Parameters with n_shape / n_expr components zero-padded to the FLAME module's counts (what evaluate takes).
  FitParams padded(const FitParams& params) const;

  /// Evaluates the model for parameters: vertices (world and FLAME space), normals-mesh, landmarks.
  struct Evaluation {
    flame::FlameOutput flame;  ///< FLAME-space outputs
    torch::Tensor vertices;    ///< B x V x 3 world
    torch::Tensor landmarks;   ///< B x 68 x 3 world
    torch::Tensor rotation;    ///< B x 3 x 3 head rotation
  };
  Evaluation evaluate(const FitParams& params) const;

  /// The camera for parameters at the fit resolution.
  render::Camera camera(const FitParams& params) const;

  const FitConfig& config() const { return config_; }
  const FitAssets& assets() const { return assets_; }
  const render::MeshRenderer& renderer() const { return renderer_; }
  flame::Flame flame() const { return flame_; }

 private:
  FitResult run(const PreparedTargets& data, const FitCallback& on_step, bool landmarks_only,
                const FitParams* start, const FitStages& stages) const;

  flame::Flame flame_;
  FitConfig config_;
  FitAssets assets_;
  render::MeshRenderer renderer_;
};

}  // namespace pixel3dmm::fit
