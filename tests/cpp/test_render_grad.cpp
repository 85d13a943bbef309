// Gradients of interpolate and antialias against central finite differences (float64, the raster recomputed at
// every perturbed point), float32 against float64, and optimisation through the ops.
#include <ATen/Parallel.h>

#include <functional>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/rasterize.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::render;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Central differences of scalar fn w.r.t. every entry of x (float64).
torch::Tensor numeric_grad(const std::function<double(const torch::Tensor&)>& fn, const torch::Tensor& x,
                           double eps = 1e-6) {
  auto g = torch::zeros_like(x);
  auto xc = x.detach().clone();
  auto flat = xc.view({-1});
  auto gf = g.view({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double v = flat[i].item<double>();
    flat[i] = v + eps;
    const double up = fn(xc);
    flat[i] = v - eps;
    const double down = fn(xc);
    flat[i] = v;
    gf[i] = (up - down) / (2 * eps);
  }
  return g;
}

// Asserts |analytic - numeric| <= tol * (1 + max |numeric|) and that the gradient is not trivially zero.
void require_grad_close(const torch::Tensor& analytic, const torch::Tensor& numeric, double tol) {
  REQUIRE(analytic.defined());
  const double scale = 1.0 + numeric.abs().max().item<double>();
  INFO("max |numeric| " << numeric.abs().max().item<double>());
  require_close(analytic, numeric, tol * scale);
  CHECK(numeric.abs().max().item<double>() > 1e-3);
}

// A small mesh in clip space: a fan of 6 triangles around a centre vertex (a hexagon whose outline is a silhouette)
// plus a separate triangle partly in front of it, jittered by the seed. 9 x 11 pixels.
struct SmallScene {
  torch::Tensor pos;    // B x V x 4
  torch::Tensor faces;  // F x 3
};

SmallScene small_scene(uint64_t seed, int64_t batch = 1) {
  torch::manual_seed(seed);
  std::vector<double> p = {0.05, 0.0, 0.2, 1.0};
  for (int k = 0; k < 6; ++k) {
    const double a = k * 3.14159265358979 / 3 + 0.3;
    p.insert(p.end(), {0.7 * std::cos(a), 0.7 * std::sin(a), 0.2 + 0.05 * k, 1.0});
  }
  p.insert(p.end(), {-0.9, -0.8, -0.3, 1.3, 0.2, -0.9, -0.3, 1.1, -0.3, 0.1, -0.2, 0.9});
  auto pos = torch::tensor(p, kF64).view({1, 10, 4}).repeat({batch, 1, 1});
  pos = pos + 0.04 * (torch::rand({batch, 10, 4}, kF64) - 0.5) * torch::tensor({1.0, 1.0, 0.2, 0.5}, kF64);
  std::vector<int64_t> f;
  for (int k = 0; k < 6; ++k) f.insert(f.end(), {0, 1 + k, 1 + (k + 1) % 6});
  f.insert(f.end(), {7, 8, 9});
  return {pos, torch::tensor(f, torch::kInt64).view({7, 3})};
}

constexpr int64_t kH = 9, kW = 11;

}  // namespace

TEST_CASE("interpolate: gradients w.r.t. attributes and clip positions match finite differences", "[render][grad]") {
  for (uint64_t seed : {1, 2, 3}) {
    const SmallScene s = small_scene(seed, 2);
    torch::manual_seed(seed + 100);
    const auto attr = torch::randn({2, 10, 3}, kF64);
    const auto weight = torch::randn({2, kH, kW, 3}, kF64);
    auto loss = [&](const torch::Tensor& a, const torch::Tensor& p) {
      return (interpolate(a, rasterize(p, s.faces, kH, kW)) * weight).sum();
    };
    const auto a = attr.clone().requires_grad_(true), p = s.pos.clone().requires_grad_(true);
    loss(a, p).backward();
    const auto num_attr = numeric_grad([&](const torch::Tensor& x) { return loss(x, s.pos).item<double>(); }, attr);
    const auto num_pos = numeric_grad([&](const torch::Tensor& x) { return loss(attr, x).item<double>(); }, s.pos);
    INFO("seed " << seed);
    require_grad_close(a.grad(), num_attr, 1e-7);
    require_grad_close(p.grad(), num_pos, 1e-6);
    CHECK(p.grad().select(2, 2).abs().max().item<double>() == 0.0);  // z only decides visibility
  }
}

TEST_CASE("interpolate: shared attributes (V x C), separate attribute faces, float32", "[render][grad]") {
  const SmallScene s = small_scene(4, 2);
  torch::manual_seed(5);
  // Per-corner attributes: 21 corners, attribute faces 0..20.
  const auto corner = torch::randn({21, 2}, kF64);
  const auto cfaces = torch::arange(21, torch::kInt64).view({7, 3});
  const auto weight = torch::randn({2, kH, kW, 2}, kF64);
  auto loss = [&](const torch::Tensor& a, const torch::Tensor& p) {
    return (interpolate(a, rasterize(p, s.faces, kH, kW), cfaces) * weight).sum();
  };
  const auto a = corner.clone().requires_grad_(true), p = s.pos.clone().requires_grad_(true);
  loss(a, p).backward();
  REQUIRE(a.grad().sizes() == corner.sizes());
  require_grad_close(a.grad(), numeric_grad([&](const torch::Tensor& x) { return loss(x, s.pos).item<double>(); },
                                            corner),
                     1e-7);
  require_grad_close(p.grad(), numeric_grad([&](const torch::Tensor& x) { return loss(corner, x).item<double>(); },
                                            s.pos),
                     1e-6);
  // float32 kernels agree with float64 ones.
  const auto a32 = corner.to(torch::kFloat32).requires_grad_(true);
  const auto p32 = s.pos.to(torch::kFloat32).requires_grad_(true);
  const auto out32 = interpolate(a32, rasterize(p32, s.faces, kH, kW), cfaces);
  (out32 * weight.to(torch::kFloat32)).sum().backward();
  require_close(a32.grad(), a.grad(), 1e-4);
  require_close(p32.grad(), p.grad(), 1e-3 * (1 + p.grad().abs().max().item<double>()));
}

TEST_CASE("interpolate: background is zero and values are the barycentric blend", "[render][grad]") {
  const SmallScene s = small_scene(6);
  const auto r = rasterize(s.pos, s.faces, kH, kW);
  const auto attr = torch::arange(30, kF64).view({1, 10, 3});
  const auto out = interpolate(attr, r);
  const auto bg = r.triangle_id < 0;
  REQUIRE(bg.any().item<bool>());
  CHECK((out.masked_select(bg.unsqueeze(-1)) == 0).all().item<bool>());
  // Constant attributes interpolate to themselves (barycentrics sum to one).
  const auto ones = interpolate(torch::ones({10, 1}, kF64), r).squeeze(-1);
  require_close(ones.masked_select(~bg), torch::ones({(~bg).sum().item<int64_t>()}, kF64), 1e-12);
  require_throws_with<ValueError>([&] { interpolate(torch::ones({10, 1}), r); }, {"attributes", "Double", "Float"});
  require_throws_with<ValueError>([&] { interpolate(torch::ones({3, 10, 1}, kF64), r); }, {"batch size 3"});
  require_throws_with<ValueError>([&] { interpolate(torch::ones({5, 1}, kF64), r); }, {"5 vertices"});
}

TEST_CASE("antialias: gradients w.r.t. colour and clip positions match finite differences", "[render][grad]") {
  int nonzero_pos_grads = 0;
  for (uint64_t seed : {11, 12, 13, 14}) {
    const SmallScene s = small_scene(seed, 2);
    torch::manual_seed(seed + 100);
    const auto color = torch::rand({2, kH, kW, 2}, kF64);
    const auto weight = torch::randn({2, kH, kW, 2}, kF64);
    auto loss = [&](const torch::Tensor& c, const torch::Tensor& p) {
      return (antialias(c, rasterize(p, s.faces, kH, kW)) * weight).sum();
    };
    const auto c = color.clone().requires_grad_(true), p = s.pos.clone().requires_grad_(true);
    loss(c, p).backward();
    INFO("seed " << seed);
    if (seed == 11)  // linear in the colour: one seed is enough
      require_grad_close(c.grad(),
                         numeric_grad([&](const torch::Tensor& x) { return loss(x, s.pos).item<double>(); }, color),
                         1e-7);
    const auto num_pos = numeric_grad([&](const torch::Tensor& x) { return loss(color, x).item<double>(); }, s.pos);
    require_close(p.grad(), num_pos, 1e-6 * (1 + num_pos.abs().max().item<double>()));
    nonzero_pos_grads += num_pos.abs().max().item<double>() > 1e-2;
  }
  CHECK(nonzero_pos_grads >= 3);  // silhouettes really moved the output
}

TEST_CASE("antialias of interpolated colours: the full chain matches finite differences", "[render][grad]") {
  const SmallScene s = small_scene(21);
  torch::manual_seed(22);
  const auto attr = torch::rand({1, 10, 3}, kF64);
  const auto weight = torch::randn({1, kH, kW, 3}, kF64);
  const auto topo = edge_topology(s.faces, 10);
  auto loss = [&](const torch::Tensor& p) {
    const auto r = rasterize(p, s.faces, kH, kW);
    return (antialias(interpolate(attr, r), r, topo) * weight).sum();
  };
  const auto p = s.pos.clone().requires_grad_(true);
  loss(p).backward();
  require_grad_close(p.grad(), numeric_grad([&](const torch::Tensor& x) { return loss(x).item<double>(); }, s.pos),
                     1e-6);
}

TEST_CASE("antialias: blends only across silhouettes, leaves interiors and constant images alone", "[render][grad]") {
  const SmallScene s = small_scene(31);
  const auto r = rasterize(s.pos, s.faces, 40, 44);
  // Constant colour: every blend is between equal colours.
  const auto flat = torch::full({1, 40, 44, 1}, 0.3, kF64);
  require_close(antialias(flat, r), flat, 1e-15);
  // Coverage mask: antialiasing changes pixels only next to the outline, and keeps values in [0, 1].
  const auto cov = r.coverage().unsqueeze(-1).to(torch::kFloat64);
  const auto aa = antialias(cov, r);
  CHECK(aa.min().item<double>() >= 0.0);
  CHECK(aa.max().item<double>() <= 1.0);
  const auto changed = (aa - cov).abs() > 1e-12;
  REQUIRE(changed.sum().item<int64_t>() > 10);
  // Each changed pixel has a neighbour of the other coverage.
  const auto c = cov.squeeze(-1)[0];
  const auto ch = changed.squeeze(-1)[0];
  for (int64_t y = 0; y < 40; ++y)
    for (int64_t x = 0; x < 44; ++x) {
      if (!ch[y][x].item<bool>()) continue;
      bool boundary = false;
      for (auto [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
        const int64_t xx = x + dx, yy = y + dy;
        if (xx >= 0 && yy >= 0 && xx < 44 && yy < 40 && c[yy][xx].item<double>() != c[y][x].item<double>())
          boundary = true;
      }
      CHECK(boundary);
    }
  // The interior edges of the fan are not silhouettes: with a colour that differs per triangle only there...
  // ...the coverage image of the fan alone must be unchanged away from its outline, which the loop above checks.
}

TEST_CASE("edge_topology: opposite vertices of shared edges, -1 on boundaries", "[render][grad]") {
  // Two triangles sharing edge (1, 2): 0-1-2 and 2-1-3.
  const auto faces = torch::tensor({0, 1, 2, 2, 1, 3}, torch::kInt64).view({2, 3});
  const auto t = edge_topology(faces, 4);
  // Face 0, edge 0 (vertices 1 -> 2, opposite vertex 0): the other face's opposite vertex is 3.
  CHECK(t[0][0].item<int>() == 3);
  CHECK(t[0][1].item<int>() == -1);
  CHECK(t[0][2].item<int>() == -1);
  // Face 1, edge 2 (vertices 2 -> 1, opposite vertex 3): across it lies vertex 0.
  CHECK(t[1][2].item<int>() == 0);
  CHECK(t[1][0].item<int>() == -1);
  // Three faces on one edge: non-manifold, all -1.
  const auto fan = torch::tensor({0, 1, 2, 1, 0, 3, 0, 1, 4}, torch::kInt64).view({3, 3});
  CHECK((edge_topology(fan, 5).select(1, 2) == -1).all().item<bool>());
}

TEST_CASE("gradients are reproducible for a thread count and close across thread counts", "[render][grad]") {
  const SmallScene s = small_scene(41, 2);
  const auto attr = torch::rand({2, 10, 3}, kF64);
  auto grads = [&] {
    const auto p = s.pos.clone().requires_grad_(true);
    const auto r = rasterize(p, s.faces, 33, 35);
    antialias(interpolate(attr, r), r).pow(2).sum().backward();
    return p.grad();
  };
  const int threads = at::get_num_threads();
  set_num_threads(2);
  const auto a = grads(), b = grads();
  set_num_threads(1);
  const auto c = grads();
  set_num_threads(threads);
  CHECK(torch::equal(a, b));
  require_close(a, c, 1e-12);
}

TEST_CASE("optimisation: a translated mesh moves back onto the target silhouette and UV image", "[render][grad]") {
  // A disc fan in clip space at w = 1; optimise a 2D offset of all vertices.
  const int64_t S = 32;
  std::vector<double> p = {0.0, 0.0, 0.0, 1.0};
  std::vector<int64_t> f;
  const int n = 16;
  for (int k = 0; k < n; ++k) {
    const double a = 2 * 3.14159265358979 * k / n;
    p.insert(p.end(), {0.45 * std::cos(a), 0.45 * std::sin(a), 0.0, 1.0});
    f.insert(f.end(), {0, 1 + k, 1 + (k + 1) % n});
  }
  const auto base = torch::tensor(p, torch::kFloat32).view({1, n + 1, 4});
  const auto faces = torch::tensor(f, torch::kInt64).view({n, 3});
  const auto topo = edge_topology(faces, n + 1);
  const auto uv = base.narrow(2, 0, 2).squeeze(0) * 0.5 + 0.5;  // V x 2 attribute
  auto shifted = [&](const torch::Tensor& offset) {
    return base + torch::cat({offset, torch::zeros({2}, torch::kFloat32)}).view({1, 1, 4});
  };
  const auto target_offset = torch::tensor({0.0f, 0.0f});
  const auto target_r = rasterize(shifted(target_offset), faces, S, S);
  const auto target_mask = antialias(target_r.coverage().unsqueeze(-1).to(torch::kFloat32), target_r, topo);
  const auto target_uv = interpolate(uv, target_r);

  SECTION("silhouette only (antialias gradients)") {
    auto offset = torch::tensor({0.2f, -0.15f}).requires_grad_(true);
    torch::optim::Adam opt({offset}, torch::optim::AdamOptions(0.02));
    for (int it = 0; it < 60; ++it) {
      opt.zero_grad();
      const auto r = rasterize(shifted(offset), faces, S, S);
      const auto mask = antialias(r.coverage().unsqueeze(-1).to(torch::kFloat32), r, topo);
      const auto loss = (mask - target_mask).pow(2).mean();
      loss.backward();
      opt.step();
    }
    INFO("final offset " << offset);
    CHECK(offset.detach().abs().max().item<double>() < 0.02);  // < 1/3 pixel at 32 px (1 px = 0.0625 NDC)
  }
  SECTION("UV image only (barycentric gradients)") {
    auto offset = torch::tensor({0.1f, 0.12f}).requires_grad_(true);
    torch::optim::Adam opt({offset}, torch::optim::AdamOptions(0.01));
    for (int it = 0; it < 60; ++it) {
      opt.zero_grad();
      const auto r = rasterize(shifted(offset), faces, S, S);
      const auto both = r.coverage().unsqueeze(-1) & target_r.coverage().unsqueeze(-1);
      const auto loss = ((interpolate(uv, r) - target_uv) * both).abs().mean();
      loss.backward();
      opt.step();
    }
    INFO("final offset " << offset);
    CHECK(offset.detach().abs().max().item<double>() < 0.02);
  }
}
