#pragma once
/// Linear blend skinning over a kinematic tree (SMPL / FLAME), as free differentiable functions. Flame uses them;
/// the fitting may call them directly with rotation matrices.

#include <torch/types.h>

#include <vector>

namespace pixel3dmm::flame {

/// base + coeffs @ basis, differentiable in coeffs, basis and base: the blendshape product. For up to 8 rows or
/// up to 16 components a streaming kernel reads the basis once (OpenBLAS's GEMM packs the whole basis when a side
/// has one row, ~10x slower); otherwise GEMM. coeffs: B x K, basis: K x N, base: 1 x N or B x N (or undefined = zeros)
/// -> B x N, all of one floating dtype.
torch::Tensor blend(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base = {});

/// The pose-corrective feature: (R_j - I) for joints 1..J-1, each flattened row-major.
/// rotations: B x J x 3 x 3 -> B x 9(J-1).
torch::Tensor pose_feature(const torch::Tensor& rotations);

struct RigidTransforms {
  torch::Tensor posed_joints;  ///< B x J x 3: joint positions after posing
  torch::Tensor relative;      ///< B x J x 4 x 4: G_j with the rest position removed, A_j = G_j - [0 | G_j J_j]
};

/// Chains [R_j | J_j - J_parent(j)] along the tree. rotations: B x J x 3 x 3, joints: B x J x 3 (rest positions,
/// metres), parents: J entries with parents[0] = -1 and parents[j] < j.
RigidTransforms rigid_transforms(const torch::Tensor& rotations, const torch::Tensor& joints,
                                 const std::vector<int64_t>& parents);

/// v_j = sum_k w_jk A_k [v_j; 1]. vertices: B x V x 3, relative: B x J x 4 x 4, weights: V x J -> B x V x 3.
torch::Tensor skin(const torch::Tensor& vertices, const torch::Tensor& relative, const torch::Tensor& weights);

/// skin() with the weights given transposed and contiguous (J x V), as Flame keeps them.
torch::Tensor skin_transposed(const torch::Tensor& vertices, const torch::Tensor& relative,
                              const torch::Tensor& weights_t);

struct LbsOutput {
  torch::Tensor vertices;    ///< B x V x 3 posed vertices
  torch::Tensor joints;      ///< B x J x 3 posed joints
  torch::Tensor transforms;  ///< B x J x 4 x 4 relative joint transforms (A)
};

/// The whole chain after the blendshapes: pose correctives (pose_feature @ posedirs), rigid transforms, skinning.
/// v_shaped: B x V x 3, joints: B x J x 3 (rest joints of v_shaped, i.e. J_regressor @ v_shaped),
/// rotations: B x J x 3 x 3, posedirs: 9(J-1) x 3V (FLAME's V x 3 x 9(J-1) reshaped to (3V, P) and transposed;
/// undefined = no correctives), weights: V x J.
LbsOutput lbs(const torch::Tensor& v_shaped, const torch::Tensor& joints, const torch::Tensor& rotations,
              const torch::Tensor& posedirs, const std::vector<int64_t>& parents, const torch::Tensor& weights);

/// Barycentric points on a mesh. vertices: B x V x 3, vertex_idx: B x L x 3 or L x 3 (int64 vertex indices of each
/// point's triangle), bary: same leading shape x 3 -> B x L x 3.
torch::Tensor barycentric_points(const torch::Tensor& vertices, const torch::Tensor& vertex_idx,
                                 const torch::Tensor& bary);

/// The official dynamic-contour bin (FLAME.py `_find_dynamic_lmk_idx_and_bcoords`) of relative rotations
/// (R_root R_neck, premultiplied by the camera if any): a = round(min(h, -yaw in degrees)) (half to even, as
/// torch.round); bin = a for a >= 0, h - a for -h <= a < 0, 2h for a < -h; h = (n_bins - 1) / 2 = 39 for FLAME's
/// 79 bins. rel_rotation: B x 3 x 3 -> B (int64).
torch::Tensor dynamic_contour_bin(const torch::Tensor& rel_rotation, int64_t n_bins = 79);

}  // namespace pixel3dmm::flame
