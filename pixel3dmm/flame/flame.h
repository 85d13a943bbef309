#pragma once
/// Flame: the differentiable FLAME head model as a torch::nn::Module (blendshapes, pose correctives, linear blend
/// skinning over root / neck / jaw / eyes, eyelid blendshapes, 68 landmarks with the yaw-dependent contour),
/// following the official Pixel3DMM tracker's FLAME.py forward (see docs/flame.md for every convention).

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "pixel3dmm/flame/flame_model.h"
#include "pixel3dmm/flame/rotation.h"

namespace pixel3dmm::flame {

/// FLAME's joints, in kinematic-tree order.
enum Joint : int64_t { kRoot = 0, kNeck = 1, kJaw = 2, kLeftEye = 3, kRightEye = 4, kNumJoints = 5 };

struct FlameOptions {
  /// Identity coefficients used (the first n of the file's identity basis); -1 = all (300 for FLAME).
  TORCH_ARG(int64_t, n_shape) = -1;
  /// Expression coefficients used; -1 = all (100 for FLAME).
  TORCH_ARG(int64_t, n_expr) = -1;
  /// How joint rotations are given: 6D (the official tracker) or axis-angle.
  TORCH_ARG(RotationRep, rotation) = RotationRep::SixD;
  /// dtype of the buffers and of every floating-point input and output (float32 or float64).
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat;
  /// Replace the jaw rotation by the identity, as the official code does with FLAME 2023's `no_jaw` model.
  TORCH_ARG(bool, zero_jaw) = false;
  /// Also run LBS with the neck at rest (`vertices_noneck`, used by the official normal loss); the two passes
  /// share one batched LBS.
  TORCH_ARG(bool, compute_noneck) = true;
};

/// Inputs of Flame::forward. Undefined tensors mean "zero" (coefficients, eyelids, translation) or "identity"
/// (rotations). All defined tensors share the batch size B and the module's dtype. Rotations are 6D (B x 6 per
/// joint) or axis-angle (B x 3 per joint) per FlameOptions::rotation.
struct FlameParams {
  torch::Tensor shape;            ///< B x n_shape identity coefficients
  torch::Tensor expression;       ///< B x n_expr expression coefficients
  torch::Tensor global_rotation;  ///< B x 3|6 root joint rotation (about the root joint, not the origin)
  torch::Tensor neck_pose;        ///< B x 3|6
  torch::Tensor jaw_pose;         ///< B x 3|6
  torch::Tensor eye_pose;         ///< B x 6|12: [:, first half] drives joint 3 (left eye), second half joint 4
  torch::Tensor eyelids;          ///< B x 2: [:, 0] scales l_eyelid, [:, 1] r_eyelid (added after skinning)
  torch::Tensor translation;      ///< B x 3 metres, added to every posed output
  /// B x 3 x 3: replaces the global rotation when choosing the dynamic contour (rel = M R_neck). The official
  /// tracker uses camera_rotation * R_head^-1 here (its `cameras` times `rot_params_lmk_shift`).
  torch::Tensor landmark_rotation;
};

/// Outputs of Flame::forward (dtype of the module).
struct FlameOutput {
  torch::Tensor vertices;         ///< B x V x 3 posed, with eyelids and translation
  torch::Tensor vertices_noneck;  ///< B x V x 3 posed with the neck at rest, no eyelids (undefined unless
                                  ///< FlameOptions::compute_noneck)
  torch::Tensor v_shaped;         ///< B x V x 3 template + identity + expression offsets, unposed
  torch::Tensor joints;           ///< B x 5 x 3 posed joints (with translation)
  torch::Tensor transforms;       ///< B x 5 x 4 x 4 relative joint transforms A (no translation)
  torch::Tensor landmarks;        ///< B x (C + L) x 3: C dynamic contour then L static landmarks, i.e. the 68
                                  ///< iBUG landmarks for FLAME's embedding (undefined if the model has none)
  torch::Tensor contour_bin;      ///< B int64: the yaw bin the contour came from
};

class FlameImpl : public torch::nn::Cloneable<FlameImpl> {
 public:
  explicit FlameImpl(FlameModel model, FlameOptions options = {});
  /// Loads the model file (.npz / .safetensors).
  explicit FlameImpl(const std::string& model_path, FlameOptions options = {});

  /// (Re)builds the buffers from the model: pre-reshaped bases for one GEMM each.
  void reset() override;

  FlameOutput forward(const FlameParams& params);

  /// Zero coefficients and identity rotations for a batch (in the module's representation and dtype).
  FlameParams neutral_params(int64_t batch_size = 1) const;

  const FlameOptions& options() const { return options_; }
  const FlameModel& model() const { return *model_; }
  int64_t n_shape() const { return n_shape_; }
  int64_t n_expr() const { return n_expr_; }
  int64_t n_vertices() const { return model_->n_vertices(); }
  /// F x 3 int64 vertex indices.
  const torch::Tensor& faces() const { return faces_; }
  torch::Dtype dtype() const { return v_template_.scalar_type(); }

  void pretty_print(std::ostream& stream) const override;

 private:
  std::shared_ptr<const FlameModel> model_;
  FlameOptions options_;
  int64_t n_shape_ = 0, n_expr_ = 0;
  std::vector<int64_t> parents_;
  // Buffers (floating point; follow .to(dtype)).
  torch::Tensor v_template_;   // 1 x 3V
  torch::Tensor shape_dirs_;   // S x 3V
  torch::Tensor expr_dirs_;    // E x 3V
  torch::Tensor pose_dirs_;    // 36 x 3V
  torch::Tensor j_template_;   // 1 x 3J
  torch::Tensor j_shape_dirs_; // S x 3J   (J_regressor applied to the bases: joints are linear in betas)
  torch::Tensor j_expr_dirs_;  // E x 3J
  torch::Tensor lbs_weights_t_;  // J x V (transposed for the skinning kernel)
  torch::Tensor eyelid_dirs_;  // 2 x 3V (l, r); undefined without eyelids
  torch::Tensor static_bary_;  // L x 3
  torch::Tensor dynamic_bary_; // Y x C x 3
  // Index tensors (int64; plain members because Module::to(dtype) would convert buffers).
  torch::Tensor faces_;          // F x 3
  torch::Tensor static_vidx_;    // L x 3 vertex indices of the static landmark triangles
  torch::Tensor dynamic_vidx_;   // Y x C x 3
};

TORCH_MODULE(Flame);

}  // namespace pixel3dmm::flame
