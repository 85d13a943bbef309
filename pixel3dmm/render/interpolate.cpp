#include "pixel3dmm/render/interpolate.h"

#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {

torch::Tensor interpolate(const torch::Tensor& attr, const RasterOutput& raster, const torch::Tensor& faces) {
  PIXEL3DMM_CHECK(raster.triangle_id.defined() && raster.pos_clip.defined(), "interpolate: empty raster output");
  PIXEL3DMM_CHECK(attr.defined(), "interpolate: attributes are undefined");
  PIXEL3DMM_CHECK(attr.dim() == 2 || attr.dim() == 3,
                  "interpolate: attributes: expected shape [B, V, C] or [V, C], "
                  "found ",
                  shape_string(attr.sizes()));
  const auto a = attr.dim() == 2 ? attr.unsqueeze(0) : attr;
  const int64_t B = raster.triangle_id.size(0);
  PIXEL3DMM_CHECK(a.size(0) == 1 || a.size(0) == B, "interpolate: attributes: batch size ", a.size(0),
                  " does not match the raster's ", B);
  check_dtype(a, raster.bary.scalar_type(), "interpolate: attributes (must match the clip positions)");
  PIXEL3DMM_CHECK(a.device().is_cpu(), "interpolate: attributes must be a CPU tensor, found ", a.device());
  const auto attr_faces = faces.defined() ? detail::checked_faces(faces, a.size(1), "interpolate") : raster.faces;
  PIXEL3DMM_CHECK(attr_faces.size(0) == raster.faces.size(0), "interpolate: faces: expected ", raster.faces.size(0),
                  " faces (as rasterised), found ", attr_faces.size(0));
  if (!faces.defined() && raster.faces.numel() > 0)
    PIXEL3DMM_CHECK(raster.faces.max().item<int64_t>() < a.size(1), "interpolate: attributes have ", a.size(1),
                    " vertices but the raster's faces index up to ", raster.faces.max().item<int64_t>());
  return autograd::interpolate(a, raster.pos_clip, raster.triangle_id, raster.bary, attr_faces, raster.faces);
}

}  // namespace pixel3dmm::render
