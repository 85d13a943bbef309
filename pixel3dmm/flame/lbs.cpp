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

namespace {  // blend(): streaming kernels for small batches, a torch::autograd::Function around them

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// Up to this many rows the streaming kernel (forward) and one GEMV per row (backward) beat GEMM: OpenBLAS's GEMM
/// packs the whole basis first (measured on the 400 x 15069 FLAME basis, float32, one thread: 1 row 0.66 ms
/// streaming vs 1.9 ms GEMM; 4 rows 2.3 vs 1.8 ms).
constexpr int64_t kStreamingRows = 3;
/// Multiply-adds below which a task is not worth waking another thread for.
constexpr int64_t kMinTaskWork = 1 << 18;
/// Bytes of output a column chunk may hold: B rows x chunk stay in L2 while the basis rows stream past.
constexpr int64_t kChunkBytes = 256 << 10;

int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(1, work_per_item));
}

/// out (B x N) = base + coeffs (B x K) @ basis (K x N). Each task owns a wide column chunk and walks the basis rows
/// in memory order over it, so the basis is read once, in long sequential runs the prefetcher follows.
template <typename T>
void blend_rows(const T* coeffs, const T* basis, const T* base, int64_t base_rows, T* out, int64_t B, int64_t K,
                int64_t N) {
  int64_t chunk = std::max<int64_t>(256, kChunkBytes / static_cast<int64_t>(sizeof(T)) / std::max<int64_t>(B, 1));
  if (B * K * N >= 2 * kMinTaskWork)  // enough work to share: at least one chunk per thread
    chunk = std::min(chunk, (N + at::get_num_threads() - 1) / at::get_num_threads());
  chunk = (chunk + 63) / 64 * 64;
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  at::parallel_for(0, n_chunks, grain(B * K * chunk), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t j0 = c * chunk, n = std::min(chunk, N - j0);
      for (int64_t b = 0; b < B; ++b) {
        T* o = out + b * N + j0;
        if (base) {
          const T* src = base + (base_rows == 1 ? 0 : b * N) + j0;
          std::copy(src, src + n, o);
        } else {
          std::fill(o, o + n, T(0));
        }
      }
      // Four basis rows per sweep (a quarter of the output traffic), in 512-column tiles that stay in L1 while
      // every batch row uses them.
      constexpr int64_t kTile = 512;
      for (int64_t k = 0; k < K; k += 4) {
        const int64_t nk = std::min<int64_t>(4, K - k);
        const T* w0 = basis + k * N + j0;
        const T* w1 = nk > 1 ? w0 + N : w0;
        const T* w2 = nk > 2 ? w0 + 2 * N : w0;
        const T* w3 = nk > 3 ? w0 + 3 * N : w0;
        for (int64_t t0 = 0; t0 < n; t0 += kTile) {
          const int64_t t1 = std::min(n, t0 + kTile);
          for (int64_t b = 0; b < B; ++b) {
            const T* a = coeffs + b * K + k;
            const T a0 = a[0], a1 = nk > 1 ? a[1] : T(0), a2 = nk > 2 ? a[2] : T(0), a3 = nk > 3 ? a[3] : T(0);
            if (a0 == T(0) && a1 == T(0) && a2 == T(0) && a3 == T(0)) continue;
            T* __restrict o = out + b * N + j0;
            const T* __restrict x0 = w0;
            const T* __restrict x1 = w1;
            const T* __restrict x2 = w2;
            const T* __restrict x3 = w3;
            for (int64_t j = t0; j < t1; ++j) o[j] += (a0 * x0[j] + a1 * x1[j]) + (a2 * x2[j] + a3 * x3[j]);
          }
        }
      }
    }
  });
}

torch::Tensor blend_forward(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base) {
  const int64_t B = coeffs.size(0), K = coeffs.size(1), N = basis.size(1);
  if (B > kStreamingRows || K == 0) {
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
  const int64_t B = grad.size(0);
  if (B > kStreamingRows) return torch::mm(grad, basis.t());
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(torch::mv(basis, grad[b]));  // GEMV reads the basis once
  return torch::stack(rows);
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
    if (ctx->needs_input_grad(2)) g_base = ctx->saved_data["base_rows"].toInt() == 1 ? g.sum(0, /*keepdim=*/true) : g;
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
                    "blend: base: expected shape [1, ", N, "] or [", B, ", ", N, "], found ",
                    shape_string(base.sizes()));
    check_dtype(base, basis.scalar_type(), "blend: base");
  }
  if (!coeffs.device().is_cpu() || !basis.device().is_cpu()) {  // elsewhere GEMM is the fast path
    return base.defined() ? torch::addmm(base, coeffs, basis) : torch::mm(coeffs, basis);
  }
  // The autograd Function takes defined tensors only.
  return BlendFunction::apply(coeffs, basis, base.defined() ? base : torch::zeros({1, N}, basis.options()));
}

namespace {  // skinning: one fused kernel per direction instead of a dozen full-size temporaries

constexpr int64_t kSkinBlock = 256;  // vertices per block: 12 blended rows x 256 stay in L1

/// Blended top 3 x 4 transforms of the vertices [v0, v0 + n): M[k][i] = sum_j w[j][v0 + i] A[j][k].
template <typename T>
void blend_transforms(const T* A, const T* wt, int64_t J, int64_t V, int64_t v0, int64_t n, T (*M)[kSkinBlock]) {
  for (int k = 0; k < 12; ++k) std::fill(M[k], M[k] + n, T(0));
  for (int64_t j = 0; j < J; ++j) {
    const T* __restrict w = wt + j * V + v0;
    for (int k = 0; k < 12; ++k) {
      const T a = A[j * 12 + k];
      if (a == T(0)) continue;
      T* __restrict m = M[k];
      for (int64_t i = 0; i < n; ++i) m[i] += a * w[i];
    }
  }
}

template <typename T>
void skin_forward_kernel(const T* X, const T* A, const T* wt, T* out, int64_t B, int64_t J, int64_t V) {
  const int64_t blocks = (V + kSkinBlock - 1) / kSkinBlock;
  at::parallel_for(0, B * blocks, grain(kSkinBlock * 12 * (J + 1)), [&](int64_t t0, int64_t t1) {
    T M[12][kSkinBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / blocks, v0 = (t % blocks) * kSkinBlock, n = std::min(kSkinBlock, V - v0);
      blend_transforms(A + b * J * 12, wt, J, V, v0, n, M);
      const T* x = X + (b * V + v0) * 3;
      T* o = out + (b * V + v0) * 3;
      for (int64_t i = 0; i < n; ++i)
        for (int r = 0; r < 3; ++r)
          o[i * 3 + r] = M[4 * r][i] * x[i * 3] + M[4 * r + 1][i] * x[i * 3 + 1] + M[4 * r + 2][i] * x[i * 3 + 2] +
                         M[4 * r + 3][i];
    }
  });
}

/// grad_x = M^T g per vertex; grad_A[b, j, k] = sum_v w[j][v] g[v][r] xh[v][c] (k = 4r + c), reduced over the
/// blocks of each batch row through per-task partial sums.
template <typename T>
void skin_backward_kernel(const T* X, const T* A, const T* wt, const T* G, T* gx, T* gA, int64_t B, int64_t J,
                          int64_t V) {
  const int64_t blocks = (V + kSkinBlock - 1) / kSkinBlock;
  std::vector<T> partial(gA ? B * blocks * J * 12 : 0, T(0));
  at::parallel_for(0, B * blocks, grain(kSkinBlock * 12 * (2 * J + 1)), [&](int64_t t0, int64_t t1) {
    T M[12][kSkinBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / blocks, v0 = (t % blocks) * kSkinBlock, n = std::min(kSkinBlock, V - v0);
      const T* x = X + (b * V + v0) * 3;
      const T* g = G + (b * V + v0) * 3;
      if (gx) {
        blend_transforms(A + b * J * 12, wt, J, V, v0, n, M);
        T* o = gx + (b * V + v0) * 3;
        for (int64_t i = 0; i < n; ++i)
          for (int c = 0; c < 3; ++c)
            o[i * 3 + c] = M[c][i] * g[i * 3] + M[4 + c][i] * g[i * 3 + 1] + M[8 + c][i] * g[i * 3 + 2];
      }
      if (gA) {
        for (int r = 0; r < 3; ++r)  // M reused as P[k][i] = g_r * xh_c
          for (int64_t i = 0; i < n; ++i) {
            M[4 * r][i] = g[i * 3 + r] * x[i * 3];
            M[4 * r + 1][i] = g[i * 3 + r] * x[i * 3 + 1];
            M[4 * r + 2][i] = g[i * 3 + r] * x[i * 3 + 2];
            M[4 * r + 3][i] = g[i * 3 + r];
          }
        T* acc = partial.data() + t * J * 12;
        for (int64_t j = 0; j < J; ++j) {
          const T* __restrict w = wt + j * V + v0;
          for (int k = 0; k < 12; ++k) {
            const T* __restrict pk = M[k];
            T lanes[8] = {};
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
              for (int l = 0; l < 8; ++l) lanes[l] += w[i + l] * pk[i + l];
            T sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
            for (; i < n; ++i) sum += w[i] * pk[i];
            acc[j * 12 + k] = sum;
          }
        }
      }
    }
  });
  if (gA) {
    for (int64_t b = 0; b < B; ++b) {
      T* out = gA + b * J * 12;
      std::fill(out, out + J * 12, T(0));
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const T* p = partial.data() + (b * blocks + blk) * J * 12;
        for (int64_t q = 0; q < J * 12; ++q) out[q] += p[q];
      }
    }
  }
}

class SkinFunction : public torch::autograd::Function<SkinFunction> {
 public:
  /// vertices: B x V x 3, A: B x J x 12 (top 3 x 4 of each relative transform), weights_t: J x V.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& vertices, const torch::Tensor& A,
                               const torch::Tensor& weights_t) {
    const auto x = vertices.contiguous(), a = A.contiguous(), wt = weights_t.contiguous();
    ctx->save_for_backward({x, a, wt});
    const int64_t B = x.size(0), V = x.size(1), J = a.size(1);
    auto out = torch::empty({B, V, 3}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pixel3dmm::flame::skin", [&] {
      skin_forward_kernel<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(),
                                    out.data_ptr<scalar_t>(), B, J, V);
    });
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &a = saved[1], &wt = saved[2];
    const auto g = grads[0].contiguous();
    const int64_t B = x.size(0), V = x.size(1), J = a.size(1);
    torch::Tensor gx, gA, gw;
    if (ctx->needs_input_grad(0)) gx = torch::empty_like(x);
    if (ctx->needs_input_grad(1)) gA = torch::empty_like(a);
    if (gx.defined() || gA.defined()) {
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pixel3dmm::flame::skin_backward", [&] {
        skin_backward_kernel<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(),
                                       g.data_ptr<scalar_t>(), gx.defined() ? gx.data_ptr<scalar_t>() : nullptr,
                                       gA.defined() ? gA.data_ptr<scalar_t>() : nullptr, B, J, V);
      });
    }
    if (ctx->needs_input_grad(2)) {  // rarely wanted (learning the weights): plain ops
      torch::NoGradGuard no_grad;
      const auto xh = torch::cat({x, torch::ones({B, V, 1}, x.options())}, -1);            // B x V x 4
      const auto per_joint = torch::einsum("bjrc,bvc->bjvr", {a.view({B, J, 3, 4}), xh});  // B x J x V x 3
      gw = (per_joint * g.unsqueeze(1)).sum(std::vector<int64_t>{0, 3});                   // J x V
    }
    return {gx, gA, gw};
  }
};

}  // namespace

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
  return SkinFunction::apply(vertices, A, weights_t);
}

}  // namespace pixel3dmm::flame
