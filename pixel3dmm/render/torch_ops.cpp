// torch.ops.pixel3dmm.{rasterize, interpolate, antialias, edge_topology}: schemas and the shells over the library's
// functions. Argument checks that the functions themselves do not need (a raster assembled from loose tensors) live
// in raster_from_tensors.
#include "pixel3dmm/render/torch_ops.h"

#include <torch/library.h>

#include <tuple>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/detail/common.h"
#include "pixel3dmm/render/interpolate.h"

namespace pixel3dmm::render {

RasterOutput raster_from_tensors(const torch::Tensor& pos_clip, const torch::Tensor& faces,
                                 const torch::Tensor& triangle_id, const torch::Tensor& bary,
                                 const torch::Tensor& depth, const std::string& what) {
  detail::check_clip_positions(pos_clip, what);
  RasterOutput r;
  r.pos_clip = pos_clip;
  r.faces = detail::checked_faces(faces, pos_clip.size(1), what);
  PIXEL3DMM_CHECK(triangle_id.defined() && triangle_id.dim() == 3, what,
                  ": triangle_id: expected shape [B, H, W], found ",
                  triangle_id.defined() ? shape_string(triangle_id.sizes()) : "None");
  const int64_t B = pos_clip.size(0), H = triangle_id.size(1), W = triangle_id.size(2);
  check_shape(triangle_id, {B, H, W}, what + ": triangle_id (batch of pos_clip)");
  check_dtype(triangle_id, torch::kInt32, what + ": triangle_id");
  check_shape(bary, {B, H, W, 2}, what + ": bary");
  check_dtype(bary, pos_clip.scalar_type(), what + ": bary (must match pos_clip)");
  if (depth.defined()) {
    check_shape(depth, {B, H, W}, what + ": depth");
    check_dtype(depth, pos_clip.scalar_type(), what + ": depth (must match pos_clip)");
  }
  if (triangle_id.numel() > 0) {
    const int64_t lo = triangle_id.min().item<int64_t>(), hi = triangle_id.max().item<int64_t>();
    PIXEL3DMM_CHECK(lo >= -1 && hi < r.faces.size(0), what, ": triangle_id: expected ids in [-1, ", r.faces.size(0),
                    ") (-1 = background), found range [", lo, ", ", hi, "]");
  }
  r.triangle_id = triangle_id.contiguous();
  r.bary = bary.contiguous();
  r.depth = depth.defined() ? depth.contiguous() : torch::zeros({B, H, W}, bary.options());
  r.height = H;
  r.width = W;
  return r;
}

namespace {

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> rasterize_op(const torch::Tensor& pos_clip,
                                                                     const torch::Tensor& faces, int64_t height,
                                                                     int64_t width) {
  RasterOutput r = rasterize(pos_clip, faces, height, width);
  return {r.triangle_id, r.bary, r.depth};
}

torch::Tensor interpolate_op(const torch::Tensor& attr, const torch::Tensor& pos_clip, const torch::Tensor& faces,
                             const torch::Tensor& triangle_id, const torch::Tensor& bary,
                             const c10::optional<torch::Tensor>& attr_faces) {
  const RasterOutput r = raster_from_tensors(pos_clip, faces, triangle_id, bary, {}, "pixel3dmm::interpolate");
  return interpolate(attr, r, attr_faces.value_or(torch::Tensor()));
}

torch::Tensor antialias_op(const torch::Tensor& color, const torch::Tensor& pos_clip, const torch::Tensor& faces,
                           const torch::Tensor& triangle_id, const torch::Tensor& bary, const torch::Tensor& depth,
                           const c10::optional<torch::Tensor>& topology) {
  const RasterOutput r = raster_from_tensors(pos_clip, faces, triangle_id, bary, depth, "pixel3dmm::antialias");
  return antialias(color, r, topology.value_or(torch::Tensor()));
}

}  // namespace

}  // namespace pixel3dmm::render

// A fragment: flame/torch_ops.cpp adds the skinning ops to the same namespace.
TORCH_LIBRARY_FRAGMENT(pixel3dmm, m) {
  using namespace pixel3dmm::render;
  m.def(
      "rasterize(Tensor pos_clip, Tensor faces, int height, int width) -> (Tensor triangle_id, Tensor bary, "
      "Tensor depth)",
      &rasterize_op);
  m.def(
      "interpolate(Tensor attr, Tensor pos_clip, Tensor faces, Tensor triangle_id, Tensor bary, "
      "Tensor? attr_faces=None) -> Tensor",
      &interpolate_op);
  m.def(
      "antialias(Tensor color, Tensor pos_clip, Tensor faces, Tensor triangle_id, Tensor bary, Tensor depth, "
      "Tensor? topology=None) -> Tensor",
      &antialias_op);
  m.def("edge_topology(Tensor faces, int num_vertices) -> Tensor",
        [](const torch::Tensor& faces, int64_t num_vertices) { return edge_topology(faces, num_vertices); });
}
