#pragma once
/// Every setting of the fit, with the official tracker's defaults (configs/tracking.yaml and the hard-coded values
/// of tracker.py; official-fitting.md sections 4-6). `configs/fit.json` mirrors this struct one to one and
/// docs/fitting.md documents each field.

#include <string>

#include "pixel3dmm/io/config.h"

namespace pixel3dmm::fit {

/// Learning rates of the full per-frame stage (official lr_* and the hard-coded eyes/eyelids rates).
struct FitLearningRates {
  double exp = 0.005, eyes = 0.005, eyelids = 0.002, t = 0.001, R = 0.005, shape = 0.002, jaw = 0.005,
         neck = 0.001, focal = 0.1, pp = 5e-5;
};
PIXEL3DMM_CONFIG(FitLearningRates, exp, eyes, eyelids, t, R, shape, jaw, neck, focal, pp)

/// The camera warm-up stage (official optimize_camera, hard-coded values).
struct CameraStageConfig {
  int steps = 500;             ///< total warm-up steps
  int landmark_steps = 251;    ///< steps k <= 250 use the 68 landmarks, later ones the UV correspondences
  double lr_t = 0.001, lr_R = 0.005, lr_focal = 0.02, lr_pp = 1e-4;
  double lr_decay_at = 0.75;   ///< StepLR at int(0.75 * steps), gamma 0.1
  double lr_decay = 0.1;
  double w_landmarks = 3000.0; ///< weight of the 68-landmark loss
  double w_uv = 1000.0;        ///< weight of the L1 UV-vertex loss (no visibility)
};
PIXEL3DMM_CONFIG(CameraStageConfig, steps, landmark_steps, lr_t, lr_R, lr_focal, lr_pp, lr_decay_at, lr_decay,
                 w_landmarks, w_uv)

/// Loss weights and gates (official names in comments).
struct FitLossConfig {
  double uv = 2000.0;          ///< uv_map_super: UV-vertex and UV-pixel losses
  double normal = 1000.0;      ///< normal_super
  double silhouette = 500.0;   ///< sil_super (divided by 10 on the first / only frame, as the official code)
  double landmarks_eyes = 5000.0;      ///< w_lmks * 5 (iBUG 36-47)
  double landmarks_eyelids = 5e5;      ///< w_lmks_lid * 500
  double landmarks_iris = 5e4;         ///< w_lmks_iris * 50 (each eye)
  double landmarks_mouth = 0.0;        ///< w_lmks_mouth * 0.25 (0 by default)
  double landmarks_mouth_closure = 0.0;  ///< w_lmks_mouth * 2.5 (0 by default)
  double reg_exp = 0.05, reg_sym = 0.1, reg_jaw = 0.01, reg_neck = 0.1, reg_eyes = 0.01, reg_shape = 0.2,
         reg_shape_general = 0.05, reg_mirror = 5000.0, reg_pp = 1.0;
  double delta_uv = 5e-5;      ///< squared-UV gate of the correspondences
  double dist_uv = 20.0;       ///< pixel outlier gate (at 256 px)
  bool uv_l2 = true;
  double uv_pixel_gate = 0.0;  ///< not official (0 = off): drop UV pixels with |du| + |dv| >= gate from uv_pixel
  double delta_n = 0.33;       ///< normal outlier gate
  bool normal_l2 = false;
  int normal_mask_ksize = 13;  ///< eye-region dilation excluded from the normal loss
  bool occlusion_filter = true;  ///< occ_filter: depth test on UV-correspondence vertices
};
PIXEL3DMM_CONFIG(FitLossConfig, uv, normal, silhouette, landmarks_eyes, landmarks_eyelids, landmarks_iris,
                 landmarks_mouth, landmarks_mouth_closure, reg_exp, reg_sym, reg_jaw, reg_neck, reg_eyes, reg_shape,
                 reg_shape_general, reg_mirror, reg_pp, delta_uv, dist_uv, uv_l2, uv_pixel_gate, delta_n, normal_l2,
                 normal_mask_ksize, occlusion_filter)

struct FitConfig {
  int image_size = 256;        ///< render / loss resolution S (predictions are resized to it)
  int iters = 500;             ///< full-stage iterations (official default 200; 500-800 recommended for images)
  int n_shape = 300;           ///< identity coefficients optimised
  int n_expr = 100;            ///< expression coefficients optimised
  double focal_init = 3.90625; ///< normalised focal length (2000 px at 512)
  bool use_landmarks = true;   ///< landmark terms when landmarks are given (official no_lm = false)
  bool include_neck = true;
  bool optimise_camera_intrinsics = false;  ///< official: focal / pp frozen in the full stage (global camera)
  double early_stopping_delta = 5.0;        ///< later video frames: stop when mean |dloss| over 10 steps < delta
  /// A non-finite loss, gradient or parameter during optimisation: false = throw fit::NumericalFault (naming the
  /// stage and step); true = stop there and return the last finite parameters with FitResult::fault set.
  bool stop_on_numerical_fault = false;
  /// The silhouette term's mask (docs/fitting.md, "The silhouette mask"): "auto" = face + eyeballs as the
  /// official texture, generated from the model's face and eyeball vertex masks (fit::region_mask_texture), or the
  /// whole mesh's coverage for a model without them; "masks" = that texture, required; a path to the official
  /// uv_mask_eyes.png (face + eyeballs in UV space, > 0 per channel); "" = the whole mesh's coverage (ours).
  std::string silhouette_texture = "auto";
  CameraStageConfig camera;
  FitLearningRates lr;
  FitLossConfig loss;
};
PIXEL3DMM_CONFIG(FitConfig, image_size, iters, n_shape, n_expr, focal_init, use_landmarks, include_neck,
                 optimise_camera_intrinsics, early_stopping_delta, stop_on_numerical_fault, silhouette_texture, camera,
                 lr, loss)

}  // namespace pixel3dmm::fit
