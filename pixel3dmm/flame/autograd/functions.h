#pragma once
/// The autograd wrappers of the FLAME ops, one file per op (flame/autograd/<op>_autograd.cpp): each a
/// torch::autograd::Function around the op's CPU kernels (flame/cpu/kernels.h). They take checked CPU inputs: call
/// the public functions (flame/lbs.h), which check and then call these.

#include <torch/torch.h>

namespace pixel3dmm::flame::autograd {

/// base + coeffs @ basis (base defined: 1 x N or B x N), differentiable in all three.
torch::Tensor blend(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base);
/// vertices: B x V x 3, transforms: B x J x 12, weights_t: J x V -> B x V x 3, differentiable in all three.
torch::Tensor skin(const torch::Tensor& vertices, const torch::Tensor& transforms, const torch::Tensor& weights_t);

}  // namespace pixel3dmm::flame::autograd
