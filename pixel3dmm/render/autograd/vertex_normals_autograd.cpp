// render::vertex_normals' autograd wrapper: the fused CPU kernels (cpu/vertex_normals_kernel.cpp) as a
// torch::autograd::Function; the normalisation and its backward are tensor ops here.
#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/cpu/kernels.h"

namespace pixel3dmm::render::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kMinLength = 1e-6;

class VertexNormalsFunction : public torch::autograd::Function<VertexNormalsFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& vertices, const torch::Tensor& faces) {
    const auto v = vertices.contiguous();
    const auto sums = cpu::face_crosses(v, faces);
    const auto length = sums.norm(2, 2, true);
    const auto normals = sums / length.clamp_min(kMinLength);
    ctx->save_for_backward({v, faces, normals, length});
    return normals;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &v = saved[0], &faces = saved[1], &normals = saved[2], &length = saved[3];
    const auto g = grads[0].contiguous();
    // n = s / max(|s|, eps): ds = (g - n (n . g)) / |s| where |s| > eps, g / eps where clamped.
    const auto projected = g - normals * (normals * g).sum(2, true);
    const auto gs =
        torch::where(length > kMinLength, projected / length.clamp_min(kMinLength), g / kMinLength).contiguous();
    auto gv = cpu::face_crosses_backward(v, faces, gs);
    return {gv, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces) {
  return VertexNormalsFunction::apply(vertices, faces);
}

}  // namespace pixel3dmm::render::autograd
