#include "pixel3dmm/flame/rotation.h"

#include <torch/torch.h>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::flame {
namespace {

using torch::indexing::Ellipsis;
using torch::indexing::Slice;

void check_last_dims(const torch::Tensor& t, std::initializer_list<int64_t> dims, const char* what) {
  PIXEL3DMM_CHECK(t.defined(), what, ": expected a tensor, found none");
  const auto n = static_cast<int64_t>(dims.size());
  bool ok = t.dim() >= n;
  int64_t i = 0;
  for (int64_t d : dims) ok = ok && t.size(t.dim() - n + i++) == d;
  if (!ok) {
    std::string expected = "[...";
    for (int64_t d : dims) expected += ", " + std::to_string(d);
    PIXEL3DMM_CHECK(false, what, ": expected shape ", expected, "], found ", shape_string(t.sizes()));
  }
  PIXEL3DMM_CHECK(t.is_floating_point(), what, ": expected a floating-point tensor, found ",
                  c10::toString(t.scalar_type()));
}

torch::Tensor normalize_last(const torch::Tensor& v) {
  return v / v.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
}

}  // namespace

int64_t rotation_size(RotationRep rep) { return rep == RotationRep::AxisAngle ? 3 : 6; }

std::string to_string(RotationRep rep) { return rep == RotationRep::AxisAngle ? "axis_angle" : "6d"; }

RotationRep parse_rotation_rep(const std::string& name) {
  if (name == "axis_angle" || name == "aa" || name == "axis-angle") return RotationRep::AxisAngle;
  if (name == "6d" || name == "6D" || name == "sixd") return RotationRep::SixD;
  throw ValueError("rotation representation: expected 'axis_angle' or '6d', found '" + name + "'");
}

torch::Tensor axis_angle_to_matrix(const torch::Tensor& aa) {
  check_last_dims(aa, {3}, "axis_angle_to_matrix: aa");
  const auto theta2 = (aa * aa).sum(-1, /*keepdim=*/true);  // (..., 1)
  // Below 1e-6 rad the Taylor series is exact to rounding; the other branch is evaluated at a safe angle so
  // that its (unused) gradient stays finite.
  const auto small = theta2 < 1e-12;
  const auto theta2_safe = torch::where(small, torch::ones_like(theta2), theta2);
  const auto theta = theta2_safe.sqrt();
  const auto half = theta * 0.5;
  const auto sinc_half = half.sin() / half;
  // a = sin(t)/t, b = (1 - cos t)/t^2 = sinc(t/2)^2 / 2 (no cancellation in float32).
  const auto a = torch::where(small, 1.0 - theta2 / 6.0, theta.sin() / theta).unsqueeze(-1);
  const auto b = torch::where(small, 0.5 - theta2 / 24.0, 0.5 * sinc_half * sinc_half).unsqueeze(-1);
  const auto x = aa.select(-1, 0), y = aa.select(-1, 1), z = aa.select(-1, 2);
  const auto zero = torch::zeros_like(x);
  const auto K = torch::stack({zero, -z, y, z, zero, -x, -y, x, zero}, -1).unflatten(-1, {3, 3});
  const auto outer = aa.unsqueeze(-1) * aa.unsqueeze(-2);  // K^2 = v v^T - |v|^2 I
  const auto eye = torch::eye(3, aa.options());
  return eye + a * K + b * (outer - theta2.unsqueeze(-1) * eye);
}

torch::Tensor quaternion_to_matrix(const torch::Tensor& q) {
  check_last_dims(q, {4}, "quaternion_to_matrix: q");
  const auto w = q.select(-1, 0), x = q.select(-1, 1), y = q.select(-1, 2), z = q.select(-1, 3);
  const auto s = 2.0 / (q * q).sum(-1);
  return torch::stack({1 - s * (y * y + z * z), s * (x * y - w * z), s * (x * z + w * y),
                       s * (x * y + w * z), 1 - s * (x * x + z * z), s * (y * z - w * x),
                       s * (x * z - w * y), s * (y * z + w * x), 1 - s * (x * x + y * y)},
                      -1)
      .unflatten(-1, {3, 3});
}

torch::Tensor matrix_to_quaternion(const torch::Tensor& R) {
  check_last_dims(R, {3, 3}, "matrix_to_quaternion: R");
  const auto m = [&](int i, int j) { return R.select(-2, i).select(-1, j); };
  const auto m00 = m(0, 0), m11 = m(1, 1), m22 = m(2, 2);
  // 4w^2, 4x^2, 4y^2, 4z^2; the largest gives the best-conditioned candidate (Shepperd's method).
  const auto t = torch::stack({1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22}, -1);
  const auto wx = m(2, 1) - m(1, 2), wy = m(0, 2) - m(2, 0), wz = m(1, 0) - m(0, 1);
  const auto xy = m(1, 0) + m(0, 1), xz = m(0, 2) + m(2, 0), yz = m(1, 2) + m(2, 1);
  const auto tt = [&](int i) { return t.select(-1, i); };
  // Each row is 4 * q_k * q, for k = w, x, y, z.
  const auto cand = torch::stack({torch::stack({tt(0), wx, wy, wz}, -1), torch::stack({wx, tt(1), xy, xz}, -1),
                                  torch::stack({wy, xy, tt(2), yz}, -1), torch::stack({wz, xz, yz, tt(3)}, -1)},
                                 -2);                                                   // (..., 4, 4)
  const auto denom = 2.0 * t.clamp_min(1e-12).sqrt();                                  // (..., 4) = 4 |q_k|
  const auto best = t.argmax(-1, /*keepdim=*/true);                                     // (..., 1)
  auto idx_shape = cand.sizes().vec();
  idx_shape[idx_shape.size() - 2] = 1;
  auto q = cand.gather(-2, best.unsqueeze(-1).expand(idx_shape)).squeeze(-2) / denom.gather(-1, best);
  q = normalize_last(q);
  return torch::where(q.select(-1, 0).unsqueeze(-1) < 0, -q, q);
}

torch::Tensor matrix_to_axis_angle(const torch::Tensor& R) {
  check_last_dims(R, {3, 3}, "matrix_to_axis_angle: R");
  const auto q = matrix_to_quaternion(R);
  const auto w = q.select(-1, 0).unsqueeze(-1);
  const auto xyz = q.index({Ellipsis, Slice(1, 4)});
  const auto n = xyz.norm(2, -1, /*keepdim=*/true);
  const auto small = n < 1e-7;
  const auto n_safe = torch::where(small, torch::ones_like(n), n);
  const auto factor = torch::where(small, 2.0 / w.clamp_min(1e-12), 2.0 * torch::atan2(n_safe, w) / n_safe);
  return xyz * factor;
}

torch::Tensor rotation_6d_to_matrix(const torch::Tensor& d6) {
  check_last_dims(d6, {6}, "rotation_6d_to_matrix: d6");
  const auto a1 = d6.index({Ellipsis, Slice(0, 3)});
  const auto a2 = d6.index({Ellipsis, Slice(3, 6)});
  const auto b1 = normalize_last(a1);
  const auto b2 = normalize_last(a2 - (b1 * a2).sum(-1, /*keepdim=*/true) * b1);
  const auto b3 = torch::cross(b1, b2, -1);
  return torch::stack({b1, b2, b3}, -2);
}

torch::Tensor matrix_to_rotation_6d(const torch::Tensor& R) {
  check_last_dims(R, {3, 3}, "matrix_to_rotation_6d: R");
  return R.index({Ellipsis, Slice(0, 2), Slice()}).flatten(-2);
}

torch::Tensor axis_angle_to_rotation_6d(const torch::Tensor& aa) {
  return matrix_to_rotation_6d(axis_angle_to_matrix(aa));
}

torch::Tensor rotation_6d_to_axis_angle(const torch::Tensor& d6) {
  return matrix_to_axis_angle(rotation_6d_to_matrix(d6));
}

torch::Tensor rotation_to_matrix(const torch::Tensor& r, RotationRep rep) {
  return rep == RotationRep::AxisAngle ? axis_angle_to_matrix(r) : rotation_6d_to_matrix(r);
}

torch::Tensor matrix_to_rotation(const torch::Tensor& R, RotationRep rep) {
  return rep == RotationRep::AxisAngle ? matrix_to_axis_angle(R) : matrix_to_rotation_6d(R);
}

torch::Tensor identity_rotation(int64_t n, RotationRep rep, const torch::TensorOptions& options) {
  auto opts = options;
  if (!opts.has_dtype()) opts = opts.dtype(torch::kFloat);
  if (rep == RotationRep::AxisAngle) return torch::zeros({n, 3}, opts);
  return torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, opts).repeat({n, 1});
}

torch::Tensor small_matmul(const torch::Tensor& A, const torch::Tensor& B) {
  PIXEL3DMM_CHECK(A.defined() && B.defined() && A.dim() >= 2 && B.dim() >= 2 && A.size(-1) == B.size(-2),
                  "small_matmul: expected shapes [..., n, m] and [..., m, p], found ",
                  A.defined() ? shape_string(A.sizes()) : std::string("none"), " and ",
                  B.defined() ? shape_string(B.sizes()) : std::string("none"));
  return (A.unsqueeze(-1) * B.unsqueeze(-3)).sum(-2);
}

torch::Tensor rotation_yaw(const torch::Tensor& R) {
  check_last_dims(R, {3, 3}, "rotation_yaw: R");
  const auto r00 = R.select(-2, 0).select(-1, 0), r10 = R.select(-2, 1).select(-1, 0);
  const auto r20 = R.select(-2, 2).select(-1, 0);
  return torch::atan2(-r20, (r00 * r00 + r10 * r10).sqrt());
}

}  // namespace pixel3dmm::flame
