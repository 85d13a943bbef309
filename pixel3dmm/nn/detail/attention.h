#pragma once
// Scaled dot-product attention shared by the backbone's and the head's attention layers.
#include <torch/types.h>

namespace pixel3dmm::nn::detail {

/// softmax(scale * q k^T) v per batch and head. q, k, v: B x H x N x d (any strides) -> B x H x N x d.
/// Differentiable (autograd) when grad mode is on; without grad it works block-wise on query rows so that the
/// N x N scores of one block stay in cache, which is most of the attention time on a CPU.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

}  // namespace pixel3dmm::nn::detail
