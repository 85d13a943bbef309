// flame::skin's autograd wrapper: the CPU kernels (cpu/skin_kernel.cpp) as a torch::autograd::Function,
// differentiable in the vertices, the transforms and (with plain ops, rarely wanted) the weights.
#include "pixel3dmm/flame/autograd/functions.h"
#include "pixel3dmm/flame/cpu/kernels.h"

namespace pixel3dmm::flame::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class SkinFunction : public torch::autograd::Function<SkinFunction> {
 public:
  /// vertices: B x V x 3, A: B x J x 12 (top 3 x 4 of each relative transform), weights_t: J x V.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& vertices, const torch::Tensor& A,
                               const torch::Tensor& weights_t) {
    const auto x = vertices.contiguous(), a = A.contiguous(), wt = weights_t.contiguous();
    ctx->save_for_backward({x, a, wt});
    return cpu::skin_forward(x, a, wt);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &a = saved[1], &wt = saved[2];
    const auto g = grads[0].contiguous();
    const int64_t B = x.size(0), V = x.size(1), J = a.size(1);
    auto [gx, gA] = cpu::skin_backward(x, a, wt, g, ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    torch::Tensor gw;
    if (ctx->needs_input_grad(2)) {  // rarely wanted (learning the weights): plain ops
      torch::NoGradGuard no_grad;
      const auto xh = torch::cat({x, torch::ones({B, V, 1}, x.options())}, -1);            // B x V x 4
      const auto per_joint = torch::einsum("bjrc,bvc->bjvr", {a.view({B, J, 3, 4}), xh});  // B x J x V x 3
      gw = (per_joint * g.unsqueeze(1)).sum(std::vector<int64_t>{0, 3});                   // J x V
    }
    return {gx, gA, gw};
  }
};

}  // namespace

torch::Tensor skin(const torch::Tensor& vertices, const torch::Tensor& transforms, const torch::Tensor& weights_t) {
  return SkinFunction::apply(vertices, transforms, weights_t);
}

}  // namespace pixel3dmm::flame::autograd
