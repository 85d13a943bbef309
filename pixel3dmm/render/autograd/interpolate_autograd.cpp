// render::interpolate's autograd wrapper: the CPU kernels (cpu/interpolate_kernel.cpp) as a
// torch::autograd::Function, differentiable in the attributes and the clip positions.
#include <tuple>

#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/cpu/kernels.h"

namespace pixel3dmm::render::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class InterpolateFunction : public torch::autograd::Function<InterpolateFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& attr, const torch::Tensor& pos,
                               const torch::Tensor& tri_id, const torch::Tensor& bary, const torch::Tensor& attr_faces,
                               const torch::Tensor& pos_faces) {
    const auto a = attr.contiguous();
    auto out = cpu::interpolate_forward(a, tri_id, bary, attr_faces);
    ctx->save_for_backward({a, pos, tri_id, bary, attr_faces, pos_faces});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& attr = saved[0];
    const auto pos = saved[1].contiguous();
    const bool need_attr = ctx->needs_input_grad(0), need_pos = ctx->needs_input_grad(1);
    torch::Tensor grad_attr, grad_pos;
    if (grads[0].defined() && (need_attr || need_pos)) {
      const auto g = grads[0].contiguous();
      std::tie(grad_attr, grad_pos) =
          cpu::interpolate_backward(g, attr, pos, saved[2], saved[3], saved[4], saved[5], need_attr, need_pos);
    }
    return {grad_attr, grad_pos, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor interpolate(const torch::Tensor& attr, const torch::Tensor& pos, const torch::Tensor& tri_id,
                          const torch::Tensor& bary, const torch::Tensor& attr_faces, const torch::Tensor& pos_faces) {
  return InterpolateFunction::apply(attr, pos, tri_id, bary, attr_faces, pos_faces);
}

}  // namespace pixel3dmm::render::autograd
