// The CPU kernels of flame::blend (lbs.h): out = base + coeffs @ basis streamed over the basis for small batches
// (GEMM beyond), and the coefficients' gradient as one GEMV per row. No argument checks (lbs.cpp), no autograd
// (autograd/blend_autograd.cpp).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "pixel3dmm/flame/cpu/kernels.h"

namespace pixel3dmm::flame::cpu {
namespace {

/// Up to this many rows the streaming kernel (forward) and one GEMV per row (backward) beat GEMM: OpenBLAS's GEMM
/// packs the whole basis first (measured on the 400 x 15069 FLAME basis, float32, one thread: 1 row 0.66 ms
/// streaming vs 1.9 ms GEMM; 4 rows 2.3 vs 1.8 ms).
constexpr int64_t kStreamingRows = 3;
/// Bytes of output a column chunk may hold: B rows x chunk stay in L2 while the basis rows stream past.
constexpr int64_t kChunkBytes = 256 << 10;

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

}  // namespace

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

}  // namespace pixel3dmm::flame::cpu
