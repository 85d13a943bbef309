#include "pixel3dmm/nn/detail/attention.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>

#include "pixel3dmm/core/runtime.h"

namespace pixel3dmm::nn::detail {

namespace {
// Query rows per block: a 128 x 1025 block of scores (0.5 MB) stays in L2 between its two GEMMs and the softmax.
constexpr int64_t kQueryRows = 128;
}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), d = q.size(3), M = k.size(2);
  const bool needs_grad =
      torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (needs_grad || q.scalar_type() != torch::kFloat) {
    auto scores = at::matmul(q * scale, k.transpose(-2, -1));
    return at::matmul(at::softmax(scores, -1), v);
  }
  // Inference: tasks of (batch, head, block of query rows). The strided q/k/v slices of the fused projection go to
  // the BLAS as they are (leading dimension = the row stride), the scale rides on the GEMM's alpha, and each
  // block's output lands in its rows and columns of a B x N x H x d tensor, so the caller's transpose back to
  // B x N x (H*d) costs nothing. Workers run single-threaded GEMMs side by side: a threaded OpenBLAS serialises
  // concurrent callers on one driver lock, and one block's GEMMs are too thin to split anyway.
  auto out = at::empty({B, N, H, d}, q.options());
  const int64_t blocks = (N + kQueryRows - 1) / kQueryRows;
  const ScopedBlasThreads single_threaded_blas(1);
  at::parallel_for(0, B * H * blocks, 1, [&](int64_t begin, int64_t end) {
    auto scores = at::empty({kQueryRows, M}, q.options());
    auto probs = at::empty({kQueryRows, M}, q.options());
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / (H * blocks), h = i / blocks % H, r0 = i % blocks * kQueryRows;
      const int64_t rows = std::min(kQueryRows, N - r0);
      auto s = scores.narrow(0, 0, rows), p = probs.narrow(0, 0, rows);
      at::addmm_out(s, s, q[b][h].narrow(0, r0, rows), k[b][h].t(), /*beta=*/0, /*alpha=*/scale);
      at::_softmax_out(p, s, 1, false);
      auto dst = out[b].select(1, h).narrow(0, r0, rows);  // rows x d, row stride H*d
      at::mm_out(dst, p, v[b][h]);
    }
  });
  return out.permute({0, 2, 1, 3});
}

}  // namespace pixel3dmm::nn::detail
