// Camera conventions: the official formulas of spec official-fitting 2.2-2.5, the half-pixel offset between the
// analytic projection and the raster, OpenCV conversion.
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/rasterize.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::render;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;

namespace {

// Random head-sized points in front of the official camera (world z around 0, camera at z = +1).
torch::Tensor random_points(int64_t b, int64_t n, uint64_t seed, torch::ScalarType dtype = torch::kFloat64) {
  torch::manual_seed(seed);
  return (torch::rand({b, n, 3}, torch::TensorOptions().dtype(dtype)) - 0.5) * 0.3;
}

Camera random_camera(uint64_t seed, int64_t w, int64_t h, int64_t b = 2) {
  torch::manual_seed(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  Camera c;
  c.focal = 3.0 + torch::rand({b, 2}, f64);
  c.principal_point = (torch::rand({b, 2}, f64) - 0.5) * 0.2;
  // A small random rotation (Cayley transform of a random skew matrix) and translation keeping points in front.
  const auto k = (torch::rand({b, 3}, f64) - 0.5) * 0.4;
  auto skew = torch::zeros({b, 3, 3}, f64);
  skew.select(1, 0).select(1, 1) = -k.select(1, 2);
  skew.select(1, 0).select(1, 2) = k.select(1, 1);
  skew.select(1, 1).select(1, 0) = k.select(1, 2);
  skew.select(1, 1).select(1, 2) = -k.select(1, 0);
  skew.select(1, 2).select(1, 0) = -k.select(1, 1);
  skew.select(1, 2).select(1, 1) = k.select(1, 0);
  const auto eye = torch::eye(3, f64).expand({b, 3, 3});
  c.rotation = torch::matmul(torch::inverse(eye - skew), eye + skew);
  c.translation = torch::tensor({0.0, 0.0, -1.2}, f64).expand({b, 3}) + (torch::rand({b, 3}, f64) - 0.5) * 0.1;
  c.width = w;
  c.height = h;
  return c;
}

}  // namespace

TEST_CASE("official camera: intrinsics and the clip matrix of spec 2.2 and 2.5", "[render][camera]") {
  const Camera c = Camera::official(256);
  const auto k = c.intrinsics()[0];
  CHECK(k[0][0].item<double>() == Approx(1000.0));
  CHECK(k[1][1].item<double>() == Approx(1000.0));
  CHECK(k[0][2].item<double>() == Approx(128.5));
  CHECK(k[1][2].item<double>() == Approx(128.5));
  const auto p = c.projection_matrix()[0].to(torch::kDouble);
  const double S = 256, fx = 1000, cx = 128.5, n = 0.1, f = 5.0;
  const auto expected = torch::tensor({2 * fx / S, 0.0, (S - 2 * cx) / S, 0.0,  //
                                       0.0, -2 * fx / S, (S - 2 * cx) / S, 0.0,  //
                                       0.0, 0.0, -(f + n) / (f - n), -2 * f * n / (f - n),  //
                                       0.0, 0.0, -1.0, 0.0},
                                      torch::kDouble)
                            .view({4, 4});
  require_close(p, expected, 1e-5);
  // The camera sits at world (0, 0, 1) looking down -z: the origin is 1 m in front.
  const auto origin = torch::zeros({1, 1, 3});
  CHECK(c.world_to_camera(origin)[0][0][2].item<double>() == Approx(-1.0));
}

TEST_CASE("analytic projection = raster position + (-0.5, +0.5) px, and matches the spec formulas",
          "[render][camera]") {
  for (auto [w, h] : {std::pair<int64_t, int64_t>{256, 256}, {160, 96}}) {
    const Camera c = random_camera(7, w, h);
    const auto pts = random_points(2, 50, 8);
    const auto analytic = c.project(pts);
    const auto raster = c.project_raster(pts);
    require_close(analytic.narrow(2, 0, 1) - raster.narrow(2, 0, 1), torch::full({2, 50, 1}, -0.5, torch::kDouble),
                  1e-9);
    require_close(analytic.narrow(2, 1, 1) - raster.narrow(2, 1, 1), torch::full({2, 50, 1}, 0.5, torch::kDouble),
                  1e-9);
    // Spec 2.4 by hand: u = fx x/d + cx - 1, v = cy - fy y/d, third = camera z.
    const auto pc = torch::matmul(pts, c.rotation.transpose(1, 2)) + c.translation.unsqueeze(1);
    const auto d = -pc.select(2, 2);
    const auto fx = (c.focal.select(1, 0) * w).view({2, 1}), fy = (c.focal.select(1, 1) * w).view({2, 1});
    const auto cx = ((w / 2.0 + 0.5) * (1 + c.principal_point.select(1, 0))).view({2, 1});
    const auto cy = ((h / 2.0 + 0.5) * (1 + c.principal_point.select(1, 1))).view({2, 1});
    require_close(analytic.select(2, 0), fx * pc.select(2, 0) / d + cx - 1, 1e-9);
    require_close(analytic.select(2, 1), cy - fy * pc.select(2, 1) / d, 1e-9);
    require_close(analytic.select(2, 2), pc.select(2, 2), 1e-12);
    // The raster position is where NDC lands on nvdiffrast's pixel grid: col = ((X + 1) W - 1) / 2.
    const auto clip = c.to_clip(pts);
    const auto X = clip.select(2, 0) / clip.select(2, 3), Y = clip.select(2, 1) / clip.select(2, 3);
    require_close(raster.select(2, 0), ((X + 1) * w - 1) / 2, 1e-9);
    require_close(raster.select(2, 1), ((Y + 1) * h - 1) / 2, 1e-9);
    require_close(clip, torch::matmul(torch::cat({pts, torch::ones({2, 50, 1}, torch::kDouble)}, 2),
                                      c.mvp().transpose(1, 2)),
                  1e-12);
  }
}

TEST_CASE("the rasteriser draws a surface point at Camera::project_raster", "[render][camera]") {
  // Interpolating world positions at a pixel gives the surface point seen through that pixel's centre; its raster
  // projection must be the pixel's integer coordinates.
  const Camera c = random_camera(3, 40, 30, 1);
  const auto verts = torch::tensor({-0.3, -0.25, 0.05, 0.35, -0.2, -0.1, 0.0, 0.3, 0.02}, torch::kDouble).view({1, 3, 3});
  const auto faces = torch::tensor({0, 1, 2}, torch::kInt64).view({1, 3});
  const auto r = rasterize(c.to_clip(verts), faces, c.height, c.width);
  const auto world = interpolate(verts, r);  // 1 x H x W x 3
  const auto ids = r.triangle_id[0];
  int checked = 0;
  for (int64_t row = 0; row < c.height; row += 3)
    for (int64_t col = 0; col < c.width; col += 3) {
      if (ids[row][col].item<int>() < 0) continue;
      const auto p = c.project_raster(world[0][row][col].view({1, 1, 3}))[0][0];
      CHECK(p[0].item<double>() == Approx(static_cast<double>(col)).margin(1e-6));
      CHECK(p[1].item<double>() == Approx(static_cast<double>(row)).margin(1e-6));
      ++checked;
    }
  REQUIRE(checked > 10);
}

TEST_CASE("OpenCV conversion: round trips and the OpenCV projection equals the raster position", "[render][camera]") {
  const Camera c = random_camera(11, 200, 120);
  const OpenCVCamera cv = c.to_opencv();
  const Camera back = Camera::from_opencv(cv, c.width, c.height);
  require_close(back.focal, c.focal, 1e-12);
  require_close(back.principal_point, c.principal_point, 1e-12);
  require_close(back.rotation, c.rotation, 1e-12);
  require_close(back.translation, c.translation, 1e-12);
  const OpenCVCamera again = back.to_opencv();
  require_close(again.K, cv.K, 1e-9);
  require_close(again.R, cv.R, 1e-12);
  require_close(again.t, cv.t, 1e-12);

  const auto pts = random_points(2, 20, 12);
  const auto raster = c.project_raster(pts);
  // OpenCV's pinhole model by hand (no distortion): x = K (R p + t), pixel = (x0 / x2, x1 / x2).
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 20; ++i) {
      double q[3], x[3];
      for (int r = 0; r < 3; ++r) {
        q[r] = cv.t[b][r].item<double>();
        for (int k = 0; k < 3; ++k) q[r] += cv.R[b][r][k].item<double>() * pts[b][i][k].item<double>();
      }
      REQUIRE(q[2] > 0);  // in front of an OpenCV camera means z > 0
      for (int r = 0; r < 3; ++r) {
        x[r] = 0;
        for (int k = 0; k < 3; ++k) x[r] += cv.K[b][r][k].item<double>() * q[k];
      }
      CHECK(x[0] / x[2] == Approx(raster[b][i][0].item<double>()).margin(1e-7));
      CHECK(x[1] / x[2] == Approx(raster[b][i][1].item<double>()).margin(1e-7));
    }
  // The official camera's optical axis: OpenCV principal point (S/2, S/2), half a pixel off the image centre.
  const auto k0 = Camera::official(256).to_opencv().K[0];
  CHECK(k0[0][2].item<double>() == Approx(128.0));
  CHECK(k0[1][2].item<double>() == Approx(128.0));
}

TEST_CASE("camera gradients reach focal, principal point and pose", "[render][camera]") {
  Camera c = random_camera(5, 64, 64);
  c.focal.requires_grad_(true);
  c.principal_point.requires_grad_(true);
  c.translation.requires_grad_(true);
  const auto pts = random_points(2, 10, 6);
  (c.to_clip(pts).pow(2).sum() + c.project(pts).pow(2).sum()).backward();
  for (const auto* t : {&c.focal, &c.principal_point, &c.translation}) {
    REQUIRE(t->grad().defined());
    CHECK(t->grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("camera validation names the field and both shapes", "[render][camera]") {
  Camera c = Camera::official(64);
  c.focal = torch::ones({1, 3});
  require_throws_with<ValueError>([&] { c.validate(); }, {"Camera.focal", "[1, 3]"});
  c = Camera::official(64);
  c.rotation = torch::eye(3);
  require_throws_with<ValueError>([&] { c.mvp(); }, {"Camera.rotation", "expected shape [*, 3, 3]", "found [3, 3]"});
  c = Camera::official(64);
  c.translation = torch::zeros({3, 3});
  c.focal = torch::ones({2, 1});
  require_throws_with<ValueError>([&] { c.validate(); }, {"batch size", "does not broadcast"});
  c = Camera::official(64);
  c.znear = 6;
  require_throws_with<ValueError>([&] { c.validate(); }, {"znear"});
  require_throws_with<ValueError>([&] { Camera::official(64).project(torch::zeros({1, 4, 2})); },
                                  {"points", "[*, *, 3]", "[1, 4, 2]"});
  OpenCVCamera cv = Camera::official(64).to_opencv();
  cv.K[0][0][1] = 3.0;
  require_throws_with<ValueError>([&] { Camera::from_opencv(cv, 64, 64); }, {"skew"});
}
