#include "pixel3dmm/synth/synthetic_target.h"

#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/flame/rotation.h"

namespace pixel3dmm::synth {

using fit::FitParams;
using fit::FitTarget;
using fit::Fitter;

namespace {

constexpr double kDeg = M_PI / 180.0;

torch::Tensor uniform(torch::Generator& g, std::vector<int64_t> shape, double lo, double hi) {
  return torch::rand(shape, g) * (hi - lo) + lo;
}

}  // namespace

torch::Tensor parser_vertex_labels(const flame::FlameModel& model) {
  auto labels = torch::full({model.n_vertices()}, 2, torch::kLong);
  auto mask = [&](const char* name) {
    const auto it = model.masks.find(name);
    return it == model.masks.end() ? torch::Tensor() : it->second.to(torch::kLong);
  };
  auto set = [&](const char* name, int64_t label) {
    const auto ids = mask(name);
    if (ids.defined() && ids.numel() > 0) labels.index_fill_(0, ids, label);
  };
  set("scalp", 14);
  set("neck", 1);
  set("face", 2);
  set("forehead", 2);
  set("right_ear", 4);
  set("left_ear", 5);
  set("nose", 10);
  if (const auto lips = mask("lips"); lips.defined() && lips.numel() > 0) {
    const auto y = model.v_template.index_select(0, lips).select(1, 1);
    labels.index_put_({lips}, torch::where(y >= y.mean(), torch::full_like(lips, 13), torch::full_like(lips, 12)));
  }
  set("right_eyeball", 8);
  set("left_eyeball", 9);
  return labels;
}

FitParams random_params(int64_t batch, int64_t n_shape, int64_t n_expr, uint64_t seed, const RandomParamsOptions& o) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  FitParams p = FitParams::initial(batch, n_shape, n_expr, 0.5 * (o.focal_min + o.focal_max));
  p.shape = torch::randn({1, n_shape}, g) * o.shape_std;
  p.expression = torch::randn({batch, n_expr}, g) * o.expr_std;
  // Head rotation from yaw (y), pitch (x), roll (z), as axis-angle products.
  const auto yaw = uniform(g, {batch}, -o.yaw_deg * kDeg, o.yaw_deg * kDeg);
  const auto pitch = uniform(g, {batch}, -o.pitch_deg * kDeg, o.pitch_deg * kDeg);
  const auto roll = uniform(g, {batch}, -o.roll_deg * kDeg, o.roll_deg * kDeg);
  auto axis = [&](const torch::Tensor& angle, int k) {
    auto aa = torch::zeros({batch, 3});
    aa.select(1, k).copy_(angle);
    return flame::axis_angle_to_matrix(aa);
  };
  const auto R = torch::matmul(torch::matmul(axis(yaw, 1), axis(pitch, 0)), axis(roll, 2));
  p.rotation = flame::matrix_to_rotation_6d(R);
  auto jaw = torch::zeros({batch, 3});
  jaw.select(1, 0).copy_(uniform(g, {batch}, 0.0, o.jaw_deg * kDeg));
  p.jaw = flame::axis_angle_to_rotation_6d(jaw);
  p.eyelids = uniform(g, {batch, 2}, 0.0, o.eyelid_max);
  auto t = uniform(g, {batch, 3}, -o.translation_m, o.translation_m);
  t.select(1, 2).mul_(2.0);
  p.translation = t;
  p.focal = uniform(g, {1, 1}, o.focal_min, o.focal_max);
  if (o.neck_deg > 0) {  // drawn last, so the other draws of a seed stay the same with or without neck rotation
    const auto neck_yaw = uniform(g, {batch}, -o.neck_deg * kDeg, o.neck_deg * kDeg);
    const auto neck_pitch = uniform(g, {batch}, -o.neck_deg * kDeg, o.neck_deg * kDeg);
    p.neck = flame::matrix_to_rotation_6d(torch::matmul(axis(neck_yaw, 1), axis(neck_pitch, 0)));
  }
  return p;
}

SyntheticTarget render_synthetic_target(const Fitter& fitter, const FitParams& truth, int64_t index,
                                        const SyntheticTargetOptions& o) {
  torch::NoGradGuard no_grad;
  PIXEL3DMM_CHECK(index >= 0 && index < truth.batch_size(), "render_synthetic_target: image index ", index,
                  " out of range for ", truth.batch_size(), " images");
  FitParams one = truth.clone();
  auto pick = [&](torch::Tensor& t) { t = t.slice(0, index, index + 1); };
  for (auto* t : {&one.expression, &one.jaw, &one.neck, &one.eyes, &one.eyelids, &one.rotation, &one.translation})
    pick(*t);
  auto pad = [](const torch::Tensor& x, int64_t n) {
    return x.size(1) == n ? x : torch::cat({x, torch::zeros({x.size(0), n - x.size(1)})}, 1);
  };
  one.shape = pad(one.shape, fitter.flame()->n_shape());
  one.expression = pad(one.expression, fitter.flame()->n_expr());
  const Fitter::Evaluation ev = fitter.evaluate(one);

  render::Camera cam = fitter.camera(one);
  cam.width = cam.height = o.size;
  render::RenderRequest req;
  req.normal_vertices = ev.flame.vertices_noneck;  // FLAME-frame normals, as Fitter::run renders them
  const render::RenderOutput out = fitter.renderer().render(ev.vertices, cam, req);
  const auto coverage = out.raster.coverage().to(torch::kFloat);  // 1 x S x S
  const auto eyes = out.regions.select(1, 0);
  auto g = at::make_generator<at::CPUGeneratorImpl>(o.seed);

  auto uv = out.uv.clone();
  auto normals = out.normals.clone();
  uv += torch::randn(uv.sizes(), g) * o.uv_noise;
  normals += torch::randn(normals.sizes(), g) * o.normal_noise;
  // Outliers: uniform garbage on a random share of the pixels.
  const auto outliers = (torch::rand({1, 1, o.size, o.size}, g) < o.outlier_fraction).to(torch::kFloat);
  uv = uv * (1 - outliers) + torch::rand(uv.sizes(), g) * outliers;
  normals = normals * (1 - outliers) + (torch::rand(normals.sizes(), g) * 2 - 1) * outliers;

  SyntheticTarget st;
  FitTarget& t = st.target;
  t.uv = uv.clamp(0, 1);
  t.normals = normals.clamp(-1, 1);
  const auto face = coverage * (1 - eyes);
  t.uv_mask = face;
  t.normal_mask = face;
  t.fg_mask = coverage;
  t.valid_bg = 1 - coverage;
  const auto lmk = cam.project(ev.landmarks).slice(-1, 0, 2);
  t.landmarks = lmk + torch::randn(lmk.sizes(), g) * o.landmark_noise;
  t.iris = cam.project(ev.vertices.index_select(1, fitter.assets().iris_vertices)).slice(-1, 0, 2);
  // A shaded picture of the head, for overlays.
  const auto shade = (normals.select(1, 2).clamp(0, 1) * 0.8 + 0.1).unsqueeze(1) * coverage.unsqueeze(1);
  t.image = torch::cat({shade * 0.95, shade * 0.8, shade * 0.7}, 1) + (1 - coverage.unsqueeze(1)) * 0.3;
  // The perfect parser: each covered pixel takes the label of its triangle's corner with the largest barycentric.
  const auto tri = out.raster.triangle_id[0].to(torch::kLong);  // S x S, -1 on background
  const auto b = out.raster.bary[0].to(torch::kFloat);          // S x S x 2
  const auto corner = torch::cat({b, 1 - b.sum(-1, true)}, -1).argmax(-1);
  const auto vertex = fitter.renderer().faces().index({tri.clamp_min(0), corner});
  const auto vertex_labels = parser_vertex_labels(fitter.flame()->model());
  st.labels = torch::where(tri >= 0, vertex_labels.index({vertex}), torch::zeros_like(vertex));
  st.vertices = ev.vertices;
  st.vertices_flame = ev.flame.vertices;
  flame::FlameParams neutral;
  neutral.shape = one.shape;
  st.canonical = fitter.flame()->forward(neutral).v_shaped;
  return st;
}

}  // namespace pixel3dmm::synth
