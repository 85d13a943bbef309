// torch.ops.pixel3dmm.{blend, skin}: schemas and the shells over flame/lbs.h.
#include "pixel3dmm/flame/torch_ops.h"

#include <torch/library.h>

#include "pixel3dmm/flame/lbs.h"

TORCH_LIBRARY_FRAGMENT(pixel3dmm, m) {
  m.def("blend(Tensor coeffs, Tensor basis, Tensor? base=None) -> Tensor",
        [](const torch::Tensor& coeffs, const torch::Tensor& basis, const c10::optional<torch::Tensor>& base) {
          return pixel3dmm::flame::blend(coeffs, basis, base.value_or(torch::Tensor()));
        });
  m.def("skin(Tensor vertices, Tensor relative, Tensor weights) -> Tensor",
        [](const torch::Tensor& vertices, const torch::Tensor& relative, const torch::Tensor& weights) {
          return pixel3dmm::flame::skin(vertices, relative, weights);
        });
}
