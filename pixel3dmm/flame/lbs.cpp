#include "pixel3dmm/flame/lbs.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
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
  const auto mat_vec = [](const torch::Tensor& M, const torch::Tensor& v) { return (M * v.unsqueeze(-2)).sum(-1); };
  std::vector<torch::Tensor> GR(J), Gt(J);
  GR[0] = rotations.select(1, 0);
  Gt[0] = joints.select(1, 0);
  for (int64_t j = 1; j < J; ++j) {
    const int64_t p = parents[j];
    GR[j] = small_matmul(GR[p], rotations.select(1, j));
    Gt[j] = mat_vec(GR[p], joints.select(1, j) - joints.select(1, p)) + Gt[p];
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

torch::Tensor skin_transposed(const torch::Tensor& vertices, const torch::Tensor& relative,
                              const torch::Tensor& weights_t) {
  check_shape(vertices, {-1, -1, 3}, "skin: vertices");
  const int64_t B = vertices.size(0), V = vertices.size(1);
  check_shape(relative, {B, -1, 4, 4}, "skin: relative");
  const int64_t J = relative.size(1);
  check_shape(weights_t, {J, V}, "skin: weights (transposed)");
  // Per-vertex blended 3 x 4 transforms, laid out vertex-last: (12B x J) @ (J x V) with the streaming kernel
  // (K = J is tiny: GEMM would spend its time packing), then applied to the homogeneous vertices.
  const auto A = relative.narrow(2, 0, 3).permute({0, 2, 3, 1}).reshape({B * 12, J});
  const auto T = blend(A, weights_t).view({B, 3, 4, V});
  const auto vh = torch::cat({vertices, torch::ones({B, V, 1}, vertices.options())}, -1).transpose(1, 2);  // B x 4 x V
  return (T * vh.unsqueeze(1)).sum(2).transpose(1, 2).contiguous();  // B x V x 3
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

namespace {  // blend(): streaming kernels for small batches, a torch::autograd::Function around them

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// Up to this many rows, or this few components, the streaming kernels beat GEMM (they read the basis once; GEMM
/// packs it, and OpenBLAS's threads cost more than a skinny product).
constexpr int64_t kStreamingRows = 8;
constexpr int64_t kStreamingComponents = 16;
/// Columns per cache block: B rows x 1024 outputs stay in L1/L2 while the K basis rows stream past.
constexpr int64_t kBlock = 1024;
/// Multiply-adds below which a task is not worth waking another thread for.
constexpr int64_t kMinTaskWork = 1 << 18;

int64_t grain(int64_t work_per_item) { return std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(1, work_per_item)); }

/// out (B x N) = base + coeffs (B x K) @ basis (K x N), blocked over columns.
template <typename T>
void blend_rows(const T* coeffs, const T* basis, const T* base, int64_t base_rows, T* out, int64_t B, int64_t K,
                int64_t N) {
  at::parallel_for(0, (N + kBlock - 1) / kBlock, grain(B * K * kBlock), [&](int64_t blk0, int64_t blk1) {
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t j0 = blk * kBlock, n = std::min(kBlock, N - j0);
      for (int64_t b = 0; b < B; ++b) {
        T* o = out + b * N + j0;
        if (base) {
          const T* src = base + (base_rows == 1 ? 0 : b * N) + j0;
          std::copy(src, src + n, o);
        } else {
          std::fill(o, o + n, T(0));
        }
      }
      for (int64_t k = 0; k < K; ++k) {
        const T* __restrict w = basis + k * N + j0;
        for (int64_t b = 0; b < B; ++b) {
          const T c = coeffs[b * K + k];
          if (c == T(0)) continue;
          T* __restrict o = out + b * N + j0;
          for (int64_t j = 0; j < n; ++j) o[j] += c * w[j];
        }
      }
    }
  });
}

/// Dot product with 8 independent partial sums (vectorisable without reassociating).
template <typename T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[j + l] * b[j + l];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

/// grad_coeffs (B x K) = grad (B x N) @ basis^T, one pass over the basis rows.
template <typename T>
void blend_grad_rows(const T* grad, const T* basis, T* grad_coeffs, int64_t B, int64_t K, int64_t N) {
  at::parallel_for(0, K, grain(B * N), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t b = 0; b < B; ++b) grad_coeffs[b * K + k] = dot(basis + k * N, grad + b * N, N);
  });
}

torch::Tensor blend_forward(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base) {
  const int64_t B = coeffs.size(0), K = coeffs.size(1), N = basis.size(1);
  if ((B > kStreamingRows && K > kStreamingComponents) || K == 0) {
    if (!base.defined()) return K == 0 ? torch::zeros({B, N}, basis.options()) : torch::mm(coeffs, basis);
    return K == 0 ? base.expand({B, N}).clone() : torch::addmm(base, coeffs, basis);
  }
  auto out = torch::empty({B, N}, basis.options());
  const auto c = coeffs.contiguous(), w = basis.contiguous();
  const auto b0 = base.defined() ? base.contiguous() : base;
  AT_DISPATCH_FLOATING_TYPES(basis.scalar_type(), "pixel3dmm::flame::blend", [&] {
    blend_rows<scalar_t>(c.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                         b0.defined() ? b0.data_ptr<scalar_t>() : nullptr, b0.defined() ? b0.size(0) : 0,
                         out.data_ptr<scalar_t>(), B, K, N);
  });
  return out;
}

torch::Tensor blend_grad_coeffs(const torch::Tensor& grad, const torch::Tensor& basis) {
  const int64_t B = grad.size(0), K = basis.size(0), N = basis.size(1);
  if (B > kStreamingRows && K > kStreamingComponents) return torch::mm(grad, basis.t());
  auto out = torch::empty({B, K}, basis.options());
  const auto g = grad.contiguous(), w = basis.contiguous();
  AT_DISPATCH_FLOATING_TYPES(basis.scalar_type(), "pixel3dmm::flame::blend_backward", [&] {
    blend_grad_rows<scalar_t>(g.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, K, N);
  });
  return out;
}

class BlendFunction : public torch::autograd::Function<BlendFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& coeffs, const torch::Tensor& basis,
                               const torch::Tensor& base) {
    ctx->save_for_backward({coeffs, basis});
    ctx->saved_data["base_rows"] = base.defined() ? base.size(0) : int64_t{0};
    torch::NoGradGuard no_grad;
    return blend_forward(coeffs, basis, base);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& coeffs = saved[0];
    const auto& basis = saved[1];
    const auto g = grads[0];
    torch::Tensor g_coeffs, g_basis, g_base;
    if (ctx->needs_input_grad(0)) g_coeffs = blend_grad_coeffs(g, basis);
    if (ctx->needs_input_grad(1)) g_basis = torch::mm(coeffs.t(), g);
    if (ctx->needs_input_grad(2))
      g_base = ctx->saved_data["base_rows"].toInt() == 1 ? g.sum(0, /*keepdim=*/true) : g;
    return {g_coeffs, g_basis, g_base};
  }
};

}  // namespace

torch::Tensor blend(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base) {
  check_shape(coeffs, {-1, -1}, "blend: coeffs");
  check_shape(basis, {coeffs.size(1), -1}, "blend: basis");
  const int64_t B = coeffs.size(0), N = basis.size(1);
  PIXEL3DMM_CHECK(basis.is_floating_point(), "blend: basis: expected a floating dtype, found ",
                  c10::toString(basis.scalar_type()));
  check_dtype(coeffs, basis.scalar_type(), "blend: coeffs");
  if (base.defined()) {
    PIXEL3DMM_CHECK(base.dim() == 2 && (base.size(0) == 1 || base.size(0) == B) && base.size(1) == N,
                    "blend: base: expected shape [1, ", N, "] or [", B, ", ", N, "], found ", shape_string(base.sizes()));
    check_dtype(base, basis.scalar_type(), "blend: base");
  }
  if (!coeffs.device().is_cpu() || !basis.device().is_cpu()) {  // elsewhere GEMM is the fast path
    return base.defined() ? torch::addmm(base, coeffs, basis) : torch::mm(coeffs, basis);
  }
  // The autograd Function takes defined tensors only.
  return BlendFunction::apply(coeffs, basis, base.defined() ? base : torch::zeros({1, N}, basis.options()));
}

}  // namespace pixel3dmm::flame
