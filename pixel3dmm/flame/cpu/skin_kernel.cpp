// The CPU kernels of flame::skin (lbs.h): linear blend skinning in one fused pass per direction (blended 3 x 4
// transforms per block of vertices, applied in place) instead of a dozen full-size temporaries. No argument checks
// (lbs.cpp), no autograd (autograd/skin_autograd.cpp).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "pixel3dmm/flame/cpu/kernels.h"

namespace pixel3dmm::flame::cpu {
namespace {

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

}  // namespace

torch::Tensor skin_forward(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& wt) {
  const int64_t B = x.size(0), V = x.size(1), J = a.size(1);
  auto out = torch::empty({B, V, 3}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pixel3dmm::flame::skin", [&] {
    skin_forward_kernel<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(),
                                  out.data_ptr<scalar_t>(), B, J, V);
  });
  return out;
}

std::pair<torch::Tensor, torch::Tensor> skin_backward(const torch::Tensor& x, const torch::Tensor& a,
                                                      const torch::Tensor& wt, const torch::Tensor& g,
                                                      bool need_vertices, bool need_transforms) {
  const int64_t B = x.size(0), V = x.size(1), J = a.size(1);
  torch::Tensor gx, gA;
  if (need_vertices) gx = torch::empty_like(x);
  if (need_transforms) gA = torch::empty_like(a);
  if (gx.defined() || gA.defined()) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pixel3dmm::flame::skin_backward", [&] {
      skin_backward_kernel<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(),
                                     g.data_ptr<scalar_t>(), gx.defined() ? gx.data_ptr<scalar_t>() : nullptr,
                                     gA.defined() ? gA.data_ptr<scalar_t>() : nullptr, B, J, V);
    });
  }
  return {gx, gA};
}

}  // namespace pixel3dmm::flame::cpu
