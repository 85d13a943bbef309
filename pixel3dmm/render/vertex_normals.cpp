#include "pixel3dmm/render/vertex_normals.h"

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {

torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces) {
  PIXEL3DMM_CHECK(vertices.defined(), "vertex_normals: vertices are undefined");
  check_shape(vertices, {-1, -1, 3}, "vertex_normals: vertices");
  PIXEL3DMM_CHECK(vertices.scalar_type() == torch::kFloat32 || vertices.scalar_type() == torch::kFloat64,
                  "vertex_normals: vertices: expected dtype Float or Double, found ", vertices.scalar_type());
  PIXEL3DMM_CHECK(vertices.device().is_cpu(), "vertex_normals: vertices must be a CPU tensor, found ",
                  vertices.device());
  const auto f = detail::checked_faces(faces, vertices.size(1), "vertex_normals");
  return autograd::vertex_normals(vertices, f.contiguous());
}

}  // namespace pixel3dmm::render
