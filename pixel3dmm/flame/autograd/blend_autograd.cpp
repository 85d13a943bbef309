// flame::blend's autograd wrapper: the CPU kernels (cpu/blend_kernel.cpp) as a torch::autograd::Function,
// differentiable in the coefficients, the basis and the base.
#include "pixel3dmm/flame/autograd/functions.h"
#include "pixel3dmm/flame/cpu/kernels.h"

namespace pixel3dmm::flame::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class BlendFunction : public torch::autograd::Function<BlendFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& coeffs, const torch::Tensor& basis,
                               const torch::Tensor& base) {
    ctx->save_for_backward({coeffs, basis});
    ctx->saved_data["base_rows"] = base.defined() ? base.size(0) : int64_t{0};
    torch::NoGradGuard no_grad;
    return cpu::blend_forward(coeffs, basis, base);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& coeffs = saved[0];
    const auto& basis = saved[1];
    const auto g = grads[0];
    torch::Tensor g_coeffs, g_basis, g_base;
    if (ctx->needs_input_grad(0)) g_coeffs = cpu::blend_grad_coeffs(g, basis);
    if (ctx->needs_input_grad(1)) g_basis = torch::mm(coeffs.t(), g);
    if (ctx->needs_input_grad(2)) g_base = ctx->saved_data["base_rows"].toInt() == 1 ? g.sum(0, /*keepdim=*/true) : g;
    return {g_coeffs, g_basis, g_base};
  }
};

}  // namespace

torch::Tensor blend(const torch::Tensor& coeffs, const torch::Tensor& basis, const torch::Tensor& base) {
  return BlendFunction::apply(coeffs, basis, base);
}

}  // namespace pixel3dmm::flame::autograd
