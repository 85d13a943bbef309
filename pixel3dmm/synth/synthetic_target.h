#pragma once
/// Ground truth for the fitter: random FLAME parameters, and the maps a perfect network would predict for them
/// (rendered UV and FLAME-frame normals, masks, projected landmarks and pupils, the label map a perfect face parser
/// would return), optionally corrupted with noise and outlier pixels. Used by the tests, the fitting benchmark and the
/// demo; eval/vertex_error.h measures the fits.

#include <torch/torch.h>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/params.h"

namespace pixel3dmm::synth {

struct RandomParamsOptions {
  double shape_std = 1.0;       ///< identity coefficients ~ N(0, shape_std^2)
  double expr_std = 0.8;        ///< expression coefficients ~ N(0, expr_std^2)
  double yaw_deg = 30.0;        ///< head yaw uniform in [-yaw, yaw]
  double pitch_deg = 15.0;      ///< head pitch uniform in [-pitch, pitch]
  double roll_deg = 8.0;        ///< head roll uniform in [-roll, roll]
  double jaw_deg = 12.0;        ///< jaw opening uniform in [0, jaw]
  double neck_deg = 0.0;        ///< neck yaw and pitch uniform in [-neck, neck] (0: no neck rotation, no draw)
  double translation_m = 0.02;  ///< x, y uniform in [-t, t]; z in [-2t, 2t]
  double focal_min = 3.4, focal_max = 4.4;  ///< normalised focal (fit at the official 3.90625 start)
  double eyelid_max = 0.5;                  ///< eyelids uniform in [0, max]
};

/// Random parameters for `batch` images of one identity (shape shared), deterministic in `seed`.
fit::FitParams random_params(int64_t batch, int64_t n_shape, int64_t n_expr, uint64_t seed,
                             const RandomParamsOptions& options = {});

struct SyntheticTargetOptions {
  int64_t size = 256;             ///< map resolution
  double uv_noise = 0.003;        ///< Gaussian noise on UV predictions (UV units)
  double normal_noise = 0.05;     ///< Gaussian noise on normals
  double outlier_fraction = 0.1;  ///< share of foreground pixels replaced by uniform garbage
  double landmark_noise = 1.0;    ///< Gaussian landmark noise (pixels at `size`)
  uint64_t seed = 0;
};

/// A target and its ground truth.
struct SyntheticTarget {
  fit::FitTarget target;
  /// size x size int64: what a perfect face parser would return, in facer's celebm ids (pixel3dmm/preprocess/
  /// masks.h): per pixel the label of the nearest corner of the visible triangle (parser_vertex_labels), 0 on the
  /// background. preprocess::masks_from_segmentation turns it into the official masks (the noise-free maps).
  torch::Tensor labels;
  torch::Tensor vertices;        ///< 1 x V x 3 world-space ground truth
  torch::Tensor vertices_flame;  ///< 1 x V x 3 FLAME-space posed ground truth
  torch::Tensor canonical;       ///< 1 x V x 3 neutral ground truth (template + identity)
};

/// The celebm label a perfect face parser gives each vertex of a FLAME-layout model, from the model's region masks
/// (FLAME_masks.pkl names; the synthetic model has the same): skin (2) by default, then in this order, later
/// winning: scalp -> hair (14), neck -> neck (1), face and forehead -> skin (2), right_ear / left_ear -> 4 / 5, nose
/// -> 10, lips -> upper lip (13) above their mean rest-pose height, lower lip (12) below, right_eyeball /
/// left_eyeball -> eyes 8 / 9. A missing mask is skipped. FLAME has no brow or mouth-interior region: brows are
/// skin, which every official mask rule treats as it treats brows (6, 7); no pixel gets 11. -> V int64.
torch::Tensor parser_vertex_labels(const flame::FlameModel& model);

/// Renders image `index` of `truth` with the fitter's model and renderer at `options.size`.
SyntheticTarget render_synthetic_target(const fit::Fitter& fitter, const fit::FitParams& truth, int64_t index,
                                        const SyntheticTargetOptions& options = {});

}  // namespace pixel3dmm::synth
