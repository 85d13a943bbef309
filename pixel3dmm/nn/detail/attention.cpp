#include "pixel3dmm/nn/detail/attention.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

namespace pixel3dmm::nn::detail {

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), d = q.size(3), M = k.size(2);
  const bool needs_grad =
      torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (needs_grad || q.scalar_type() != torch::kFloat) {
    auto scores = at::matmul(q * scale, k.transpose(-2, -1));
    return at::matmul(at::softmax(scores, -1), v);
  }
  // Inference: one (batch, head) at a time. The strided q/k/v slices of the fused projection go to the BLAS as
  // they are (leading dimension = the row stride), the scale rides on the GEMM's alpha, the N x M scores of one
  // head stay cache-sized instead of B*H*N*M floats, and each head's output lands in its columns of a B x N x H x d
  // tensor, so the caller's transpose back to B x N x (H*d) costs nothing.
  auto out = at::empty({B, N, H, d}, q.options());
  // Heads run in parallel, each with its own scratch: one head's GEMMs (N x d x M) are too thin to split well.
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    auto scores = at::empty({N, M}, q.options());
    auto probs = at::empty({N, M}, q.options());
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H;
      at::addmm_out(scores, scores, q[b][h], k[b][h].t(), /*beta=*/0, /*alpha=*/scale);
      at::_softmax_out(probs, scores, 1, false);
      auto dst = out[b].select(1, h);  // N x d, row stride H*d
      at::mm_out(dst, probs, v[b][h]);
    }
  });
  return out.permute({0, 2, 1, 3});
}

}  // namespace pixel3dmm::nn::detail
