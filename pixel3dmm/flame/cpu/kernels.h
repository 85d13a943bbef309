#pragma once
/// The CPU kernels of the FLAME ops (flame/lbs.h: blend, skin), one file per op (cpu/<op>_kernel.cpp), as torchvision
/// lays out csrc/ops/cpu: contiguous CPU tensors of one floating dtype, no argument checks (lbs.cpp checks), no
/// autograd (flame/autograd/ wraps them). B batch, K coefficients, N = 3 V values, J joints, V vertices.

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace pixel3dmm::flame::cpu {

/// Multiply-adds below which a task is not worth waking another thread for (shared by the kernel files).
constexpr int64_t kMinTaskWork = 1 << 18;

/// at::parallel_for's grain for items of `work_per_item` multiply-adds.
inline int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(1, work_per_item));
}

/// coeffs: B x K, basis: K x N, base: 1 x N or B x N or undefined -> B x N = base + coeffs @ basis.
torch::Tensor blend_forward(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base);
/// grad: B x N -> B x K = grad @ basis^T (one GEMV per row for small B: the basis is read once per row).
torch::Tensor blend_grad_coeffs(const torch::Tensor& grad, const torch::Tensor& basis);

/// x: B x V x 3, a: B x J x 12 (top 3 x 4 of each relative transform), wt: J x V -> B x V x 3 skinned vertices.
torch::Tensor skin_forward(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& wt);
/// g: B x V x 3 -> (d/d x: B x V x 3, d/d a: B x J x 12), each only when asked for (else undefined).
std::pair<torch::Tensor, torch::Tensor> skin_backward(const torch::Tensor& x, const torch::Tensor& a,
                                                      const torch::Tensor& wt, const torch::Tensor& g,
                                                      bool need_vertices, bool need_transforms);

}  // namespace pixel3dmm::flame::cpu
