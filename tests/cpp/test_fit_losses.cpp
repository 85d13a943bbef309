#include "pixel3dmm/fit/losses.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::fit;
using pixel3dmm::test::require_close;

namespace {

/// Brute-force nearest predicted-UV pixel for each vertex UV (the reference the grid search must equal).
std::pair<torch::Tensor, torch::Tensor> brute_force_nn(const torch::Tensor& pred_uv, const torch::Tensor& vertex_uv) {
  const auto points = pred_uv.permute({0, 2, 3, 1}).reshape({pred_uv.size(0), -1, 2}).to(torch::kDouble);
  const auto q = vertex_uv.to(torch::kDouble);
  const auto d2 = (q.unsqueeze(0).unsqueeze(2) - points.unsqueeze(1)).pow(2).sum(-1);  // B x N x M
  const auto [values, index] = d2.min(-1);
  return {index, values};
}

}  // namespace

TEST_CASE("uv_correspondences equal brute-force nearest neighbours", "[fit][losses]") {
  torch::manual_seed(1);
  const int64_t h = 24, w = 24;
  auto pred = torch::rand({2, 2, h, w});
  pred.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(0, 5)}, 0.0);  // masked-out pixels stay (0,0)
  const auto verts = torch::rand({300, 2}) * 1.2 - 0.1;  // some queries outside the points' bounding box
  const auto corr = uv_correspondences(pred, verts);
  const auto [index, dist2] = brute_force_nn(pred, verts);
  require_close(corr.uv_dist2.to(torch::kDouble), dist2, 1e-6);
  const auto x = index.remainder(w).to(torch::kFloat), y = index.div(h, "floor").to(torch::kFloat);
  // Ties (the zeroed pixels) can pick different members; their distances already matched above.
  const auto unique = dist2 > 1e-12;
  const auto same = ((corr.target_px.select(-1, 0) == x) & (corr.target_px.select(-1, 1) == y)) | ~unique;
  REQUIRE(same.all().item<bool>());
}

TEST_CASE("uv_vertex_loss: value, gates and gradient direction", "[fit][losses]") {
  UVCorrespondences corr{torch::tensor({{{10.f, 10.f}}}), torch::tensor({{1e-6f}})};
  auto proj = torch::tensor({{{8.f, 10.f}}}, torch::requires_grad());
  const auto loss = uv_vertex_loss(proj, corr, {}, 100);
  // D = (2, 0) px / 100 -> mean over 2 entries of squares = 2e-4, times 100.
  REQUIRE(loss.item<double>() == Approx(0.02).epsilon(1e-5));
  loss.backward();
  REQUIRE(proj.grad()[0][0][0].item<float>() < 0);  // moving right (toward the target) lowers the loss
  REQUIRE(proj.grad()[0][0][1].item<float>() == 0);

  SECTION("pixel-distance outliers are rejected") {
    REQUIRE(uv_vertex_loss(torch::tensor({{{40.f, 10.f}}}), corr, {}, 100).item<double>() == 0.0);
    REQUIRE(uv_vertex_loss(torch::tensor({{{25.f, 10.f}}}), corr, {}, 100).item<double>() > 0.0);
  }
  SECTION("UV-distance gate and visibility") {
    UVCorrespondences far{corr.target_px, torch::tensor({{1e-4f}})};
    REQUIRE(uv_vertex_loss(torch::tensor({{{8.f, 10.f}}}), far, {}, 100).item<double>() == 0.0);
    REQUIRE(uv_vertex_loss(torch::tensor({{{8.f, 10.f}}}), corr, torch::tensor({{false}}), 100).item<double>() == 0.0);
  }
  SECTION("L1 variant") {
    UVVertexLossOptions l1;
    l1.l2 = false;
    REQUIRE(uv_vertex_loss(torch::tensor({{{8.f, 10.f}}}), corr, {}, 100, l1).item<double>() == Approx(0.01));
  }
}

TEST_CASE("uv_pixel_loss counts only masked pixels", "[fit][losses]") {
  const auto pred = torch::full({1, 2, 2, 2}, 0.5);
  auto rendered = torch::full({1, 2, 2, 2}, 0.5);
  rendered.index_put_({0, 0, 0, 0}, 0.7);  // error 0.2 on one entry, inside the mask
  rendered.index_put_({0, 1, 1, 1}, 0.9);  // error outside the mask
  const auto mask = torch::tensor({{{1.f, 0.f}, {1.f, 0.f}}});
  REQUIRE(uv_pixel_loss(pred, rendered, mask).item<double>() == Approx(0.04 / 8 * 100));
}

TEST_CASE("uv_pixel_loss with a gate drops outlier pixels; without one (official) it keeps them", "[fit][losses]") {
  const auto pred = torch::full({1, 2, 2, 2}, 0.5);
  auto rendered = torch::full({1, 2, 2, 2}, 0.5);
  rendered.index_put_({0, 0, 0, 0}, 0.52);  // |du| + |dv| = 0.02: an inlier
  rendered.index_put_({0, 0, 1, 1}, 0.9);   // |du| + |dv| = 0.4: an outlier
  const auto mask = torch::ones({1, 2, 2});
  const double inlier = 0.02 * 0.02 / 8 * 100, outlier = 0.4 * 0.4 / 8 * 100;
  REQUIRE(uv_pixel_loss(pred, rendered, mask).item<double>() == Approx(inlier + outlier));
  REQUIRE(uv_pixel_loss(pred, rendered, mask, true, 0.1).item<double>() == Approx(inlier));
  // The gate decides per pixel, on both channels together.
  rendered.index_put_({0, 1, 0, 0}, 0.38);  // now |du| + |dv| = 0.02 + 0.12 at (0, 0): rejected too
  REQUIRE(uv_pixel_loss(pred, rendered, mask, true, 0.1).item<double>() == Approx(0.0).margin(1e-12));
}

TEST_CASE("normal_loss rejects outliers and the dilated eye region", "[fit][losses]") {
  const int64_t s = 32;
  const auto pred = torch::zeros({1, 3, s, s});
  auto rendered = torch::zeros({1, 3, s, s});
  rendered.index_put_({0, torch::indexing::Slice(), 2, 2}, 0.1);    // inlier: counted
  rendered.index_put_({0, torch::indexing::Slice(), 2, 20}, 0.9);   // outlier (mean |l| > 0.33): ignored
  rendered.index_put_({0, torch::indexing::Slice(), 16, 22}, 0.1);  // 6 px from the eye: excluded
  rendered.index_put_({0, torch::indexing::Slice(), 16, 23}, 0.1);  // 7 px from the eye: counted
  auto eye = torch::zeros({1, s, s});
  eye.index_put_({0, 16, 16}, 1.0);
  const auto mask = torch::ones({1, s, s});
  const double per_pixel = 3 * 0.1 / (3.0 * s * s);
  REQUIRE(normal_loss(pred, rendered, mask, eye).item<double>() == Approx(2 * per_pixel).epsilon(1e-4));
  REQUIRE(normal_loss(pred, rendered, mask, {}).item<double>() == Approx(3 * per_pixel).epsilon(1e-4));
  const auto excl = eye_exclusion_mask(eye, 13);
  REQUIRE(excl[0][16][22].item<float>() == 0.f);
  REQUIRE(excl[0][16][23].item<float>() == 1.f);
  REQUIRE(excl[0][10][10].item<float>() == 0.f);
}

TEST_CASE("eye_exclusion_mask is 1 - a k x k square dilation, at the borders too", "[fit][losses]") {
  torch::manual_seed(3);
  auto eye = (torch::rand({2, 23, 31}) > 0.97).to(torch::kFloat);
  eye.index_put_({1, 0, 30}, 1.0f);  // a corner pixel
  for (const int64_t k : {1, 5, 13}) {
    const auto excl = eye_exclusion_mask(eye, k);
    REQUIRE(excl.sizes() == eye.sizes());
    auto expect = torch::ones_like(eye);  // brute force: excluded when any eye pixel lies within the square
    const auto a = eye.accessor<float, 3>();
    auto e = expect.accessor<float, 3>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t y = 0; y < 23; ++y)
        for (int64_t x = 0; x < 31; ++x)
          for (int64_t dy = -k / 2; dy <= k / 2; ++dy)
            for (int64_t dx = -k / 2; dx <= k / 2; ++dx)
              if (y + dy >= 0 && y + dy < 23 && x + dx >= 0 && x + dx < 31 && a[b][y + dy][x + dx] > 0) e[b][y][x] = 0;
    INFO("k = " << k);
    REQUIRE(torch::equal(excl, expect));
    REQUIRE(expect.sum().item<float>() < eye.numel());
  }
}

TEST_CASE("silhouette_loss only sees valid background", "[fit][losses]") {
  const auto fg = torch::tensor({{{0.f, 1.f}, {0.f, 0.f}}});
  const auto rendered = torch::tensor({{{1.f, 1.f}, {0.5f, 0.f}}});
  const auto valid_bg = torch::tensor({{{1.f, 0.f}, {0.f, 1.f}}});
  REQUIRE(silhouette_loss(fg, rendered, valid_bg).item<double>() == Approx(1.0 / 4));
}

TEST_CASE("landmark and closure losses", "[fit][losses]") {
  auto pred = torch::zeros({1, 68, 2});
  auto target = torch::zeros({1, 68, 2});
  target.index_put_({0, 37, 1}, 10.0);  // image: upper lid 37 is 10 px below its pair 41 -> eye more open
  REQUIRE(landmark_loss(pred, target, {}, 100).item<double>() == Approx(0.01 / (68 * 2)));
  auto mask = torch::ones({1, 68});
  mask.index_put_({0, 37}, 0.0);
  REQUIRE(landmark_loss(pred, target, mask, 100).item<double>() == 0.0);
  REQUIRE(eyelid_closure_loss(pred, target, {}, 100).item<double>() == Approx(0.01 / 8));
  REQUIRE(eyelid_closure_loss(pred, target, mask, 100).item<double>() == 0.0);
  REQUIRE(mouth_closure_loss(pred, target, {}, 100).item<double>() == 0.0);
}

TEST_CASE("regularisers: sum_squares and mirror symmetry", "[fit][losses]") {
  REQUIRE(sum_squares(torch::tensor({{1.f, 2.f}, {0.f, 2.f}})).item<double>() == Approx((5.0 + 4.0) / 2));
  REQUIRE(sum_squares(torch::tensor({{1.f, 2.f}}), torch::tensor({{1.f, 0.f}})).item<double>() == Approx(4.0));
  // Two mirror-partner vertices (0 <-> 1) and one self-mirrored vertex on the symmetry plane.
  auto v = torch::tensor({{{0.1f, 0.2f, 0.3f}, {-0.1f, 0.2f, 0.3f}, {0.f, 0.5f, 0.f}}});
  const auto idx = torch::tensor({1, 0, 2}, torch::kLong);
  REQUIRE(mirror_loss(v, idx).item<double>() == Approx(0.0).margin(1e-12));
  v.index_put_({0, 1, 1}, 0.3);  // break the symmetry by 0.1 in y
  REQUIRE(mirror_loss(v, idx).item<double>() == Approx(2 * 0.01 / 3).epsilon(1e-4));
}
