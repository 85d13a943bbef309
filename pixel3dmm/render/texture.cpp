#include "pixel3dmm/render/texture.h"

#include <cmath>

#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {

torch::Tensor sample_texture(const torch::Tensor& texture, const torch::Tensor& coords,
                             const torch::Tensor& triangle_id, std::array<double, 2> scale,
                             std::array<double, 2> offset) {
  PIXEL3DMM_CHECK(texture.defined() && coords.defined() && triangle_id.defined(),
                  "sample_texture: texture, coords and triangle_id must be set");
  check_shape(texture, {-1, -1, -1}, "sample_texture: texture");
  PIXEL3DMM_CHECK(texture.size(0) > 0 && texture.size(1) > 0 && texture.size(2) > 0, "sample_texture: empty texture ",
                  shape_string(texture.sizes()));
  check_shape(coords, {-1, -1, -1, 2}, "sample_texture: coords");
  PIXEL3DMM_CHECK(coords.scalar_type() == torch::kFloat32 || coords.scalar_type() == torch::kFloat64,
                  "sample_texture: coords: expected dtype Float or Double, found ", coords.scalar_type());
  PIXEL3DMM_CHECK(texture.is_floating_point(), "sample_texture: texture: expected a floating dtype, found ",
                  texture.scalar_type());
  check_shape(triangle_id, {coords.size(0), coords.size(1), coords.size(2)}, "sample_texture: triangle_id");
  check_dtype(triangle_id, torch::kInt32, "sample_texture: triangle_id");
  PIXEL3DMM_CHECK(coords.device().is_cpu() && texture.device().is_cpu() && triangle_id.device().is_cpu(),
                  "sample_texture: expected CPU tensors");
  for (double v : {scale[0], scale[1], offset[0], offset[1]})
    PIXEL3DMM_CHECK(std::isfinite(v), "sample_texture: scale and offset must be finite, found ", v);
  return autograd::sample_texture(coords.contiguous(), texture.detach().to(coords.scalar_type()).contiguous(),
                                  triangle_id.contiguous(), scale, offset);
}

}  // namespace pixel3dmm::render
