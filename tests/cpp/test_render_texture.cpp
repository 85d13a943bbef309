// sample_texture: values and coordinate gradients equal grid_sample (border padding, align_corners=false) times the
// coverage, which it replaces in MeshRenderer; gradients match central finite differences; bad input is refused.
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/render/texture.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::render;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;

namespace {

namespace F = torch::nn::functional;

// The formulation sample_texture replaces: texel coordinates normalised for grid_sample, background zeroed.
torch::Tensor reference(const torch::Tensor& texture, const torch::Tensor& coords, const torch::Tensor& ids,
                        std::array<double, 2> scale, std::array<double, 2> offset) {
  const int64_t B = coords.size(0), H = coords.size(1), W = coords.size(2), C = texture.size(0);
  const int64_t Ht = texture.size(1), Wt = texture.size(2);
  const auto x = coords.select(3, 0) * scale[0] + offset[0], y = coords.select(3, 1) * scale[1] + offset[1];
  const auto grid = torch::stack({(2 * x + 1) / Wt - 1, (2 * y + 1) / Ht - 1}, 3).reshape({1, B * H, W, 2});
  const auto s = F::grid_sample(texture.to(coords.scalar_type()).unsqueeze(0), grid,
                                F::GridSampleFuncOptions()
                                    .mode(torch::kBilinear)
                                    .padding_mode(torch::kBorder)
                                    .align_corners(false));  // 1 x C x (B H) x W
  const auto covered = (ids >= 0).unsqueeze(-1).to(coords.scalar_type());
  return s.squeeze(0).reshape({C, B, H, W}).permute({1, 2, 3, 0}) * covered;
}

struct Case {
  torch::Tensor texture, coords, ids;
};

// Coordinates spread over the texture and 2 texels beyond each border (the clamped band), a quarter background.
Case random_case(uint64_t seed, torch::ScalarType dtype, int64_t C = 3) {
  torch::manual_seed(seed);
  Case c;
  c.texture = (torch::rand({C, 6, 9}) > 0.5).to(torch::kFloat) + 0.1 * torch::rand({C, 6, 9});
  c.coords = torch::rand({2, 5, 7, 2}, torch::TensorOptions().dtype(dtype)) * 1.4 - 0.2;
  c.ids = torch::where(torch::rand({2, 5, 7}) < 0.25, torch::full({2, 5, 7}, -1), torch::full({2, 5, 7}, 3))
              .to(torch::kInt32);
  return c;
}

constexpr std::array<double, 2> kScale{9.0, -6.0}, kOffset{-0.5, 5.5};  // coords in [0, 1] cover the texture

}  // namespace

TEST_CASE("sample_texture equals grid_sample (border, align_corners=false) times coverage, values and gradients",
          "[render][grad]") {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (uint64_t seed : {1, 2, 3}) {
      const Case c = random_case(seed, dtype);
      const auto weight = torch::randn({2, 5, 7, 3}, torch::TensorOptions().dtype(dtype));
      const auto a = c.coords.clone().requires_grad_(true), b = c.coords.clone().requires_grad_(true);
      const auto ours = sample_texture(c.texture, a, c.ids, kScale, kOffset);
      const auto ref = reference(c.texture, b, c.ids, kScale, kOffset);
      (ours * weight).sum().backward();
      (ref * weight).sum().backward();
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-5;
      INFO("seed " << seed << " dtype " << dtype);
      require_close(ours, ref, tol);
      require_close(a.grad(), b.grad(), tol * 10);
      CHECK(ours.abs().max().item<double>() > 0.5);
      CHECK(a.grad().abs().max().item<double>() > 0.5);
      // Background pixels: 0 and no gradient; clamped coordinates: no gradient along the clamped axis.
      const auto bg = (c.ids < 0);
      CHECK(ours.masked_select(bg.unsqueeze(-1).expand_as(ours)).abs().max().item<double>() == 0.0);
      CHECK(a.grad().masked_select(bg.unsqueeze(-1).expand_as(a.grad())).abs().max().item<double>() == 0.0);
      const auto outside_x = (c.coords.select(3, 0) < 0.5 / 9.0) & ~bg;  // x < 0
      REQUIRE(outside_x.any().item<bool>());
      CHECK(a.grad().select(3, 0).masked_select(outside_x).abs().max().item<double>() == 0.0);
    }
  }
}

TEST_CASE("sample_texture: coordinate gradients match finite differences (float64)", "[render][grad]") {
  torch::manual_seed(7);
  const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto texture = torch::rand({2, 6, 9}, kF64);
  // Inside the texture, away from texel centre lines (where bilinear interpolation has a kink).
  auto coords = torch::rand({1, 4, 5, 2}, kF64) * 0.8 + 0.1;
  const auto ids = torch::zeros({1, 4, 5}, torch::kInt32);
  const auto weight = torch::randn({1, 4, 5, 2}, kF64);
  auto loss = [&](const torch::Tensor& x) { return (sample_texture(texture, x, ids, kScale, kOffset) * weight).sum(); };
  const auto x = coords.clone().requires_grad_(true);
  loss(x).backward();
  auto numeric = torch::zeros_like(coords);
  const double eps = 1e-7;
  for (int64_t i = 0; i < coords.numel(); ++i) {
    auto up = coords.clone(), down = coords.clone();
    up.view({-1})[i] += eps;
    down.view({-1})[i] -= eps;
    numeric.view({-1})[i] = (loss(up).item<double>() - loss(down).item<double>()) / (2 * eps);
  }
  require_close(x.grad(), numeric, 1e-6 * (1.0 + numeric.abs().max().item<double>()));
  CHECK(numeric.abs().max().item<double>() > 1e-2);
}

TEST_CASE("sample_texture: NaN coordinates give NaN, bad input is refused", "[render][grad]") {
  Case c = random_case(4, torch::kFloat32, 1);
  c.ids.fill_(0);
  c.coords[0][1][2][0] = std::numeric_limits<float>::quiet_NaN();
  const auto out = sample_texture(c.texture, c.coords, c.ids, kScale, kOffset);
  CHECK(std::isnan(out[0][1][2][0].item<float>()));
  CHECK(torch::isfinite(out).sum().item<int64_t>() == out.numel() - 1);
  require_throws_with<Error>([&] { sample_texture(c.texture, c.coords.narrow(3, 0, 1), c.ids, kScale, kOffset); },
                             {"sample_texture: coords", "[2, 5, 7, 1]"});
  require_throws_with<Error>([&] { sample_texture(c.texture, c.coords, c.ids.to(torch::kLong), kScale, kOffset); },
                             {"sample_texture: triangle_id"});
  require_throws_with<Error>([&] { sample_texture(c.texture[0], c.coords, c.ids, kScale, kOffset); },
                             {"sample_texture: texture"});
}
