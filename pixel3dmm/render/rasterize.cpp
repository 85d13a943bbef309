#include "pixel3dmm/render/rasterize.h"

#include <limits>

#include "pixel3dmm/render/cpu/kernels.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {

RasterOutput rasterize(const torch::Tensor& pos_clip, const torch::Tensor& faces, int64_t height, int64_t width) {
  detail::check_clip_positions(pos_clip, "rasterize");
  PIXEL3DMM_CHECK(height > 0 && width > 0, "rasterize: image size must be positive, found ", height, "x", width);
  PIXEL3DMM_CHECK(height <= (1 << 15) && width <= (1 << 15), "rasterize: image size ", height, "x", width,
                  " exceeds 32768 x 32768");
  RasterOutput out;
  out.faces = detail::checked_faces(faces, pos_clip.size(1), "rasterize");
  PIXEL3DMM_CHECK(out.faces.size(0) < std::numeric_limits<int32_t>::max(), "rasterize: too many faces (",
                  out.faces.size(0), ")");
  out.pos_clip = pos_clip;
  out.height = height;
  out.width = width;
  const int64_t B = pos_clip.size(0);
  const auto opts = pos_clip.options().requires_grad(false);
  out.triangle_id = torch::empty({B, height, width}, opts.dtype(torch::kInt32));
  out.bary = torch::empty({B, height, width, 2}, opts);
  out.depth = torch::empty({B, height, width}, opts);
  const auto pos = pos_clip.detach().contiguous();
  cpu::rasterize(pos, out.faces, out);
  return out;
}

torch::Tensor RasterOutput::nvdiffrast_layout() const {
  PIXEL3DMM_CHECK(triangle_id.defined(), "RasterOutput::nvdiffrast_layout: empty raster output");
  return torch::cat({bary, depth.unsqueeze(-1), (triangle_id + 1).to(bary.scalar_type()).unsqueeze(-1)}, -1);
}

torch::Tensor RasterOutput::coverage() const {
  PIXEL3DMM_CHECK(triangle_id.defined(), "RasterOutput::coverage: empty raster output");
  return triangle_id >= 0;
}

}  // namespace pixel3dmm::render
