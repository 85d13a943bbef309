#include "pixel3dmm/flame/lbs.h"

#include <torch/torch.h>

#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
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
  // World rotation and translation of each joint's frame: G_j = G_parent [R_j | J_j - J_parent].
  std::vector<torch::Tensor> GR(J), Gt(J);
  GR[0] = rotations.select(1, 0);
  Gt[0] = joints.select(1, 0);
  for (int64_t j = 1; j < J; ++j) {
    const int64_t p = parents[j];
    const auto local_t = joints.select(1, j) - joints.select(1, p);
    GR[j] = torch::matmul(GR[p], rotations.select(1, j));
    Gt[j] = torch::matmul(GR[p], local_t.unsqueeze(-1)).squeeze(-1) + Gt[p];
  }
  const auto R = torch::stack(GR, 1);  // B x J x 3 x 3
  const auto t = torch::stack(Gt, 1);  // B x J x 3
  const auto rel_t = t - torch::matmul(R, joints.unsqueeze(-1)).squeeze(-1);
  const auto top = torch::cat({R, rel_t.unsqueeze(-1)}, -1);  // B x J x 3 x 4
  const auto bottom = torch::tensor({0.0, 0.0, 0.0, 1.0}, rotations.options()).expand({B, J, 1, 4});
  return {t, torch::cat({top, bottom}, -2)};
}

torch::Tensor skin(const torch::Tensor& vertices, const torch::Tensor& relative, const torch::Tensor& weights) {
  check_shape(vertices, {-1, -1, 3}, "skin: vertices");
  const int64_t B = vertices.size(0), V = vertices.size(1);
  check_shape(relative, {B, -1, 4, 4}, "skin: relative");
  const int64_t J = relative.size(1);
  check_shape(weights, {V, J}, "skin: weights");
  // Blend the top 3 x 4 of the transforms per vertex (one GEMM), then apply them to the vertices.
  const auto T = torch::matmul(weights, relative.narrow(2, 0, 3).reshape({B, J, 12})).view({B, V, 3, 4});
  return (T.narrow(3, 0, 3) * vertices.unsqueeze(2)).sum(-1) + T.select(3, 3);
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
    v_posed = v_shaped + torch::matmul(pose_feature(rotations), posedirs).view({B, V, 3});
  }
  const RigidTransforms rt = rigid_transforms(rotations, joints, parents);
  return {skin(v_posed, rt.relative, weights), rt.posed_joints, rt.relative};
}

torch::Tensor barycentric_points(const torch::Tensor& vertices, const torch::Tensor& vertex_idx,
                                 const torch::Tensor& bary) {
  check_shape(vertices, {-1, -1, 3}, "barycentric_points: vertices");
  const int64_t B = vertices.size(0);
  PIXEL3DMM_CHECK(vertex_idx.defined() && (vertex_idx.dim() == 2 || vertex_idx.dim() == 3) &&
                      vertex_idx.size(-1) == 3,
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

}  // namespace pixel3dmm::flame
