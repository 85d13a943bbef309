// MeshRenderer on a synthetic sphere under the official camera: UV, normals, mask, depth, regions, visibility.
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/mesh_renderer.h"
#include "pixel3dmm/render/primitives.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::render;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;

namespace {

// A head-sized sphere (radius 0.12 m) at the world origin, 1 m in front of the official camera: ~240 px across at
// S = 256 with f = 1000 px; here S = 64 (f = 250 px, ~60 px across).
struct Scene {
  TriangleMesh mesh = uv_sphere(12, 24, 0.12);
  Camera camera = Camera::official(64);
};

}  // namespace

TEST_CASE("uv_sphere: closed, outward-facing, FLAME-sized at 51 x 100", "[render][mesh]") {
  const TriangleMesh m = uv_sphere(51, 100);
  CHECK(m.faces.size(0) == 10000);
  CHECK(m.vertices.size(0) == 2 + 50 * 100);
  const auto n = vertex_normals(m.vertices.unsqueeze(0), m.faces)[0];
  // Outward: the normal of a unit sphere is its position.
  CHECK((n * m.vertices).sum(1).min().item<double>() > 0.99);
  // Watertight: every edge has exactly one neighbour.
  CHECK((edge_topology(m.faces, m.vertices.size(0)) >= 0).all().item<bool>());
}

TEST_CASE("vertex_normals: area-weighted sum of face normals, normalised", "[render][mesh]") {
  // Vertex 0 is shared by a big triangle in the z = 0 plane and a small one in the x = 0 plane.
  const auto v =
      torch::tensor({0., 0., 0., 2., 0., 0., 0., 2., 0., 0., 0., 0.5, 0., 0.5, 0.}, torch::kDouble).view({1, 5, 3});
  const auto f = torch::tensor({0, 1, 2, 0, 3, 4}, torch::kInt64).view({2, 3});
  const auto n = vertex_normals(v, f)[0];
  // Face normals (unnormalised): (0, 0, 4) and (0, 0.5, 0) x ... = cross((0,0,.5), (0,.5,0)) = (-0.25, 0, 0).
  auto expected0 = torch::tensor({-0.25, 0.0, 4.0}, torch::kDouble);
  expected0 = expected0 / expected0.norm();
  require_close(n[0], expected0, 1e-12);
  require_close(n[1], torch::tensor({0.0, 0.0, 1.0}, torch::kDouble), 1e-12);
  require_close(n[3], torch::tensor({-1.0, 0.0, 0.0}, torch::kDouble), 1e-12);
  // An isolated vertex keeps a zero normal (divided by the 1e-6 floor, not NaN).
  const auto lone = vertex_normals(torch::cat({v, torch::ones({1, 1, 3}, torch::kDouble)}, 1), f)[0][5];
  CHECK((lone == 0).all().item<bool>());
  // Gradient flows.
  const auto vg = v.clone().requires_grad_(true);
  vertex_normals(vg, f).select(2, 0).sum().backward();
  CHECK(vg.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("vertex_normals: the fused op equals the tensor formulation, values and gradients", "[render][mesh]") {
  // The reference: gathers, a cross product, three index_adds, normalisation, differentiated by autograd.
  const auto reference = [](const torch::Tensor& v, const torch::Tensor& f) {
    const auto i0 = f.select(1, 0), i1 = f.select(1, 1), i2 = f.select(1, 2);
    const auto v0 = v.index_select(1, i0), v1 = v.index_select(1, i1), v2 = v.index_select(1, i2);
    const auto n = torch::cross(v1 - v0, v2 - v0, 2);
    const auto sum = torch::zeros_like(v).index_add(1, i0, n).index_add(1, i1, n).index_add(1, i2, n);
    return sum / sum.norm(2, 2, true).clamp_min(1e-6);
  };
  const auto mesh = uv_sphere(6, 10, 0.1);
  torch::manual_seed(5);
  // Batch 2, jittered, plus an isolated vertex (clamped length) and a face with a repeated vertex.
  auto v64 = (mesh.vertices.unsqueeze(0).repeat({2, 1, 1}) + 0.01 * torch::randn({2, mesh.vertices.size(0), 3}))
                 .to(torch::kDouble);
  v64 = torch::cat({v64, torch::rand({2, 1, 3}, torch::kDouble)}, 1);
  const auto f = torch::cat({mesh.faces, torch::tensor({{0, 0, 1}}, torch::kInt64)}, 0);
  const auto weights = torch::randn_like(v64);
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    INFO("dtype " << dtype);
    const auto a = v64.to(dtype).clone().requires_grad_(true), b = v64.to(dtype).clone().requires_grad_(true);
    const auto na = vertex_normals(a, f), nb = reference(b, f);
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-6;
    require_close(na, nb, tol);
    CHECK((na[0][v64.size(1) - 1] == 0).all().item<bool>());  // the isolated vertex
    (na * weights.to(dtype)).sum().backward();
    (nb * weights.to(dtype)).sum().backward();
    REQUIRE(a.grad().abs().sum().item<double>() > 1.0);
    require_close(a.grad(), b.grad(), dtype == torch::kFloat64 ? 1e-9 : 1e-2);
  }
}

TEST_CASE("MeshRenderer renders UV, normals, mask, depth and regions of a sphere", "[render][mesh]") {
  Scene s;
  MeshRenderer renderer(s.mesh.faces, s.mesh.uvs, s.mesh.uv_faces, s.mesh.vertices.size(0));
  // Region 0: the front hemisphere (z > 0); region 1: nothing.
  const auto regions = torch::stack(
      {(s.mesh.vertices.select(1, 2) > 0.02).to(torch::kFloat32), torch::zeros({s.mesh.vertices.size(0)})}, 1);
  renderer.set_region_masks(regions);
  const auto verts = s.mesh.vertices.unsqueeze(0).repeat({2, 1, 1});
  const RenderOutput out = renderer.render(verts, s.camera);
  const int64_t S = 64;
  REQUIRE(out.uv.sizes() == torch::IntArrayRef({2, 2, S, S}));
  REQUIRE(out.normals.sizes() == torch::IntArrayRef({2, 3, S, S}));
  REQUIRE(out.mask.sizes() == torch::IntArrayRef({2, 1, S, S}));
  REQUIRE(out.depth.sizes() == torch::IntArrayRef({2, 1, S, S}));
  REQUIRE(out.regions.sizes() == torch::IntArrayRef({2, 2, S, S}));
  const auto cov = out.raster.coverage()[0];
  const int64_t covered = cov.sum().item<int64_t>();
  // Disc of radius f r / sqrt(d^2 - r^2) ~ 250 * 0.12 / 0.993 = 30.2 px -> ~2870 px.
  CHECK(covered == Approx(3.14159 * 30.2 * 30.2).epsilon(0.05));
  // Background: uv (1, 0), normals 0, depth 0, regions 0.
  const auto bg = ~cov;
  CHECK((out.uv[0][0].masked_select(bg) == 1).all().item<bool>());
  CHECK((out.uv[0][1].masked_select(bg) == 0).all().item<bool>());
  CHECK((out.normals[0].masked_select(bg.unsqueeze(0)) == 0).all().item<bool>());
  CHECK((out.depth[0][0].masked_select(bg) == 0).all().item<bool>());
  // At the optical axis (pixel (S/2, S/2) is half a pixel right/below of it): the sphere's front point.
  const int64_t c = S / 2;
  CHECK(out.uv[0][0][c][c].item<double>() == Approx(0.5).margin(0.02));  // u = 0.5 faces the camera
  CHECK(out.uv[0][1][c][c].item<double>() == Approx(0.5).margin(0.02));  // 1 - v at the equator
  CHECK(out.normals[0][2][c][c].item<double>() == Approx(1.0).margin(0.02));
  CHECK(out.depth[0][0][c][c].item<double>() == Approx(-(1.0 - 0.12)).margin(0.002));
  // Upright image: the north pole (v = 1, so 1 - v = 0) is at the top rows.
  const auto col = out.uv[0][1].select(1, c);  // 1 - v down the middle column
  int64_t top = 0, bottom = S - 1;
  while (!cov[top][c].item<bool>()) ++top;
  while (!cov[bottom][c].item<bool>()) --bottom;
  CHECK(col[top].item<double>() < 0.15);
  CHECK(col[bottom].item<double>() > 0.85);
  CHECK(out.normals[0][1][top][c].item<double>() > 0.8);  // y up at the top
  // Mask: 1 inside, 0 far outside, soft only along the outline.
  const auto m = out.mask[0][0];
  CHECK(m[c][c].item<double>() == 1.0);
  CHECK(m[0][0].item<double>() == 0.0);
  const auto soft = (m > 0) & (m < 1);
  CHECK(soft.sum().item<int64_t>() > 20);
  // Regions: the front hemisphere covers the centre, region 1 nothing; batch elements agree.
  CHECK(out.regions[0][0][c][c].item<double>() == 1.0);
  CHECK(out.regions[0][1].sum().item<double>() == 0.0);
  require_close(out.mask[0], out.mask[1], 0.0);
}

TEST_CASE("MeshRenderer: mask texture sampled at (1 - u, 1 - v), with gradients", "[render][mesh]") {
  Scene s;
  MeshRenderer renderer(s.mesh.faces, s.mesh.uvs, s.mesh.uv_faces, s.mesh.vertices.size(0));
  // Texture: left half (texture columns < W/2) 1. Official lookup column = (1 - u) W: so u > 0.5 shows 1.
  auto tex = torch::zeros({1, 32, 64});
  tex.narrow(2, 0, 32).fill_(1.0);
  renderer.set_mask_texture(tex);
  auto verts = s.mesh.vertices.unsqueeze(0).clone().requires_grad_(true);
  const RenderOutput out = renderer.render(verts, s.camera);
  const auto m = out.mask[0][0];
  const auto u = out.uv[0][0];
  const auto cov = out.raster.coverage()[0];
  const auto inside = cov & (m > 0.99);
  REQUIRE(inside.sum().item<int64_t>() > 100);
  CHECK(u.masked_select(inside).min().item<double>() > 0.45);
  const auto off = cov & (m < 0.01);
  REQUIRE(off.sum().item<int64_t>() > 100);
  CHECK(u.masked_select(off).max().item<double>() < 0.55);
  // The sphere's right half in the image has x > 0, i.e. sin(phi) > 0, u > 0.5: mask on the right.
  CHECK(m[32][50].item<double>() > 0.99);
  CHECK(m[32][14].item<double>() < 0.01);
  // Gradients reach the vertices through the texture lookup and the silhouette.
  out.mask.sum().backward();
  CHECK(verts.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("MeshRenderer: normals from separate vertices, depth gradients, float64", "[render][mesh]") {
  Scene s;
  MeshRenderer renderer(s.mesh.faces, s.mesh.uvs, s.mesh.uv_faces, s.mesh.vertices.size(0));
  const auto verts = s.mesh.vertices.to(torch::kFloat64).unsqueeze(0);
  // Rotate the normal source by 90 degrees about y: the interpolated normals rotate with it.
  const auto rot = torch::tensor({0., 0., 1., 0., 1., 0., -1., 0., 0.}, torch::kDouble).view({3, 3});
  RenderRequest req;
  req.normal_vertices = torch::matmul(verts, rot.t());
  req.mask = false;
  const RenderOutput out = renderer.render(verts, s.camera, req);
  CHECK(!out.mask.defined());
  REQUIRE(out.normals.scalar_type() == torch::kFloat64);
  // At the centre the rendered surface point is (0, 0, r); its rotated normal is rot * (0, 0, 1) = (1, 0, 0).
  CHECK(out.normals[0][0][32][32].item<double>() == Approx(1.0).margin(0.02));
  // Moving the sphere away increases the distance: depth (negative z) decreases.
  auto t = torch::zeros({1, 1, 3}, torch::kDouble).requires_grad_(true);
  const RenderOutput o2 = renderer.render(verts + t, s.camera, req);
  o2.depth.sum().backward();
  CHECK(t.grad()[0][0][2].item<double>() > 0);
}

TEST_CASE("MeshRenderer: official depth-test visibility", "[render][mesh]") {
  Scene s;
  MeshRenderer renderer(s.mesh.faces, s.mesh.uvs, s.mesh.uv_faces, s.mesh.vertices.size(0));
  const auto verts = s.mesh.vertices.unsqueeze(0);
  const RenderOutput out = renderer.render(verts, s.camera);
  const auto vis = renderer.visibility(verts, s.camera, out.depth)[0];
  const auto z = s.mesh.vertices.select(1, 2);
  // Front vertices (facing the camera at +z) are visible, back ones hidden.
  CHECK(vis.masked_select(z > 0.08).all().item<bool>());
  CHECK(!vis.masked_select(z < -0.02).any().item<bool>());
  // The official rule by hand for one vertex: trunc of the analytic projection, clamp, compare with z + 0.01.
  const auto proj = s.camera.project(verts)[0];
  for (int64_t i : {0, 100, 200}) {
    const int64_t x = std::clamp<int64_t>(static_cast<int64_t>(proj[i][0].item<float>()), 0, 63);
    const int64_t y = std::clamp<int64_t>(static_cast<int64_t>(proj[i][1].item<float>()), 0, 63);
    const bool expected = out.depth[0][0][y][x].item<float>() < proj[i][2].item<float>() + 0.01f;
    CHECK(vis[i].item<bool>() == expected);
  }
  // A vertex projecting onto background is invisible; NaN projections are invisible.
  const auto p = torch::tensor({{{0.f, 0.f, -1.f}, {std::nanf(""), 0.f, -1.f}}});
  const auto v2 = vertex_visibility(p, torch::zeros({1, 1, 8, 8}));
  CHECK(!v2.any().item<bool>());
}

TEST_CASE("MeshRenderer rejects bad input", "[render][mesh]") {
  Scene s;
  require_throws_with<ValueError>(
      [&] { MeshRenderer(s.mesh.faces, s.mesh.uvs, torch::Tensor(), s.mesh.vertices.size(0)); },
      {"per-vertex uvs", "expected " + std::to_string(s.mesh.vertices.size(0))});
  MeshRenderer r(s.mesh.faces, s.mesh.uvs, s.mesh.uv_faces, s.mesh.vertices.size(0));
  require_throws_with<ValueError>([&] { r.render(torch::zeros({1, 5, 3}), s.camera); }, {"expected", "vertices"});
  require_throws_with<ValueError>([&] { r.set_region_masks(torch::zeros({3, 2})); }, {"masks", "found [3, 2]"});
  require_throws_with<ValueError>([&] { r.set_mask_texture(torch::zeros({1, 1, 2, 2})); }, {"texture", "[1, 1, 2, 2]"});
  CHECK(r.repr().find("faces=" + std::to_string(s.mesh.faces.size(0))) != std::string::npos);
}
