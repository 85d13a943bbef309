// The argument checks the render ops share (declared in detail/common.h).
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render::detail {

torch::Tensor checked_faces(const torch::Tensor& faces, int64_t num_vertices, const std::string& what) {
  PIXEL3DMM_CHECK(faces.defined(), what, ": faces are undefined");
  check_shape(faces, {-1, 3}, what + ": faces");
  PIXEL3DMM_CHECK(faces.scalar_type() == torch::kInt32 || faces.scalar_type() == torch::kInt64, what,
                  ": faces: expected dtype Int or Long, found ", faces.scalar_type());
  auto f = faces.to(torch::kCPU, torch::kInt64).contiguous();
  if (f.numel() > 0) {
    const int64_t lo = f.min().item<int64_t>(), hi = f.max().item<int64_t>();
    PIXEL3DMM_CHECK(lo >= 0 && hi < num_vertices, what, ": face indices must lie in [0, ", num_vertices,
                    "), found range [", lo, ", ", hi, "]");
  }
  return f;
}

void check_clip_positions(const torch::Tensor& pos_clip, const std::string& what) {
  PIXEL3DMM_CHECK(pos_clip.defined(), what, ": clip positions are undefined");
  check_shape(pos_clip, {-1, -1, 4}, what + ": pos_clip");
  PIXEL3DMM_CHECK(pos_clip.scalar_type() == torch::kFloat32 || pos_clip.scalar_type() == torch::kFloat64, what,
                  ": pos_clip: expected dtype Float or Double, found ", pos_clip.scalar_type());
  PIXEL3DMM_CHECK(pos_clip.device().is_cpu(), what, ": pos_clip must be a CPU tensor, found ", pos_clip.device());
  check_finite(pos_clip.detach(), what + ": pos_clip");
}

}  // namespace pixel3dmm::render::detail
