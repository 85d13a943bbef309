#pragma once
/// The value types of a fit: what one image contributes (FitTarget), the fitted parameters (FitParams), what a fit
/// returns (FitResult, FitLogEntry) and which stages it runs (FitStages). The algorithm is fit/fitter.h; code that
/// only passes these values around includes this header.

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/render/camera.h"

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

/// Called after every step with the log entry; return false to stop early.
using FitCallback = std::function<bool(const FitLogEntry&)>;

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

}  // namespace pixel3dmm::fit
