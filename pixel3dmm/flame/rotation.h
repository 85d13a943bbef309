#pragma once
/// Rotation representations shared by FLAME, the fitting and the renderer. All functions are differentiable
/// torch ops, broadcast over leading dimensions, and keep the input's dtype and device.
///
/// Conventions: matrices act on column vectors (x' = R x); axis-angle is the rotation vector (unit axis times the
/// angle in radians, right-handed); "6D" is the continuous representation of Zhou et al. (CVPR 2019) as the
/// official Pixel3DMM tracker uses it: the first two ROWS of the rotation matrix, [R00 R01 R02 R10 R11 R12].

#include <torch/types.h>

#include <string>

namespace pixel3dmm::flame {

/// How a joint rotation is given to FLAME.
enum class RotationRep {
  AxisAngle,  ///< 3 values per joint (rotation vector, radians)
  SixD,       ///< 6 values per joint (first two rows of the matrix; the official tracker's choice)
};

/// 3 for AxisAngle, 6 for SixD.
int64_t rotation_size(RotationRep rep);

/// "axis_angle" / "6d".
std::string to_string(RotationRep rep);

/// Parses "axis_angle" (or "aa") and "6d"; throws ValueError naming the accepted values.
RotationRep parse_rotation_rep(const std::string& name);

/// Rodrigues' formula. aa: (..., 3) radians -> (..., 3, 3). Exact value and gradient at zero (Taylor branch
/// below 1e-6 rad instead of the epsilon shift other FLAME ports use).
torch::Tensor axis_angle_to_matrix(const torch::Tensor& aa);

/// Inverse of axis_angle_to_matrix, through a quaternion (stable near 0 and pi). R: (..., 3, 3) -> (..., 3),
/// angle in [0, pi].
torch::Tensor matrix_to_axis_angle(const torch::Tensor& R);

/// Gram-Schmidt of the two rows (the official `rotation_6d_to_matrix`): b1 = normalize(a[0:3]),
/// b2 = normalize(a[3:6] - (b1.a[3:6]) b1), b3 = b1 x b2; rows (b1, b2, b3). d6: (..., 6) -> (..., 3, 3).
/// Normalisation divides by max(norm, 1e-12) as torch.nn.functional.normalize does.
torch::Tensor rotation_6d_to_matrix(const torch::Tensor& d6);

/// The first two rows. R: (..., 3, 3) -> (..., 6).
torch::Tensor matrix_to_rotation_6d(const torch::Tensor& R);

/// aa: (..., 3) -> (..., 6).
torch::Tensor axis_angle_to_rotation_6d(const torch::Tensor& aa);

/// d6: (..., 6) -> (..., 3).
torch::Tensor rotation_6d_to_axis_angle(const torch::Tensor& d6);

/// Converts (..., rotation_size(rep)) to (..., 3, 3).
torch::Tensor rotation_to_matrix(const torch::Tensor& r, RotationRep rep);

/// Converts (..., 3, 3) to (..., rotation_size(rep)).
torch::Tensor matrix_to_rotation(const torch::Tensor& R, RotationRep rep);

/// The identity in the given representation: (n, rotation_size(rep)).
torch::Tensor identity_rotation(int64_t n, RotationRep rep, const torch::TensorOptions& options = {});

/// Unit quaternion (w, x, y, z), w >= 0, of a rotation matrix. R: (..., 3, 3) -> (..., 4).
torch::Tensor matrix_to_quaternion(const torch::Tensor& R);

/// Rotation matrix of a (not necessarily unit) quaternion (w, x, y, z). q: (..., 4) -> (..., 3, 3).
torch::Tensor quaternion_to_matrix(const torch::Tensor& q);

/// Product of small matrices, A: (..., n, m) @ B: (..., m, p) -> (..., n, p), broadcast over leading dims, with
/// elementwise ops: ATen's bmm threads over the batch even for 3 x 3 blocks, which costs more than the product.
torch::Tensor small_matmul(const torch::Tensor& A, const torch::Tensor& B);

/// The FLAME "yaw" of a rotation matrix: atan2(-R20, sqrt(R00^2 + R10^2)) (radians), i.e. the angle about y of
/// the R = Rz Ry Rx factorisation. R: (..., 3, 3) -> (...).
torch::Tensor rotation_yaw(const torch::Tensor& R);

}  // namespace pixel3dmm::flame
