#pragma once
/// The reconstruction itself: FLAME identity, expression, jaw / neck / eye pose, eyelids, the head pose and the
/// camera, optimised with Adam through the differentiable renderer against per-pixel UV and normal predictions,
/// as the official Pixel3DMM tracker's single-image path (official-fitting.md sections 4 and 5):
///   stage A  camera warm-up: head R, t, focal, principal point against 68 landmarks, then UV correspondences;
///   stage B  full fit: every FLAME parameter and R, t against UV correspondences, dense UV, normals, silhouette,
///            eye / eyelid / iris landmarks and the regularisers; camera intrinsics frozen.
/// Image sets (several photos of one person) fit jointly: one identity, per-image everything else.

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/fit/losses.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/mesh_renderer.h"

namespace pixel3dmm::fit {

/// What one image contributes. Maps may have any resolution (square; the official predictions are 512 x 512):
/// they are resized to FitConfig::image_size as the official loader does (bicubic for maps, nearest for masks).
/// Undefined optional tensors switch their terms off.
struct FitTarget {
  torch::Tensor uv;            ///< 1 x 2 x H x W predicted (u, 1 - v) in [0, 1]
  torch::Tensor normals;       ///< 1 x 3 x H x W predicted normals in the FLAME frame, [-1, 1]
  torch::Tensor uv_mask;       ///< 1 x H x W where UV predictions count (official: skin, brows, nose, lips, ears, neck)
  torch::Tensor normal_mask;   ///< 1 x H x W where normal predictions count (official: skin, brows, nose, lips, mouth)
  torch::Tensor fg_mask;       ///< 1 x H x W face foreground (optional; default = normal_mask)
  torch::Tensor valid_bg;      ///< 1 x H x W background pixels the face must not cover (optional: no silhouette term)
  torch::Tensor landmarks;     ///< 1 x 68 x 2 iBUG landmarks in pixels of the maps (optional)
  torch::Tensor landmark_mask; ///< 1 x 68 (optional; default: landmarks not at (0, 0), as the official code)
  torch::Tensor iris;          ///< 1 x 2 x 2 pupils in pixels, image-left eye first (optional)
  torch::Tensor image;         ///< 1 x 3 x H x W the crop, only for pictures of the result (optional)
  /// 1 x K or K: an estimate of the person's identity from this image (optional), e.g. MICA's shape code.
  /// K = FitConfig::n_shape, or the FLAME module's identity count (FLAME: 300, MICA's output) of which the first
  /// n_shape are used. The fit's identity prior is the mean of the codes of its targets (the official tracker
  /// averages the MICA codes of its frames): the identity starts there and `reg/shape` pulls toward it, while
  /// `reg/shape_general` pulls toward zero. No target with a code: the prior is zero (official `ignore_mica`).
  torch::Tensor identity;
};

/// The fitted parameters (official names in comments). B = number of images; shape is shared (1 row).
struct FitParams {
  torch::Tensor shape;            ///< 1 x n_shape identity (`shape`)
  torch::Tensor expression;       ///< B x n_expr (`exp`)
  torch::Tensor jaw;              ///< B x 6, 6D (`jaw`)
  torch::Tensor neck;             ///< B x 6, 6D (`neck`)
  torch::Tensor eyes;             ///< B x 12, two 6D rotations (`eyes`)
  torch::Tensor eyelids;          ///< B x 2 (`eyelids`)
  torch::Tensor rotation;         ///< B x 6 head rotation, 6D (`R`)
  torch::Tensor translation;      ///< B x 3 head translation, metres (`t`)
  torch::Tensor focal;            ///< 1 x 1 normalised focal length (`fl`)
  torch::Tensor principal_point;  ///< 1 x 2 normalised principal point (`pp`)

  /// The official initialisation: zeros, identity rotations, focal `focal_init`, for B images; the identity
  /// `identity` (1 x n_shape, the prior; undefined: zeros).
  static FitParams initial(int64_t batch, int64_t n_shape, int64_t n_expr, double focal_init,
                           const torch::Tensor& identity = {});
  /// A detached deep copy.
  FitParams clone() const;
  /// Name -> tensor, official names (shape, exp, jaw, neck, eyes, eyelids, R, t, fl, pp).
  std::map<std::string, torch::Tensor> named() const;
  int64_t batch_size() const { return expression.size(0); }
};

/// One logged optimisation step.
struct FitLogEntry {
  std::string stage;                    ///< "camera" or "full"
  int step = 0;
  double total = 0.0;
  std::map<std::string, double> terms;  ///< weighted loss terms
};

/// The outcome of a fit.
struct FitResult {
  FitParams params;
  render::Camera camera;         ///< the fitted camera at FitConfig::image_size
  torch::Tensor vertices;        ///< B x V x 3 world (head pose applied): what the camera sees
  torch::Tensor vertices_flame;  ///< B x V x 3 FLAME space, posed, no head R / t (the official mesh/*.ply)
  torch::Tensor canonical;       ///< 1 x V x 3 template + identity, neutral (the official canonical.ply)
  torch::Tensor landmarks2d;     ///< B x 68 x 2 projected model landmarks (analytic projection, pixels at S)
  torch::Tensor identity_prior;  ///< 1 x n_shape the prior the identity was pulled toward; undefined: none (zero)
  std::vector<FitLogEntry> log;
  double seconds = 0.0;
  int iterations = 0;            ///< optimisation steps taken, both stages
  /// Empty, or (with FitConfig::stop_on_numerical_fault) what stopped the fit early: "non-finite loss at full-stage
  /// step 12 (terms: uv)"; `params` are then the last finite ones (before that step).
  std::string fault;
};

/// A NaN / Inf appeared in the loss, a gradient or a parameter during optimisation (FitConfig::
/// stop_on_numerical_fault is false). The message names the stage, the step and the non-finite terms or
/// parameters; `fault()` is that description alone. (Non-finite *inputs* are refused earlier with ValueError.)
class NumericalFault : public Error {
 public:
  explicit NumericalFault(const std::string& fault)
      : Error("fit: " + fault + "; set stop_on_numerical_fault to keep the last finite parameters"), fault_(fault) {}
  const std::string& fault() const { return fault_; }

 private:
  std::string fault_;
};

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

/// Called after every step with the log entry; return false to stop early.
using FitCallback = std::function<bool(const FitLogEntry&)>;

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

/// Which parts of the schedule a fit runs. The defaults are the single-image / image-set fit; the video tracker's
/// online stage (official-fitting.md 6.1) freezes the identity, skips the camera warm-up after the first frame,
/// uses the full silhouette weight and stops early.
struct FitStages {
  bool camera = true;                 ///< stage A, the camera warm-up
  bool optimise_shape = true;         ///< identity in stage B (official: frozen for video frames, `freeze_id`)
  bool first_frame = true;            ///< silhouette weight / 10 (official `is_first_step`)
  double early_stopping_delta = 0.0;  ///< > 0: stop stage B once p > 10 and the mean |loss_p - loss_p-1| over
                                      ///< the last 10 steps (ring buffer started at 100) is below it
  int iters = -1;                     ///< stage B steps; < 0: FitConfig::iters
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
