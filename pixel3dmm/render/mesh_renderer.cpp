#include "pixel3dmm/render/mesh_renderer.h"

#include <sstream>

#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/detail/common.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/texture.h"

namespace pixel3dmm::render {
namespace {

void check_vertices(const torch::Tensor& v, const std::string& what) {
  PIXEL3DMM_CHECK(v.defined(), what, " are undefined");
  check_shape(v, {-1, -1, 3}, what);
  PIXEL3DMM_CHECK(v.scalar_type() == torch::kFloat32 || v.scalar_type() == torch::kFloat64, what,
                  ": expected dtype Float or Double, found ", v.scalar_type());
  PIXEL3DMM_CHECK(v.device().is_cpu(), what, " must be a CPU tensor, found ", v.device());
}

}  // namespace

torch::Tensor vertex_visibility(const torch::Tensor& projected, const torch::Tensor& depth, double tolerance) {
  PIXEL3DMM_CHECK(projected.defined() && depth.defined(), "vertex_visibility: projected and depth must be set");
  check_shape(projected, {-1, -1, 3}, "vertex_visibility: projected");
  check_shape(depth, {-1, 1, -1, -1}, "vertex_visibility: depth");
  const int64_t B = projected.size(0), H = depth.size(2), W = depth.size(3);
  PIXEL3DMM_CHECK(depth.size(0) == B, "vertex_visibility: depth has batch size ", depth.size(0), ", projected ", B);
  const auto p = projected.detach();
  const auto finite = torch::isfinite(p).all(2);
  const auto safe = torch::where(finite.unsqueeze(2), p, torch::zeros_like(p));
  // Truncation toward zero (Python's .long()), then clamping, exactly as the official lookup.
  const auto x = safe.select(2, 0).clamp(-1e9, 1e9).to(torch::kLong).clamp(0, W - 1);
  const auto y = safe.select(2, 1).clamp(-1e9, 1e9).to(torch::kLong).clamp(0, H - 1);
  const auto at = depth.detach().reshape({B, H * W}).gather(1, y * W + x);
  return finite & (at < safe.select(2, 2).to(at.scalar_type()) + tolerance);
}

MeshRenderer::MeshRenderer(const torch::Tensor& faces, const torch::Tensor& uvs, const torch::Tensor& uv_faces,
                           int64_t num_vertices)
    : num_vertices_(num_vertices) {
  PIXEL3DMM_CHECK(num_vertices > 0, "MeshRenderer: num_vertices must be positive, found ", num_vertices);
  faces_ = detail::checked_faces(faces, num_vertices, "MeshRenderer");
  PIXEL3DMM_CHECK(uvs.defined(), "MeshRenderer: uvs are undefined");
  check_shape(uvs, {-1, 2}, "MeshRenderer: uvs");
  PIXEL3DMM_CHECK(uvs.is_floating_point(), "MeshRenderer: uvs: expected a floating-point dtype, found ",
                  uvs.scalar_type());
  if (uv_faces.defined()) {
    uv_faces_ = detail::checked_faces(uv_faces, uvs.size(0), "MeshRenderer: uv_faces");
    PIXEL3DMM_CHECK(uv_faces_.size(0) == faces_.size(0), "MeshRenderer: uv_faces: expected ", faces_.size(0),
                    " faces (one per face), found ", uv_faces_.size(0));
  } else {
    PIXEL3DMM_CHECK(uvs.size(0) == num_vertices, "MeshRenderer: per-vertex uvs need one row per vertex: expected ",
                    num_vertices, ", found ", uvs.size(0));
    uv_faces_ = faces_;
  }
  check_finite(uvs, "MeshRenderer: uvs");
  // The official renderer interpolates texc = (1 - u, 1 - v) (0 on background), reads its mask texture with it and
  // outputs (1 - texc_u, texc_v). Interpolating (u - 1, 1 - v) instead gives both with one add / multiply:
  // uv = T + (1, 0) (background (1, 0), as there) and texc = T * (-1, 1).
  const auto u = uvs.detach().to(torch::kFloat32);
  texcoords_ = torch::stack({u.select(1, 0) - 1.0, 1.0 - u.select(1, 1)}, 1).contiguous();
  topology_ = edge_topology(faces_, num_vertices);
}

void MeshRenderer::set_mask_texture(const torch::Tensor& texture) {
  if (!texture.defined()) {
    mask_texture_ = torch::Tensor();
    return;
  }
  PIXEL3DMM_CHECK(texture.dim() == 2 || texture.dim() == 3,
                  "MeshRenderer::set_mask_texture: expected shape [C, H, W] or [H, W], found ",
                  shape_string(texture.sizes()));
  auto t = (texture.dim() == 2 ? texture.unsqueeze(0) : texture).detach().to(torch::kFloat32);
  PIXEL3DMM_CHECK(t.size(0) > 0 && t.size(1) > 0 && t.size(2) > 0, "MeshRenderer::set_mask_texture: empty texture ",
                  shape_string(t.sizes()));
  check_finite(t, "MeshRenderer::set_mask_texture: texture");
  // One wrapped texel on each side, so that bilinear sampling with border clamping wraps like nvdiffrast.
  t = torch::cat({t.narrow(2, t.size(2) - 1, 1), t, t.narrow(2, 0, 1)}, 2);
  t = torch::cat({t.narrow(1, t.size(1) - 1, 1), t, t.narrow(1, 0, 1)}, 1);
  mask_texture_ = t.unsqueeze(0).contiguous();
}

void MeshRenderer::set_region_masks(const torch::Tensor& masks) {
  if (!masks.defined()) {
    region_masks_ = torch::Tensor();
    return;
  }
  check_shape(masks, {num_vertices_, -1}, "MeshRenderer::set_region_masks: masks");
  region_masks_ = masks.detach().to(torch::kFloat32).contiguous();
  check_finite(region_masks_, "MeshRenderer::set_region_masks: masks");
}

RenderOutput MeshRenderer::render(const torch::Tensor& vertices, const Camera& camera_in,
                                  const RenderRequest& request) const {
  check_vertices(vertices, "MeshRenderer::render: vertices");
  PIXEL3DMM_CHECK(vertices.size(1) == num_vertices_, "MeshRenderer::render: vertices: expected ", num_vertices_,
                  " vertices, found ", vertices.size(1));
  const auto dtype = vertices.scalar_type();
  const Camera camera = camera_in.to(dtype);
  const auto opts = vertices.options().requires_grad(false);
  const int64_t H = camera.height, W = camera.width;
  RenderOutput out;
  const auto pos_clip = camera.to_clip(vertices).to(dtype);
  out.raster = rasterize(pos_clip, faces_, H, W);
  const int64_t B = pos_clip.size(0);

  torch::Tensor shifted;  // B x H x W x 2: (u - 1, 1 - v) interpolated, 0 on background
  if (request.uv || (request.mask && mask_texture_.defined()))
    shifted = interpolate(texcoords_.to(dtype), out.raster, uv_faces_);
  if (request.uv) out.uv = (shifted + torch::tensor({1.0, 0.0}, opts)).permute({0, 3, 1, 2});

  // Every per-vertex attribute in one interpolation: [normals (3) | camera z (1) | regions (R)].
  std::vector<torch::Tensor> attrs;
  if (request.normals) {
    const auto& nv = request.normal_vertices.defined() ? request.normal_vertices : vertices;
    check_vertices(nv, "MeshRenderer::render: normal_vertices");
    PIXEL3DMM_CHECK(nv.size(1) == num_vertices_ && (nv.size(0) == B || nv.size(0) == 1),
                    "MeshRenderer::render: normal_vertices: expected shape [", B, ", ", num_vertices_, ", 3], found ",
                    shape_string(nv.sizes()));
    out.vertex_normals = vertex_normals(nv.to(dtype), faces_);
    attrs.push_back(out.vertex_normals.expand({B, num_vertices_, 3}));
  }
  // The projection's last row is (0, 0, -1, 0): w_clip = -z_camera, so the camera z is already at hand.
  if (request.depth) attrs.push_back(-pos_clip.narrow(2, 3, 1));
  const bool regions = request.regions && region_masks_.defined() && region_masks_.size(1) > 0;
  if (regions) attrs.push_back(region_masks_.to(dtype).unsqueeze(0).expand({B, -1, -1}));
  if (!attrs.empty()) {
    const auto images = interpolate(torch::cat(attrs, 2), out.raster).permute({0, 3, 1, 2});
    int64_t c = 0;
    if (request.normals) out.normals = images.narrow(1, c, 3), c += 3;
    if (request.depth) out.depth = images.narrow(1, c, 1), c += 1;
    if (regions) out.regions = (images.narrow(1, c, region_masks_.size(1)) > 0).to(dtype);
  }

  if (request.mask) {
    torch::Tensor color;  // B x H x W x C
    if (mask_texture_.defined()) {
      const int64_t Hp = mask_texture_.size(2), Wp = mask_texture_.size(3);
      // Texel-centre coordinate u * size - 0.5, shifted by the one-texel pad: with texc = (1 - u, 1 - v) =
      // (-shifted_u, shifted_v), x = 0.5 - shifted_u (Wp - 2), y = 0.5 + shifted_v (Hp - 2). Border clamping and
      // bilinear weights as grid_sample(padding_mode=border, align_corners=false); background pixels are 0.
      color = sample_texture(mask_texture_[0], shifted, out.raster.triangle_id,
                             {-static_cast<double>(Wp - 2), static_cast<double>(Hp - 2)}, {0.5, 0.5});
    } else {
      color = out.raster.coverage().unsqueeze(-1).to(dtype);  // B x H x W x 1
    }
    out.mask = antialias(color.contiguous(), out.raster, topology_).permute({0, 3, 1, 2});
  }
  return out;
}

torch::Tensor MeshRenderer::visibility(const torch::Tensor& vertices, const Camera& camera, const torch::Tensor& depth,
                                       double tolerance) const {
  check_vertices(vertices, "MeshRenderer::visibility: vertices");
  return vertex_visibility(camera.to(vertices.scalar_type()).project(vertices), depth, tolerance);
}

std::string MeshRenderer::repr() const {
  std::ostringstream s;
  s << "MeshRenderer(vertices=" << num_vertices_ << ", faces=" << faces_.size(0) << ", uvs=" << texcoords_.size(0);
  if (mask_texture_.defined())
    s << ", mask_texture=" << mask_texture_.size(1) << "x" << mask_texture_.size(2) - 2 << "x"
      << mask_texture_.size(3) - 2;
  if (region_masks_.defined()) s << ", regions=" << region_masks_.size(1);
  s << ")";
  return s.str();
}

}  // namespace pixel3dmm::render
