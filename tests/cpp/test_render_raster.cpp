// The rasteriser against a brute-force reference (every pixel x every triangle, double precision, 2D screen-space
// barycentrics + perspective correction, explicit polygon clipping at the near and far planes), and its edge cases.
#include <ATen/Parallel.h>

#include <array>
#include <limits>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/render/rasterize.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::render;
using pixel3dmm::test::require_throws_with;

namespace {

struct RefPixel {
  int id = -1;
  double depth = std::numeric_limits<double>::infinity();
  double b0 = 0, b1 = 0;
  bool ambiguous = false;  // another triangle within 1e-9 in depth, or the winner's edge within 1e-9 of the centre
};

using P4 = std::array<double, 4>;

// One clipped sub-triangle: clip-space corners and their barycentric coordinates w.r.t. the original triangle.
struct SubTri {
  P4 q[3];
  std::array<double, 3> c[3];
};

// Clips against z >= -w and z <= w (Sutherland-Hodgman on (position, barycentric) pairs) and fans the polygon.
std::vector<SubTri> clip_triangle(const P4 p[3]) {
  struct PV {
    P4 q;
    std::array<double, 3> c;
  };
  std::vector<PV> poly = {{p[0], {1, 0, 0}}, {p[1], {0, 1, 0}}, {p[2], {0, 0, 1}}};
  for (double s : {1.0, -1.0}) {
    std::vector<PV> out;
    for (size_t i = 0; i < poly.size(); ++i) {
      const PV& a = poly[i];
      const PV& b = poly[(i + 1) % poly.size()];
      const double da = s * a.q[2] + a.q[3], db = s * b.q[2] + b.q[3];
      if (da >= 0) out.push_back(a);
      if ((da >= 0) != (db >= 0)) {
        const double t = da / (da - db);
        PV m;
        for (int k = 0; k < 4; ++k) m.q[k] = a.q[k] + t * (b.q[k] - a.q[k]);
        for (int k = 0; k < 3; ++k) m.c[k] = a.c[k] + t * (b.c[k] - a.c[k]);
        out.push_back(m);
      }
    }
    poly = out;
  }
  std::vector<SubTri> tris;
  for (size_t i = 1; i + 1 < poly.size(); ++i)
    tris.push_back({{poly[0].q, poly[i].q, poly[i + 1].q}, {poly[0].c, poly[i].c, poly[i + 1].c}});
  return tris;
}

// Reference rasteriser. For each clipped sub-triangle (all w > 0 after clipping, or w = 0 at a degenerate corner),
// 2D barycentrics of the projected corners decide coverage; perspective correction gives the sub-triangle's
// clip-space weights, mapped back to the original triangle.
std::vector<RefPixel> reference(const torch::Tensor& pos, const torch::Tensor& faces, int64_t b, int64_t H,
                                int64_t W) {
  const auto P = pos.to(torch::kDouble).contiguous();
  const auto Fc = faces.to(torch::kLong).contiguous();
  std::vector<RefPixel> px(static_cast<size_t>(H * W));
  // Per pixel: all hits (depth, id, bary, edge distance) to decide winner and ambiguity.
  struct Hit {
    double depth, b0, b1;
    int id;
    bool near_edge;
  };
  std::vector<std::vector<Hit>> hits(static_cast<size_t>(H * W));
  for (int64_t t = 0; t < Fc.size(0); ++t) {
    P4 p[3];
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) p[i][k] = P[b][Fc[t][i].item<int64_t>()][k].item<double>();
    for (const SubTri& s : clip_triangle(p)) {
      double X[3], Y[3];
      bool ok = true;
      for (int i = 0; i < 3; ++i) {
        if (!(s.q[i][3] > 1e-12)) ok = false;
        X[i] = s.q[i][0] / s.q[i][3];
        Y[i] = s.q[i][1] / s.q[i][3];
      }
      if (!ok) continue;
      const double area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0]);
      if (area == 0) continue;
      for (int64_t r = 0; r < H; ++r)
        for (int64_t c = 0; c < W; ++c) {
          const double x = (2.0 * c + 1) / W - 1, y = (2.0 * r + 1) / H - 1;
          double l[3];
          for (int i = 0; i < 3; ++i) {
            const int j = (i + 1) % 3, k = (i + 2) % 3;
            l[i] = ((X[j] - x) * (Y[k] - y) - (X[k] - x) * (Y[j] - y)) / area;
          }
          const double lmin = std::min({l[0], l[1], l[2]});
          if (lmin < -1e-9) continue;
          // Perspective-correct weights of the sub-triangle corners, then of the original vertices.
          double beta[3], sum = 0;
          for (int i = 0; i < 3; ++i) sum += beta[i] = l[i] / s.q[i][3];
          double bo[3] = {0, 0, 0}, z = 0, w = 0;
          for (int i = 0; i < 3; ++i) {
            beta[i] /= sum;
            for (int k = 0; k < 3; ++k) bo[k] += beta[i] * s.c[i][k];
            z += beta[i] * s.q[i][2];
            w += beta[i] * s.q[i][3];
          }
          const bool near_edge = lmin < 1e-9 || std::min({bo[0], bo[1], bo[2]}) < 1e-9;
          if (lmin < 0 && !near_edge) continue;
          hits[r * W + c].push_back({lmin >= 0 ? z / w : std::numeric_limits<double>::quiet_NaN(), bo[0], bo[1],
                                     int(t), near_edge});
        }
    }
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    auto& hs = hits[i];
    RefPixel& out = px[i];
    for (const Hit& h : hs)
      if (!std::isnan(h.depth) && (h.depth < out.depth || (h.depth == out.depth && h.id < out.id))) {
        out.id = h.id;
        out.depth = h.depth;
        out.b0 = h.b0;
        out.b1 = h.b1;
      }
    for (const Hit& h : hs) {
      // A pixel centre on an edge (of a triangle or of its clipped part) that could matter: coverage is a tie.
      if (h.near_edge && (std::isnan(h.depth) || h.depth <= out.depth + 1e-9)) out.ambiguous = true;
      if (h.id != out.id && std::abs(h.depth - out.depth) < 1e-9) out.ambiguous = true;
    }
    if (out.id < 0) out.depth = 0;
  }
  return px;
}

// Random clip-space soup: vertices spread over (and beyond) the view volume. With `behind`, some vertices lie
// behind the eye (w < 0) and z comes from a perspective matrix (near 0.6, far 1.8: z = a w - b), as for real
// meshes; with arbitrary z the near and far planes would meet at w = 0 inside a triangle, whose clipped part then
// reaches infinity on screen (the rasteriser handles that, the reference's projected polygon cannot).
torch::Tensor random_clip(int64_t B, int64_t V, uint64_t seed, bool behind, torch::ScalarType dtype) {
  torch::manual_seed(seed);
  auto w = 0.5 + 1.5 * torch::rand({B, V, 1}, torch::kDouble);
  if (behind) w = torch::where(torch::rand({B, V, 1}, torch::kDouble) < 0.3, -w, w);
  const auto xy = (torch::rand({B, V, 2}, torch::kDouble) * 2.4 - 1.2) * w.abs();
  auto z = (torch::rand({B, V, 1}, torch::kDouble) * 2.3 - 1.15) * w.abs();
  if (behind) {
    const double n = 0.6, f = 1.8;
    z = (f + n) / (f - n) * w - 2 * f * n / (f - n);  // OpenGL with eye depth w
  }
  return torch::cat({xy, z, w}, 2).to(dtype);
}

// Random triangles of nearby vertices (smallish, overlapping) plus a few large ones.
torch::Tensor random_faces(int64_t V, int64_t F, uint64_t seed) {
  torch::manual_seed(seed);
  auto f = torch::randint(0, V, {F, 3}, torch::kInt64);
  return f;
}

struct Comparison {
  int64_t compared = 0, ambiguous = 0, id_mismatch = 0, covered = 0;
  double max_bary_err = 0, max_depth_err = 0;
};

Comparison compare(const RasterOutput& r, const torch::Tensor& pos, const torch::Tensor& faces) {
  Comparison cmp;
  const int64_t B = pos.size(0), H = r.height, W = r.width;
  const auto ids = r.triangle_id.to(torch::kLong);
  const auto bary = r.bary.to(torch::kDouble), depth = r.depth.to(torch::kDouble);
  for (int64_t b = 0; b < B; ++b) {
    const auto ref = reference(pos, faces, b, H, W);
    const auto idb = ids[b], bb = bary[b], db = depth[b];
    const auto ia = idb.accessor<int64_t, 2>();
    const auto ba = bb.accessor<double, 3>();
    const auto da = db.accessor<double, 2>();
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const RefPixel& p = ref[y * W + x];
        if (p.ambiguous) {
          ++cmp.ambiguous;
          continue;
        }
        ++cmp.compared;
        if (ia[y][x] != p.id) {
          ++cmp.id_mismatch;
          UNSCOPED_INFO("pixel b=" << b << " (" << x << ", " << y << "): id " << ia[y][x] << " vs reference " << p.id);
          continue;
        }
        if (p.id < 0) continue;
        ++cmp.covered;
        cmp.max_bary_err = std::max({cmp.max_bary_err, std::abs(ba[y][x][0] - p.b0), std::abs(ba[y][x][1] - p.b1)});
        cmp.max_depth_err = std::max(cmp.max_depth_err, std::abs(da[y][x] - p.depth));
      }
  }
  return cmp;
}

}  // namespace

TEST_CASE("rasterize matches the brute-force reference on random meshes", "[render][raster]") {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const auto pos = random_clip(2, 40, 21, false, dtype);
    const auto faces = random_faces(40, 60, 22).to(torch::kInt32);
    const auto r = rasterize(pos, faces, 23, 37);  // non-square, batch 2
    REQUIRE(r.triangle_id.sizes() == torch::IntArrayRef({2, 23, 37}));
    REQUIRE(r.bary.sizes() == torch::IntArrayRef({2, 23, 37, 2}));
    const Comparison c = compare(r, pos, faces);
    INFO("dtype " << dtype << ": compared " << c.compared << ", ambiguous " << c.ambiguous << ", covered "
                  << c.covered);
    CHECK(c.id_mismatch == 0);
    CHECK(c.max_bary_err < 1e-5);
    CHECK(c.max_depth_err < 1e-5);
    CHECK(c.covered > 300);                       // the test exercises real coverage...
    CHECK(c.ambiguous * 100 < c.compared);        // ...and few exact ties
  }
}

TEST_CASE("rasterize clips triangles crossing the near and far planes exactly", "[render][raster]") {
  // Vertices behind the eye (w < 0) and beyond the depth range: the reference clips polygons explicitly.
  const auto pos = random_clip(2, 30, 31, true, torch::kFloat64);
  const auto faces = random_faces(30, 40, 32);
  const auto r = rasterize(pos, faces, 29, 31);
  const Comparison c = compare(r, pos, faces);
  INFO("compared " << c.compared << ", ambiguous " << c.ambiguous << ", covered " << c.covered);
  CHECK(c.id_mismatch == 0);
  CHECK(c.max_bary_err < 1e-9);
  CHECK(c.max_depth_err < 1e-9);
  CHECK(c.covered > 100);
  // Every drawn depth lies inside OpenGL's range.
  CHECK(r.depth.abs().max().item<double>() <= 1.0);

  // A single triangle with one vertex behind the camera: drawn, but only where the hit point is in front.
  const auto tri = torch::tensor({-0.5, -0.5, 0.0, 1.0, 0.5, -0.5, 0.0, 1.0, 0.2, -0.9, -3.0, -1.0}, torch::kDouble)
                       .view({1, 3, 4});
  const auto f1 = torch::tensor({0, 1, 2}, torch::kInt64).view({1, 3});
  const auto r1 = rasterize(tri, f1, 32, 32);
  const Comparison c1 = compare(r1, tri, f1);
  CHECK(c1.id_mismatch == 0);
  CHECK(c1.covered > 20);
  // A triangle entirely behind the eye draws nothing.
  const auto r2 = rasterize(-tri.abs(), f1, 16, 16);
  CHECK((r2.triangle_id >= 0).sum().item<int64_t>() == 0);
}

TEST_CASE("rasterize edge cases: empty, degenerate, back-facing, off-screen", "[render][raster]") {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  SECTION("empty mesh and no vertices") {
    const auto r = rasterize(torch::zeros({2, 0, 4}, f64), torch::zeros({0, 3}, torch::kInt64), 5, 7);
    CHECK((r.triangle_id == -1).all().item<bool>());
    CHECK((r.bary == 0).all().item<bool>());
    CHECK((r.depth == 0).all().item<bool>());
  }
  const auto quad = torch::tensor({-0.8, -0.6, 0.1, 1.0, 0.7, -0.7, 0.1, 1.0, 0.6, 0.8, 0.1, 1.0}, f64).view({1, 3, 4});
  const auto front = torch::tensor({0, 1, 2}, torch::kInt64).view({1, 3});
  const auto back = torch::tensor({0, 2, 1}, torch::kInt64).view({1, 3});
  SECTION("back-facing triangles are drawn like front-facing ones") {
    const auto a = rasterize(quad, front, 20, 20), b = rasterize(quad, back, 20, 20);
    REQUIRE((a.triangle_id >= 0).sum().item<int64_t>() > 50);
    CHECK(torch::equal(a.triangle_id, b.triangle_id));
    CHECK(torch::allclose(a.depth, b.depth));
    // Barycentrics follow the face's own vertex order: b0 is the same vertex (0) in both.
    CHECK(torch::allclose(a.bary.select(3, 0), b.bary.select(3, 0)));
  }
  SECTION("degenerate triangles cover nothing") {
    const auto deg = torch::tensor({0, 0, 1, 0, 1, 1, 2, 2, 2}, torch::kInt64).view({3, 3});
    const auto r = rasterize(quad, deg, 20, 20);
    CHECK((r.triangle_id >= 0).sum().item<int64_t>() == 0);
    // Collinear vertices.
    const auto line = torch::tensor({-0.5, -0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0}, f64).view({1, 3, 4});
    CHECK((rasterize(line, front, 20, 20).triangle_id >= 0).sum().item<int64_t>() == 0);
  }
  SECTION("off-screen meshes draw nothing") {
    const auto off = quad + torch::tensor({3.0, 0.0, 0.0, 0.0}, f64);
    CHECK((rasterize(off, front, 20, 20).triangle_id >= 0).sum().item<int64_t>() == 0);
    const auto far = quad * torch::tensor({1.0, 1.0, 0.0, 1.0}, f64) + torch::tensor({0.0, 0.0, 1.5, 0.0}, f64);
    CHECK((rasterize(far, front, 20, 20).triangle_id >= 0).sum().item<int64_t>() == 0);
  }
  SECTION("z-buffer: the nearer triangle wins, equal depth goes to the lower id") {
    const auto two = torch::cat({quad, quad + torch::tensor({0.0, 0.0, -0.2, 0.0}, f64)}, 1);
    const auto faces = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64).view({2, 3});
    const auto r = rasterize(two, faces, 16, 16);
    const auto covered = r.triangle_id >= 0;
    CHECK((r.triangle_id.masked_select(covered) == 1).all().item<bool>());
    const auto same = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kInt64).view({2, 3});
    const auto r2 = rasterize(quad, same.flip(0), 16, 16);
    CHECK((r2.triangle_id.masked_select(r2.triangle_id >= 0) == 0).all().item<bool>());
  }
}

TEST_CASE("rasterize is deterministic across thread counts and batch elements are independent", "[render][raster]") {
  const auto pos = random_clip(3, 200, 41, true, torch::kFloat32);
  const auto faces = random_faces(200, 400, 42);
  const int threads = at::get_num_threads();
  set_num_threads(1);
  const auto a = rasterize(pos, faces, 61, 83);
  set_num_threads(2);
  const auto b = rasterize(pos, faces, 61, 83);
  set_num_threads(threads);
  CHECK(torch::equal(a.triangle_id, b.triangle_id));
  CHECK(torch::equal(a.bary, b.bary));
  CHECK(torch::equal(a.depth, b.depth));
  const auto single = rasterize(pos.narrow(0, 1, 1), faces, 61, 83);
  CHECK(torch::equal(single.triangle_id[0], a.triangle_id[1]));
  CHECK(torch::equal(single.bary[0], a.bary[1]));
  const auto rast = a.nvdiffrast_layout();
  REQUIRE(rast.sizes() == torch::IntArrayRef({3, 61, 83, 4}));
  CHECK(torch::equal(rast.select(3, 3).to(torch::kInt32) - 1, a.triangle_id));
}

TEST_CASE("rasterize rejects bad input with clear messages", "[render][raster]") {
  const auto pos = torch::zeros({1, 3, 4});
  const auto faces = torch::tensor({0, 1, 2}, torch::kInt32).view({1, 3});
  require_throws_with<ValueError>([&] { rasterize(torch::zeros({1, 3, 3}), faces, 8, 8); },
                                  {"pos_clip", "[*, *, 4]", "[1, 3, 3]"});
  require_throws_with<ValueError>([&] { rasterize(pos, torch::tensor({0, 1, 3}).view({1, 3}), 8, 8); },
                                  {"face indices", "[0, 3)", "[0, 3]"});
  require_throws_with<ValueError>([&] { rasterize(pos, faces.to(torch::kFloat), 8, 8); }, {"faces", "Float"});
  require_throws_with<ValueError>([&] { rasterize(pos, faces, 0, 8); }, {"image size"});
  auto bad = pos.clone();
  bad[0][1][2] = std::numeric_limits<float>::quiet_NaN();
  require_throws_with<ValueError>([&] { rasterize(bad, faces, 8, 8); }, {"pos_clip", "non-finite"});
  require_throws_with<ValueError>([&] { rasterize(pos.to(torch::kHalf), faces, 8, 8); }, {"Float or Double"});
}
