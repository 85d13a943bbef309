#include "pixel3dmm/nn/detail/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>

#include "pixel3dmm/core/runtime.h"

namespace pixel3dmm::nn::detail {

namespace {
// Below this many rows one GEMM is too thin to split (the head's tokens, batch-1 projections).
constexpr int64_t kMinRowsPerTask = 64;
}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  const int64_t K = x.size(-1), N = weight.size(0), M = x.numel() / std::max<int64_t>(K, 1);
  const int threads = at::get_num_threads();
  if (needs_grad || x.scalar_type() != torch::kFloat || threads < 2 || M < 2 * kMinRowsPerTask ||
      at::in_parallel_region())
    return at::linear(x, weight, bias);

  const auto rows = x.reshape({M, K});
  const auto wt = weight.t();
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto out = at::empty({M, N}, x.options());
  // One task per thread, rows split evenly: each worker's GEMM is as wide as the whole product's.
  const int64_t tasks = std::min<int64_t>(threads, M / kMinRowsPerTask);
  const int64_t per_task = (M + tasks - 1) / tasks;
  const ScopedBlasThreads single_threaded_blas(1);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    const torch::NoGradGuard no_grad;  // grad mode is thread-local: OpenMP's workers start with it on
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * per_task, n = std::min(per_task, M - r0);
      if (n <= 0) continue;
      auto dst = out.narrow(0, r0, n);
      if (bias.defined())
        at::addmm_out(dst, bias, rows.narrow(0, r0, n), wt);
      else
        at::mm_out(dst, rows.narrow(0, r0, n), wt);
    }
  });
  return out.view(sizes);
}

}  // namespace pixel3dmm::nn::detail
