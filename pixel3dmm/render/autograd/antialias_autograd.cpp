// render::antialias's autograd wrapper: the CPU kernels (cpu/antialias_kernel.cpp) as a torch::autograd::Function,
// differentiable in the colours and the clip positions; the blends found in the forward are kept for the backward.
#include <tuple>

#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/cpu/kernels.h"

namespace pixel3dmm::render::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class AntialiasFunction : public torch::autograd::Function<AntialiasFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& color, const torch::Tensor& pos_clip,
                               const torch::Tensor& tri_id, const torch::Tensor& depth, const torch::Tensor& faces,
                               const torch::Tensor& opposite) {
    const auto c = color.contiguous();
    const auto pos = pos_clip.contiguous();
    auto [out, packed] = cpu::antialias_forward(c, pos, faces, opposite, tri_id, depth);
    ctx->save_for_backward({c, pos, faces, packed[0], packed[1], packed[2]});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool need_color = ctx->needs_input_grad(0), need_pos = ctx->needs_input_grad(1);
    torch::Tensor grad_color, grad_pos;
    if (grads[0].defined() && (need_color || need_pos)) {
      const auto g = grads[0].contiguous();
      std::tie(grad_color, grad_pos) = cpu::antialias_backward(g, saved[0], saved[1], saved[2],
                                                               {saved[3], saved[4], saved[5]}, need_color, need_pos);
    }
    return {grad_color, grad_pos, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor antialias(const torch::Tensor& color, const torch::Tensor& pos_clip, const torch::Tensor& tri_id,
                        const torch::Tensor& depth, const torch::Tensor& faces, const torch::Tensor& opposite) {
  return AntialiasFunction::apply(color, pos_clip, tri_id, depth, faces, opposite);
}

}  // namespace pixel3dmm::render::autograd
