// render::sample_texture's autograd wrapper: the CPU kernels (cpu/texture_kernel.cpp) as a
// torch::autograd::Function, differentiable in the coordinates only.
#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/cpu/kernels.h"

namespace pixel3dmm::render::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class TextureFunction : public torch::autograd::Function<TextureFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& coords, const torch::Tensor& texture,
                               const torch::Tensor& triangle_id, std::array<double, 2> scale,
                               std::array<double, 2> offset) {
    const int64_t B = coords.size(0), H = coords.size(1), W = coords.size(2), C = texture.size(0);
    // The derivatives are kept only when a backward can come.
    torch::Tensor deriv = coords.requires_grad() ? torch::empty({B, H, W, C, 2}, coords.options()) : torch::Tensor();
    auto out = cpu::texture_forward(texture, coords, triangle_id, scale, offset, deriv);
    ctx->save_for_backward({deriv});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto deriv = ctx->get_saved_variables()[0];
    torch::Tensor grad_coords;
    if (grads[0].defined() && deriv.defined() && ctx->needs_input_grad(0)) {
      grad_coords = cpu::texture_backward(grads[0].contiguous(), deriv);
    }
    return {grad_coords, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sample_texture(const torch::Tensor& coords, const torch::Tensor& texture,
                             const torch::Tensor& triangle_id, std::array<double, 2> scale,
                             std::array<double, 2> offset) {
  return TextureFunction::apply(coords, texture, triangle_id, scale, offset);
}

}  // namespace pixel3dmm::render::autograd
