#include "pixel3dmm/nn/detail/attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace pixel3dmm::nn::detail {

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), d = q.size(3), M = k.size(2);
  auto q3 = (q * scale).reshape({B * H, N, d});
  auto k3 = k.reshape({B * H, M, d});
  auto v3 = v.reshape({B * H, M, d});
  auto scores = at::bmm(q3, k3.transpose(1, 2));
  auto probs = at::softmax(scores, -1);
  return at::bmm(probs, v3).view({B, H, N, d});
}

}  // namespace pixel3dmm::nn::detail
