#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/silhouette_texture.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/masks.h"
#include "test_util.h"

#include <array>
#include <limits>

using namespace pixel3dmm;
using namespace pixel3dmm::fit;
using namespace pixel3dmm::synth;
using pixel3dmm::test::require_close;
using pixel3dmm::eval::aligned_vertex_error;
using pixel3dmm::eval::mean_vertex_error;
using pixel3dmm::eval::non_eyeball_vertices;

namespace {

/// A small synthetic FLAME-layout model and a short schedule, so that a fit takes a few seconds.
Fitter small_fitter(int iters = 80, int camera_steps = 80) {
  flame::FlameModel model = synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(20).n_expr(10));
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
  const auto model = synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(5).n_expr(5));
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

TEST_CASE("A perfect parser's label map gives the official masks, inside the exact ones", "[fit][masks]") {
  Fitter fitter = small_fitter(1);
  const auto vertex_labels = parser_vertex_labels(fitter.flame()->model());
  REQUIRE(vertex_labels.sizes() == torch::IntArrayRef({fitter.flame()->model().n_vertices()}));
  const auto eyeballs = vertex_labels.index_select(0, fitter.assets().eye_vertices);
  REQUIRE(((eyeballs == 8) | (eyeballs == 9)).all().item<bool>());
  REQUIRE((vertex_labels == 8).sum().item<int64_t>() + (vertex_labels == 9).sum().item<int64_t>() ==
          fitter.assets().eye_vertices.numel());

  const SyntheticTarget st = render_synthetic_target(fitter, random_params(1, 20, 10, 3), 0, {128});
  const torch::Tensor& labels = st.labels;
  REQUIRE(labels.sizes() == torch::IntArrayRef({128, 128}));
  REQUIRE(labels.scalar_type() == torch::kLong);
  auto has = [&](int64_t l) { return (labels == l).any().item<bool>(); };
  for (int64_t l : {0, 2, 10, 14}) REQUIRE(has(l));
  REQUIRE((has(8) || has(9)));
  REQUIRE((has(12) || has(13)));
  const auto exact_fg = st.target.fg_mask[0] > 0.5, exact_uv = st.target.uv_mask[0] > 0.5;
  // Background exactly where the head is not; eyes exactly where the exact masks cut the eyeballs out.
  REQUIRE(torch::equal(labels == 0, ~exact_fg));
  REQUIRE(torch::equal((labels == 8) | (labels == 9), exact_fg & ~exact_uv));

  // The official rules drop hair, ears and neck from the silhouette and hair from the UV mask; everywhere else
  // they agree with the exact masks, and valid_bg adds the neck to the background.
  const preprocess::FaceMasks m = preprocess::masks_from_segmentation(labels);
  const auto hair = labels == 14, ears_neck = (labels == 1) | (labels == 4) | (labels == 5);
  REQUIRE(torch::equal(m.fg_mask[0] > 0.5, exact_fg & ~hair & ~ears_neck));
  REQUIRE(torch::equal(m.uv_mask[0] > 0.5, exact_uv & ~hair));
  REQUIRE(torch::equal(m.normal_mask[0] > 0.5, exact_uv & ~hair & ~ears_neck));
  REQUIRE(torch::equal(m.valid_bg[0] > 0.5, ~exact_fg | (labels == 1)));
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

// ---- the identity prior (official: MICA's code; issue 25) ----

TEST_CASE("An identity prior starts the identity, is the target of reg/shape and averages over a set", "[fit][prior]") {
  Fitter fitter = small_fitter(0, 2);
  const FitParams truth = random_params(2, 20, 10, 3);
  SyntheticTarget a = render_synthetic_target(fitter, truth, 0, {96});
  SyntheticTarget b = render_synthetic_target(fitter, truth, 1, {96});
  torch::manual_seed(5);
  const auto c1 = torch::randn({1, 20}), c2 = torch::randn({20});
  // No code: zero prior (official ignore_mica), zero start.
  REQUIRE_FALSE(fitter.prepare({a.target}).identity_prior.defined());
  REQUIRE(fitter.fit(a.target).params.shape.abs().max().item<double>() == 0.0);
  REQUIRE_FALSE(fitter.fit(a.target).identity_prior.defined());
  // One code: the fit starts at it (no full-stage steps here, and the camera stage leaves the identity alone).
  a.target.identity = c1;
  const FitResult r = fitter.fit(a.target);
  require_close(r.params.shape, c1, 0.0);
  require_close(r.identity_prior, c1, 0.0);
  // A set: the mean of the codes of the targets that have one; a code of the model's full size is cut to n_shape.
  b.target.identity = c2;
  require_close(fitter.prepare({a.target, b.target}).identity_prior, (c1 + c2.unsqueeze(0)) / 2, 1e-6);
  FitTarget no_code = b.target;
  no_code.identity = torch::Tensor();
  require_close(fitter.prepare({no_code, a.target}).identity_prior, c1, 0.0);
  // PreparedTargets::cat weighs the parts' priors by their code counts; rows keeps the set's prior.
  const auto joined = PreparedTargets::cat({fitter.prepare({a.target, b.target}), fitter.prepare({a.target})});
  require_close(joined.identity_prior, (2 * c1 + c2.unsqueeze(0)) / 3, 1e-6);
  REQUIRE(joined.identity_codes == 3);
  require_close(joined.rows(torch::tensor({2}, torch::kLong)).identity_prior, joined.identity_prior, 0.0);
  // reg/shape measures the distance to the prior, reg/shape_general the distance to zero.
  const auto data = fitter.prepare({a.target});
  FitParams at_prior = FitParams::initial(1, 20, 10, fitter.config().focal_init, c1);
  const auto terms = fitter.full_stage_terms(at_prior, data, 0.0);
  REQUIRE(terms.at("reg/shape").item<double>() == 0.0);
  REQUIRE(terms.at("reg/shape_general").item<double>() ==
          Approx(c1.pow(2).sum().item<double>() * fitter.config().loss.reg_shape_general).epsilon(1e-5));
  FitParams at_zero = FitParams::initial(1, 20, 10, fitter.config().focal_init);
  REQUIRE(fitter.full_stage_terms(at_zero, data, 0.0).at("reg/shape").item<double>() ==
          Approx(c1.pow(2).sum().item<double>() * fitter.config().loss.reg_shape).epsilon(1e-5));
  // Bad codes are named with the target and the expected size.
  FitTarget bad = a.target;
  bad.identity = torch::zeros({1, 512});
  pixel3dmm::test::require_throws_with<ValueError>([&] { fitter.fit(std::vector<FitTarget>{a.target, bad}); },
                                                   {"target 1 identity", "[1, 20]", "[1, 512]"});
  bad.identity = torch::full({20}, std::numeric_limits<float>::quiet_NaN());
  pixel3dmm::test::require_throws_with<ValueError>([&] { fitter.fit(bad); }, {"target 0 identity", "non-finite"});
}

TEST_CASE("With an identity prior the fitted identity moves toward the given code", "[fit][prior]") {
  FitConfig config = small_fitter().config();
  config.iters = 60;
  config.camera.steps = 20;
  config.camera.landmark_steps = 10;
  // A pull the short schedule can show: Adam moves a coefficient by about lr per step, and the official
  // reg_shape (0.2) is small beside the data terms over 60 steps.
  config.lr.shape = 0.05;
  config.loss.reg_shape = 5.0;
  Fitter fitter(small_fitter().flame(), config);
  SyntheticTarget st = render_synthetic_target(fitter, random_params(1, 20, 10, 3), 0, {96});
  torch::manual_seed(9);
  const auto code = torch::randn({1, 20}) * 2.0;  // unrelated to the truth: only reg/shape pulls toward it
  // Both fits start from the neutral identity, so the difference is the prior's pull.
  const FitParams start = FitParams::initial(1, 20, 10, config.focal_init);
  const FitResult without = fitter.fit_from({st.target}, start);
  st.target.identity = code;
  const FitResult with = fitter.fit_from({st.target}, start);
  const double d0 = code.norm().item<double>();
  const double d_without = (without.params.shape - code).norm().item<double>();
  const double d_with = (with.params.shape - code).norm().item<double>();
  INFO("distance to the code: start " << d0 << ", fit without the prior " << d_without << ", with " << d_with);
  REQUIRE(d_with < 0.85 * d0);
  REQUIRE(d_with < d_without - 0.1 * d0);
}

// ---- the official vertex sets and the silhouette mask (issue 25) ----

TEST_CASE("The pupils are FLAME's 4597 / 4051 on FLAME's topology, else the front-most eyeball vertices; mask "
          "uv_valid replaces our UV-loss vertices", "[fit]") {
  const flame::FlameModel model = synth::synthetic_flame(synth::SyntheticFlameOptions().n_shape(5).n_expr(5));
  REQUIRE(model.n_vertices() == 5023);  // FLAME's vertex count, but other faces
  REQUIRE(model.n_faces() != 9976);
  auto front_most = [&](const char* name) {
    const auto ids = model.masks.at(name);
    return ids[model.v_template.index_select(0, ids).select(1, 2).argmax()].item<int64_t>();
  };
  const FitAssets own = FitAssets::from_model(model);
  REQUIRE(own.iris_vertices[0].item<int64_t>() == front_most("right_eyeball"));
  REQUIRE(own.iris_vertices[1].item<int64_t>() == front_most("left_eyeball"));
  REQUIRE(front_most("right_eyeball") != 4597);
  // FLAME's topology (5023 vertices, 9976 faces) with the ids in the right eyeballs: the official ids.
  flame::FlameModel flame_like = model;
  flame_like.faces = torch::cat({model.faces, model.faces.slice(0, 0, 9976 - model.n_faces())});
  const FitAssets official = FitAssets::from_model(flame_like);
  REQUIRE(official.iris_vertices[0].item<int64_t>() == 4597);
  REQUIRE(official.iris_vertices[1].item<int64_t>() == 4051);
  // Eyeball masks that do not hold them: not FLAME's layout after all.
  std::swap(flame_like.masks.at("left_eyeball"), flame_like.masks.at("right_eyeball"));
  REQUIRE(FitAssets::from_model(flame_like).iris_vertices[0].item<int64_t>() == front_most("left_eyeball"));
  // The official UV-loss vertex set, stored as mask uv_valid by the converter.
  flame::FlameModel with_set = model;
  const auto ids = torch::tensor({5, 17, 100, 4000}, torch::kLong);
  with_set.masks["uv_valid"] = ids;
  const FitAssets a = FitAssets::from_model(with_set);
  REQUIRE(torch::equal(a.uv_vertices, ids));
  const auto uv = model.vertex_uv.index_select(0, ids).to(torch::kFloat);
  require_close(a.uv_vertex_uv, torch::stack({uv.select(1, 0), 1.0 - uv.select(1, 1)}, 1), 0.0);
  REQUIRE(own.uv_vertices.numel() != 4);
}

TEST_CASE("region_mask_texture covers exactly the texels of the regions' faces", "[fit][silhouette]") {
  const flame::FlameModel model =
      synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(5).n_expr(5));
  const int64_t size = 128;
  const auto tex = region_mask_texture(model, {"face", "left_eyeball", "right_eyeball"}, size);
  REQUIRE(tex.sizes() == torch::IntArrayRef({1, size, size}));
  // Brute force: a texel is 1 iff its centre lies in the UV triangle of a face whose 3 vertices are all selected.
  std::vector<char> sel(static_cast<size_t>(model.n_vertices()), 0);
  for (const char* name : {"face", "left_eyeball", "right_eyeball"}) {
    const auto m = model.masks.at(name);
    for (int64_t i = 0; i < m.numel(); ++i) sel[static_cast<size_t>(m[i].item<int64_t>())] = 1;
  }
  const bool per_corner = model.uv_coords.defined() && model.uv_faces.defined();
  const auto uv = (per_corner ? model.uv_coords : model.vertex_uv).to(torch::kDouble);
  const auto tf = per_corner ? model.uv_faces : model.faces;
  auto expected = torch::zeros({size, size}, torch::kFloat);
  const auto jj = torch::arange(size, torch::kDouble).add(0.5).view({size, 1}).expand({size, size});
  const auto ii = torch::arange(size, torch::kDouble).add(0.5).view({1, size}).expand({size, size});
  int64_t selected_faces = 0;
  for (int64_t k = 0; k < model.n_faces(); ++k) {
    bool all = true;
    for (int c = 0; c < 3; ++c) all = all && sel[static_cast<size_t>(model.faces[k][c].item<int64_t>())];
    if (!all) continue;
    ++selected_faces;
    std::array<double, 3> x{}, y{};
    for (int c = 0; c < 3; ++c) {
      const int64_t q = tf[k][c].item<int64_t>();
      x[c] = (1.0 - uv[q][0].item<double>()) * size;  // MeshRenderer's layout: column (1 - u), row (1 - v)
      y[c] = (1.0 - uv[q][1].item<double>()) * size;
    }
    const double area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0]);
    if (area == 0.0) continue;
    auto edge = [&](int a, int b) { return ((x[b] - x[a]) * (jj - y[a]) - (ii - x[a]) * (y[b] - y[a])) * area; };
    expected.masked_fill_((edge(1, 2) >= 0) & (edge(2, 0) >= 0) & (edge(0, 1) >= 0), 1.0);
  }
  REQUIRE(selected_faces > 100);
  const double covered = expected.mean().item<double>();
  INFO("texture share covered: " << covered);
  REQUIRE(covered > 0.02);
  REQUIRE(covered < 0.8);
  REQUIRE(torch::equal(tex[0], expected));
  pixel3dmm::test::require_throws_with<ValueError>([&] { region_mask_texture(model, {"face", "nose_tip"}, 8); },
                                                   {"mask.nose_tip"});
}

TEST_CASE("The silhouette term renders the mask texture: generated, or read from a PNG, or the coverage",
          "[fit][silhouette]") {
  const flame::FlameModel model =
      synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(20).n_expr(10));
  FitConfig config = small_fitter().config();
  auto make = [&](const std::string& texture) {
    FitConfig c = config;
    c.silhouette_texture = texture;
    return Fitter(flame::Flame(model, flame::FlameOptions()), c);
  };
  const Fitter coverage = make(""), masks = make("masks");
  const FitParams truth = random_params(1, 20, 10, 3);
  SyntheticTarget st = render_synthetic_target(coverage, truth, 0, {96});
  // Everything is background: the term is the mean rendered mask.
  st.target.valid_bg = torch::ones({1, 96, 96});
  st.target.fg_mask = torch::zeros({1, 96, 96});
  const auto data = coverage.prepare({st.target});
  auto sil = [&](const Fitter& f) { return f.full_stage_terms(truth, data, 1.0).at("sil").item<double>(); };
  const double whole = sil(coverage), face = sil(masks);
  INFO("silhouette term: whole mesh " << whole << ", face + eyeballs " << face);
  REQUIRE(face > 0.05 * whole);
  REQUIRE(face < 0.8 * whole);  // no scalp, neck or ears
  // The default, "auto": the face + eyeball texture for a model with those masks, the coverage for one without.
  REQUIRE(FitConfig().silhouette_texture == "auto");
  REQUIRE(sil(make("auto")) == Approx(face).epsilon(1e-6));
  flame::FlameModel bare = model;
  bare.masks.erase("left_eyeball");
  REQUIRE_FALSE(silhouette_texture(bare, "auto").defined());
  pixel3dmm::test::require_throws_with<ValueError>([&] { silhouette_texture(bare, "masks"); }, {"left_eyeball"});
  // The same texture as a PNG (3 equal channels, averaged): the same term.
  pixel3dmm::test::TempDir dir;
  const std::string png = (dir.path / "uv_mask.png").string();
  io::write_image(png, region_mask_texture(model, {"face", "left_eyeball", "right_eyeball"}));
  const auto read = read_mask_texture(png);
  REQUIRE(read.sizes() == torch::IntArrayRef({3, 1024, 1024}));
  REQUIRE(sil(make(png)) == Approx(face).epsilon(1e-5));
  pixel3dmm::test::require_throws_with<FileNotFound>([&] { make((dir.path / "missing.png").string()); },
                                                     {"missing.png"});
}
