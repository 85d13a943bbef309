#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/synthetic_target.h"
#include "pixel3dmm/flame/synthetic.h"
#include "pixel3dmm/flame/rotation.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::fit;

namespace {

/// A small synthetic FLAME-layout model and a short schedule, so that a fit takes a few seconds.
Fitter small_fitter(int iters = 80, int camera_steps = 80) {
  flame::FlameModel model = flame::synthetic_flame(flame::SyntheticOptions().vertices(1200).n_shape(20).n_expr(10));
  FitConfig config;
  config.image_size = 96;
  config.iters = iters;
  config.n_shape = 20;
  config.n_expr = 10;
  config.camera.steps = camera_steps;
  config.camera.landmark_steps = camera_steps / 2;
  config.camera.lr_decay_at = 0.75;
  config.loss.dist_uv = 20.0 * 96 / 256;  // the official gate is in pixels at 256
  return Fitter(flame::Flame(std::move(model), flame::FlameOptions()), config);
}

}  // namespace

TEST_CASE("FitAssets come from the model's masks", "[fit]") {
  const auto model = flame::synthetic_flame(flame::SyntheticOptions().vertices(1200).n_shape(5).n_expr(5));
  const FitAssets a = FitAssets::from_model(model);
  REQUIRE(a.uv_vertices.numel() > 50);
  REQUIRE(a.uv_vertex_uv.size(0) == a.uv_vertices.size(0));
  REQUIRE(a.iris_vertices.numel() == 2);
  // The image-left pupil belongs to the subject's right eyeball.
  const auto right = model.masks.at("right_eyeball");
  REQUIRE((right == a.iris_vertices[0]).any().item<bool>());
  flame::FlameModel no_masks = model;
  no_masks.masks.erase("left_eyeball");
  pixel3dmm::test::require_throws_with<ValueError>([&] { FitAssets::from_model(no_masks); },
                                                   {"left_eyeball"});
}

TEST_CASE("random_params turns the neck only when asked, and leaves a seed's other draws alone", "[fit]") {
  const FitParams straight = random_params(6, 20, 10, 5);
  REQUIRE(torch::equal(straight.neck, FitParams::initial(6, 20, 10, 3.9).neck));
  RandomParamsOptions o;
  o.neck_deg = 10.0;
  const FitParams turned = random_params(6, 20, 10, 5, o);
  REQUIRE(torch::equal(turned.rotation, straight.rotation));
  REQUIRE(torch::equal(turned.shape, straight.shape));
  REQUIRE(torch::equal(turned.focal, straight.focal));
  // Angle of each neck rotation: yaw and pitch each within 10 degrees, so at most 10 * sqrt(2), and not all ~0.
  const auto r = flame::rotation_6d_to_matrix(turned.neck);
  const auto cos = ((r.diagonal(0, -2, -1).sum(-1) - 1) / 2).clamp(-1, 1);
  const auto deg = torch::acos(cos) * 180.0 / M_PI;
  REQUIRE(deg.max().item<double>() <= 10.0 * std::sqrt(2.0) + 1e-3);
  REQUIRE(deg.max().item<double>() > 2.0);
}

TEST_CASE("Fitter recovers a synthetic head from exact maps better than from the neutral start", "[fit]") {
  torch::manual_seed(0);
  // The official learning rates move a coefficient by at most lr per step, so the easy case keeps the identity and
  // expression moderate and the schedule at 400 + 500 steps (official: 500 + 500..800).
  Fitter fitter = small_fitter(500, 400);
  RandomParamsOptions ro;
  ro.yaw_deg = 15;
  ro.shape_std = 0.3;
  ro.expr_std = 0.3;
  const FitParams truth = random_params(1, 20, 10, 7, ro);
  SyntheticTargetOptions so;
  so.size = 96;
  so.outlier_fraction = 0.0;  // outliers are the benchmark's business (bench_fit_accuracy)
  so.uv_noise = 0.002;
  so.normal_noise = 0.03;
  so.landmark_noise = 0.3;
  const SyntheticTarget st = render_synthetic_target(fitter, truth, 0, so);

  const FitParams start = FitParams::initial(1, 20, 10, fitter.config().focal_init);
  const auto start_vertices = fitter.evaluate(start).vertices.detach();
  const auto measured = non_eyeball_vertices(fitter.flame()->model());
  const double start_error = aligned_vertex_error(start_vertices, st.vertices, measured);
  int steps = 0;
  const FitResult r = fitter.fit(st.target, [&](const FitLogEntry&) { return ++steps > 0; });
  const double error = aligned_vertex_error(r.vertices, st.vertices, measured);
  const double neutral_error = mean_vertex_error(r.canonical, st.canonical);
  const double start_neutral = mean_vertex_error(fitter.evaluate(start).flame.v_shaped.detach(), st.canonical);
  // Image-space agreement on the face: where the fitted face's vertices land vs the truth's, in pixels (the
  // official UV-vertex term alone would settle half a pixel off: spec 2.5).
  const auto face = fitter.flame()->model().masks.at("face");
  const auto cam_truth = fitter.camera(truth);
  const auto reprojection = (r.camera.project(r.vertices.index_select(1, face)) -
                             cam_truth.project(st.vertices.index_select(1, face)))
                                .slice(-1, 0, 2)
                                .norm(2, -1)
                                .mean()
                                .item<double>();
  INFO("aligned error: start " << start_error * 1000 << " mm, fitted " << error * 1000 << " mm; neutral: start "
       << start_neutral * 1000 << " mm, fitted " << neutral_error * 1000 << " mm; reprojection " << reprojection
       << " px; focal " << r.params.focal.item<double>() << " vs " << truth.focal.item<double>());
  REQUIRE(steps == r.iterations);
  REQUIRE(r.iterations == 900);
  REQUIRE(error < 0.4 * start_error);
  REQUIRE(neutral_error < 0.5 * start_neutral);
  REQUIRE(reprojection < 1.0);
  // The full stage lowered its own loss.
  const auto first = std::find_if(r.log.begin(), r.log.end(), [](const FitLogEntry& e) { return e.stage == "full"; });
  REQUIRE(first != r.log.end());
  REQUIRE(r.log.back().total < first->total);
  REQUIRE(r.log.back().terms.count("uv") == 1);
  REQUIRE(r.log.back().terms.count("normal") == 1);
  REQUIRE(r.log.back().terms.count("sil") == 1);
}

TEST_CASE("Fitter rejects malformed targets with the field name", "[fit]") {
  Fitter fitter = small_fitter(1);
  FitTarget t;
  t.uv = torch::zeros({1, 2, 32, 32});
  t.normals = torch::zeros({1, 3, 32, 16});
  t.uv_mask = torch::ones({1, 32, 32});
  t.normal_mask = torch::ones({1, 32, 32});
  pixel3dmm::test::require_throws_with<ValueError>([&] { fitter.fit(t); }, {"target 0 normals", "[1, 3, 32, 32]"});
  t.normals = torch::zeros({1, 3, 32, 32});
  t.uv[0][0][3][3] = std::numeric_limits<float>::quiet_NaN();
  pixel3dmm::test::require_throws_with<ValueError>([&] { fitter.fit(t); }, {"target 0 uv", "non-finite"});
}

TEST_CASE("Masks reach the fit resolution at Pillow's NEAREST positions, as the official tracker's seg_og",
          "[fit][masks]") {
  Fitter fitter = small_fitter(1);
  SyntheticTarget st = render_synthetic_target(fitter, random_params(1, 20, 10, 3), 0, {192});
  // 192 -> 96: Pillow's NEAREST samples source pixels 2i + 1. A mask that is 1 exactly on odd rows and columns
  // arrives as all ones (torch's legacy nearest, 2i, would give all zeros).
  const auto odd = (torch::arange(192) % 2 == 1).to(torch::kFloat);
  const auto grid = (odd.view({192, 1}) * odd.view({1, 192})).unsqueeze(0);
  for (auto* m : {&st.target.uv_mask, &st.target.normal_mask, &st.target.fg_mask, &st.target.valid_bg}) *m = grid;
  const PreparedTargets p = fitter.prepare({st.target});
  for (const auto* m : {&p.uv_mask, &p.normal_mask, &p.fg_mask, &p.valid_bg}) {
    REQUIRE(m->sizes() == torch::IntArrayRef({1, 96, 96}));
    REQUIRE(m->min().item<float>() == 1.0f);
  }
}

TEST_CASE("An early stop from the callback ends the fit", "[fit]") {
  Fitter fitter = small_fitter(50);
  const SyntheticTarget st = render_synthetic_target(fitter, random_params(1, 20, 10, 3), 0, {96});
  const FitResult r = fitter.fit(st.target, [](const FitLogEntry& e) { return !(e.stage == "full" && e.step == 4); });
  REQUIRE(r.log.back().stage == "full");
  REQUIRE(r.log.back().step == 4);
  // A stop during the camera warm-up ends the whole fit, not only that stage.
  const FitResult c = fitter.fit(st.target, [](const FitLogEntry& e) { return e.step < 2; });
  REQUIRE(c.iterations == 3);
  REQUIRE(c.log.back().stage == "camera");
}

TEST_CASE("An image set shares one identity and fits every photo", "[fit]") {
  torch::manual_seed(0);
  Fitter fitter = small_fitter(300, 200);
  RandomParamsOptions ro;
  ro.yaw_deg = 25;
  ro.shape_std = 0.3;
  ro.expr_std = 0.3;
  const FitParams truth = random_params(2, 20, 10, 11, ro);  // one identity, two expressions and poses
  SyntheticTargetOptions so;
  so.size = 96;
  so.outlier_fraction = 0.0;
  std::vector<FitTarget> targets;
  std::vector<torch::Tensor> truth_vertices;
  for (int v = 0; v < 2; ++v) {
    so.seed = 20 + v;
    const SyntheticTarget st = render_synthetic_target(fitter, truth, v, so);
    targets.push_back(st.target);
    truth_vertices.push_back(st.vertices);
  }
  const FitResult r = fitter.fit(targets);
  REQUIRE(r.params.shape.sizes() == torch::IntArrayRef({1, 20}));
  REQUIRE(r.params.expression.sizes() == torch::IntArrayRef({2, 10}));
  REQUIRE(r.params.focal.sizes() == torch::IntArrayRef({1, 1}));
  REQUIRE(r.vertices.sizes() == torch::IntArrayRef({2, 1200, 3}));
  REQUIRE(r.canonical.size(0) == 1);
  const auto measured = non_eyeball_vertices(fitter.flame()->model());
  const auto start = fitter.evaluate(FitParams::initial(2, 20, 10, fitter.config().focal_init)).vertices.detach();
  for (int v = 0; v < 2; ++v) {
    const double start_error = aligned_vertex_error(start.slice(0, v, v + 1), truth_vertices[v], measured);
    const double error = aligned_vertex_error(r.vertices.slice(0, v, v + 1), truth_vertices[v], measured);
    INFO("photo " << v << ": start " << start_error * 1000 << " mm, fitted " << error * 1000 << " mm");
    REQUIRE(error < 0.65 * start_error);
  }
  // Each photo got its own pose: the fitted head rotations differ as the true ones do.
  const auto rot = flame::rotation_6d_to_matrix(r.params.rotation);
  const auto rot_truth = flame::rotation_6d_to_matrix(truth.rotation);
  const auto relative = [](const torch::Tensor& R) {
    return flame::matrix_to_axis_angle(torch::matmul(R[0].transpose(0, 1), R[1]).unsqueeze(0)).norm().item<double>();
  };
  INFO("relative rotation: fitted " << relative(rot) << " rad, truth " << relative(rot_truth) << " rad");
  REQUIRE(std::abs(relative(rot) - relative(rot_truth)) < 0.05);
  // A malformed photo in a set is named by its index.
  std::vector<FitTarget> bad = targets;
  bad[1].normal_mask = torch::ones({1, 95, 96});
  pixel3dmm::test::require_throws_with<ValueError>([&] { fitter.fit(bad); }, {"target 1 normal_mask"});
}

// ---- numerical faults (docs/reliability.md) ----

TEST_CASE("A loss that overflows raises NumericalFault naming the stage, step and term", "[fit][reliability]") {
  Fitter fitter = small_fitter(5, 5);
  SyntheticTarget st = render_synthetic_target(fitter, random_params(1, 20, 10, 3), 0, {96});
  // Finite but absurd landmarks (a broken detector): their squared pixel error overflows float32.
  st.target.landmarks = torch::full({1, 68, 2}, 3e38f);
  pixel3dmm::test::require_throws_with<NumericalFault>([&] { fitter.fit(st.target); },
                                                       {"non-finite loss at camera-stage step 0", "lmk68"});
}

TEST_CASE("stop_on_numerical_fault keeps the last finite parameters", "[fit][reliability]") {
  FitConfig config = small_fitter().config();
  config.stop_on_numerical_fault = true;
  config.iters = 5;
  config.camera.steps = 5;
  const SyntheticTarget st = render_synthetic_target(small_fitter(), random_params(1, 20, 10, 3), 0, {96});
  // Adam's first step moves t by lr / (1 - beta1) = 3e38 times g / |g|: beyond float32, so the update is rolled
  // back and the start (zero translation) is the last finite state; the result is computed from it.
  config.camera.lr_t = 3e37;
  Fitter fitter(small_fitter().flame(), config);
  const FitResult r = fitter.fit(st.target);
  REQUIRE(r.fault == "non-finite parameters after camera-stage step 0 (t)");
  REQUIRE(r.iterations == 0);
  REQUIRE(r.log.empty());
  REQUIRE(r.params.translation.abs().max().item<double>() == 0.0);
  for (const auto& [name, t] : r.params.named()) {
    INFO(name);
    REQUIRE(torch::isfinite(t).all().item<bool>());
  }
  REQUIRE(torch::isfinite(r.vertices).all().item<bool>());
  // Without the option the same fit throws, naming the stage, step and parameter.
  config.stop_on_numerical_fault = false;
  pixel3dmm::test::require_throws_with<NumericalFault>([&] { Fitter(small_fitter().flame(), config).fit(st.target); },
                                                       {"non-finite parameters after camera-stage step 0 (t)"});
}
