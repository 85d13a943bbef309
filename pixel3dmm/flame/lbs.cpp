#include "pixel3dmm/flame/lbs.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/flame/autograd/functions.h"
#include "pixel3dmm/flame/rotation.h"

namespace pixel3dmm::flame {

using torch::indexing::Slice;

torch::Tensor pose_feature(const torch::Tensor& rotations) {
  check_shape(rotations, {-1, -1, 3, 3}, "pose_feature: rotations");
  const int64_t B = rotations.size(0), J = rotations.size(1);
  const auto eye = torch::eye(3, rotations.options());
  return (rotations.narrow(1, 1, J - 1) - eye).reshape({B, 9 * (J - 1)});
}

RigidTransforms rigid_transforms(const torch::Tensor& rotations, const torch::Tensor& joints,
                                 const std::vector<int64_t>& parents) {
  check_shape(rotations, {-1, -1, 3, 3}, "rigid_transforms: rotations");
  const int64_t B = rotations.size(0), J = rotations.size(1);
  check_shape(joints, {B, J, 3}, "rigid_transforms: joints");
  PIXEL3DMM_CHECK(static_cast<int64_t>(parents.size()) == J, "rigid_transforms: expected ", J,
                  " parents (one per joint), found ", parents.size());
  for (int64_t j = 1; j < J; ++j)
    PIXEL3DMM_CHECK(parents[j] >= 0 && parents[j] < j, "rigid_transforms: expected parents[", j, "] in [0, ", j,
                    "), found ", parents[j]);
  // World rotation and translation of each joint's frame: G_j = G_parent [R_j | J_j - J_parent]. unbind() rather
  // than select(): its backward is one stack, not a zero-filled tensor per joint.
  const auto mat_vec = [](const torch::Tensor& M, const torch::Tensor& v) { return (M * v.unsqueeze(-2)).sum(-1); };
  const auto Rj = rotations.unbind(1), Jj = joints.unbind(1);
  std::vector<torch::Tensor> GR(J), Gt(J);
  GR[0] = Rj[0];
  Gt[0] = Jj[0];
  for (int64_t j = 1; j < J; ++j) {
    const int64_t p = parents[j];
    GR[j] = small_matmul(GR[p], Rj[j]);
    Gt[j] = mat_vec(GR[p], Jj[j] - Jj[p]) + Gt[p];
  }
  const auto R = torch::stack(GR, 1);  // B x J x 3 x 3
  const auto t = torch::stack(Gt, 1);  // B x J x 3
  const auto rel_t = t - mat_vec(R, joints);
  const auto top = torch::cat({R, rel_t.unsqueeze(-1)}, -1);  // B x J x 3 x 4
  const auto bottom = torch::tensor({0.0, 0.0, 0.0, 1.0}, rotations.options()).expand({B, J, 1, 4});
  return {t, torch::cat({top, bottom}, -2)};
}

torch::Tensor skin(const torch::Tensor& vertices, const torch::Tensor& relative, const torch::Tensor& weights) {
  check_shape(weights, {-1, -1}, "skin: weights");
  return skin_transposed(vertices, relative, weights.t().contiguous());
}

LbsOutput lbs(const torch::Tensor& v_shaped, const torch::Tensor& joints, const torch::Tensor& rotations,
              const torch::Tensor& posedirs, const std::vector<int64_t>& parents, const torch::Tensor& weights) {
  check_shape(v_shaped, {-1, -1, 3}, "lbs: v_shaped");
  const int64_t B = v_shaped.size(0), V = v_shaped.size(1);
  check_shape(rotations, {B, -1, 3, 3}, "lbs: rotations");
  const int64_t J = rotations.size(1);
  torch::Tensor v_posed = v_shaped;
  if (posedirs.defined()) {
    check_shape(posedirs, {9 * (J - 1), 3 * V}, "lbs: posedirs");
    v_posed = blend(pose_feature(rotations), posedirs, v_shaped.reshape({B, 3 * V})).view({B, V, 3});
  }
  const RigidTransforms rt = rigid_transforms(rotations, joints, parents);
  return {skin(v_posed, rt.relative, weights), rt.posed_joints, rt.relative};
}

torch::Tensor barycentric_points(const torch::Tensor& vertices, const torch::Tensor& vertex_idx,
                                 const torch::Tensor& bary) {
  check_shape(vertices, {-1, -1, 3}, "barycentric_points: vertices");
  const int64_t B = vertices.size(0);
  PIXEL3DMM_CHECK(vertex_idx.defined() && (vertex_idx.dim() == 2 || vertex_idx.dim() == 3) && vertex_idx.size(-1) == 3,
                  "barycentric_points: vertex_idx: expected shape [L, 3] or [B, L, 3], found ",
                  vertex_idx.defined() ? shape_string(vertex_idx.sizes()) : std::string("none"));
  PIXEL3DMM_CHECK(bary.defined() && bary.sizes() == vertex_idx.sizes(), "barycentric_points: bary: expected shape ",
                  shape_string(vertex_idx.sizes()), ", found ",
                  bary.defined() ? shape_string(bary.sizes()) : std::string("none"));
  const int64_t L = vertex_idx.size(-2);
  torch::Tensor corners;  // B x L x 3 (corner) x 3 (xyz)
  if (vertex_idx.dim() == 2) {
    corners = vertices.index_select(1, vertex_idx.reshape({-1})).view({B, L, 3, 3});
  } else {
    check_shape(vertex_idx, {B, L, 3}, "barycentric_points: vertex_idx");
    corners = vertices.gather(1, vertex_idx.reshape({B, 3 * L, 1}).expand({B, 3 * L, 3})).view({B, L, 3, 3});
  }
  return (corners * bary.to(vertices.scalar_type()).unsqueeze(-1)).sum(-2);
}

torch::Tensor dynamic_contour_bin(const torch::Tensor& rel_rotation, int64_t n_bins) {
  check_shape(rel_rotation, {-1, 3, 3}, "dynamic_contour_bin: rel_rotation");
  PIXEL3DMM_CHECK(n_bins >= 1 && n_bins % 2 == 1, "dynamic_contour_bin: expected an odd number of yaw bins, found ",
                  n_bins);
  const int64_t h = (n_bins - 1) / 2;
  const auto degrees = -rotation_yaw(rel_rotation.detach()) * (180.0 / M_PI);
  const auto a = torch::round(degrees.clamp_max(static_cast<double>(h))).to(torch::kLong);
  return torch::where(a >= 0, a, torch::where(a >= -h, h - a, torch::full_like(a, 2 * h)));
}

torch::Tensor blend(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base) {
  check_shape(coeffs, {-1, -1}, "blend: coeffs");
  check_shape(basis, {coeffs.size(1), -1}, "blend: basis");
  const int64_t B = coeffs.size(0), N = basis.size(1);
  PIXEL3DMM_CHECK(basis.is_floating_point(), "blend: basis: expected a floating dtype, found ",
                  c10::toString(basis.scalar_type()));
  check_dtype(coeffs, basis.scalar_type(), "blend: coeffs");
  if (base.defined()) {
    PIXEL3DMM_CHECK(base.dim() == 2 && (base.size(0) == 1 || base.size(0) == B) && base.size(1) == N,
                    "blend: base: expected shape [1, ", N, "] or [", B, ", ", N, "], found ",
                    shape_string(base.sizes()));
    check_dtype(base, basis.scalar_type(), "blend: base");
  }
  if (!coeffs.device().is_cpu() || !basis.device().is_cpu()) {  // elsewhere GEMM is the fast path
    return base.defined() ? torch::addmm(base, coeffs, basis) : torch::mm(coeffs, basis);
  }
  // The autograd Function takes defined tensors only.
  return autograd::blend(coeffs, basis, base.defined() ? base : torch::zeros({1, N}, basis.options()));
}

torch::Tensor skin_transposed(const torch::Tensor& vertices, const torch::Tensor& relative,
                              const torch::Tensor& weights_t) {
  check_shape(vertices, {-1, -1, 3}, "skin: vertices");
  const int64_t B = vertices.size(0), V = vertices.size(1);
  check_shape(relative, {B, -1, 4, 4}, "skin: relative");
  const int64_t J = relative.size(1);
  check_shape(weights_t, {J, V}, "skin: weights (transposed)");
  check_dtype(relative, vertices.scalar_type(), "skin: relative");
  check_dtype(weights_t, vertices.scalar_type(), "skin: weights");
  const auto A = relative.narrow(2, 0, 3).reshape({B, J, 12});
  if (!vertices.device().is_cpu()) {  // elsewhere: blended transforms with one GEMM, applied with elementwise ops
    const auto T = torch::matmul(weights_t.t(), A).view({B, V, 3, 4});
    return (T.narrow(3, 0, 3) * vertices.unsqueeze(2)).sum(-1) + T.select(3, 3);
  }
  return autograd::skin(vertices, A, weights_t);
}

}  // namespace pixel3dmm::flame
