#include "pixel3dmm/fit/fitter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/fit/silhouette_texture.h"
#include "pixel3dmm/flame/rotation.h"

namespace pixel3dmm::fit {
namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace {

torch::Tensor identity_6d(int64_t batch) {
  return torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f}).repeat({batch, 1});
}

torch::Tensor index_tensor(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

/// Resizes a 1 x C x H x W map to S x S as the official loader does (PIL bicubic, antialiased when shrinking).
torch::Tensor resize_map(const torch::Tensor& map, int64_t s) {
  if (map.size(2) == s && map.size(3) == s) return map.to(torch::kFloat);
  return F::interpolate(map.to(torch::kFloat), F::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{s, s})
                                                   .mode(torch::kBicubic)
                                                   .align_corners(false)
                                                   .antialias(true));
}

/// Resizes a 1 x H x W mask to S x S with nearest neighbours (the official loader's segmentation resize).
torch::Tensor resize_mask(const torch::Tensor& mask, int64_t s) {
  const auto m = mask.to(torch::kFloat).unsqueeze(1);
  if (m.size(2) == s && m.size(3) == s) return m.squeeze(1);
  // Pillow's NEAREST sample positions (source floor((i + 0.5) * scale)), as the official tracker resizes seg_og.
  // (torch's "nearest-exact"; called directly, as LibTorch 1.13's F::interpolate warns on every call for it.)
  return torch::_upsample_nearest_exact2d(m, {s, s}).squeeze(1);
}

double item(const torch::Tensor& t) { return t.detach().item<double>(); }

void set_learning_rate(torch::optim::Adam& opt, double factor) {
  for (auto& group : opt.param_groups()) {
    auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
    o.lr(o.lr() * factor);
  }
}

torch::optim::OptimizerParamGroup group(const torch::Tensor& p, double lr) {
  return torch::optim::OptimizerParamGroup({p}, std::make_unique<torch::optim::AdamOptions>(lr));
}

/// True when every value of `t` is finite. The fit's parameters are small CPU tensors checked twice per step: a
/// plain loop over them costs nothing, where isfinite + all + item were three dispatched ops per parameter.
bool all_finite(const torch::Tensor& t) {
  const auto v = t.detach();
  const bool plain = v.scalar_type() == torch::kFloat || v.scalar_type() == torch::kDouble;
  if (plain && v.device().is_cpu() && v.is_contiguous()) {
    return AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "all_finite", [&] {
      const scalar_t* d = v.data_ptr<scalar_t>();
      for (int64_t i = 0, n = v.numel(); i < n; ++i)
        if (!std::isfinite(d[i])) return false;
      return true;
    });
  }
  return torch::isfinite(v).all().item<bool>();
}

/// Names of the entries of `named` whose values (or, with `grads`, gradients) hold a NaN or Inf.
std::string non_finite_names(const std::map<std::string, torch::Tensor>& named, bool grads) {
  std::string out;
  for (const auto& [name, t] : named) {
    const torch::Tensor v = grads ? (t.defined() ? t.grad() : torch::Tensor()) : t;
    if (v.defined() && !all_finite(v)) out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
FitAssets FitAssets::from_model(const flame::FlameModel& model) {
  const auto& masks = model.masks;
  auto need = [&](const char* name) -> std::vector<int64_t> {
    const auto it = masks.find(name);
    PIXEL3DMM_CHECK(it != masks.end(), model.source, ": the fit needs the vertex mask 'mask.", name,
                    "' (convert FLAME with --masks FLAME_masks.pkl)");
    return to_vector(it->second);
  };
  auto optional = [&](const char* name) {
    const auto it = masks.find(name);
    return it == masks.end() ? std::vector<int64_t>{} : to_vector(it->second);
  };
  PIXEL3DMM_CHECK(model.vertex_uv.defined(), model.source,
                  ": the fit needs per-vertex UVs (key 'vertex_uv', the official flame_uv_coords.npy)");
  FitAssets a;
  std::vector<int64_t> uv_ids = optional("uv_valid");
  if (uv_ids.empty()) {
    // The official VALID_VERTS: face without the eye region, plus ears and neck, no eyeballs.
    std::set<int64_t> ids;
    const auto eye_region = optional("eye_region");
    const std::set<int64_t> excluded(eye_region.begin(), eye_region.end());
    for (int64_t i : need("face"))
      if (!excluded.count(i)) ids.insert(i);
    for (const char* extra : {"left_ear", "right_ear", "neck"})
      for (int64_t i : optional(extra)) ids.insert(i);
    uv_ids.assign(ids.begin(), ids.end());
  }
  a.uv_vertices = index_tensor(uv_ids);
  const auto uv = model.vertex_uv.index_select(0, a.uv_vertices).to(torch::kFloat);
  a.uv_vertex_uv = torch::stack({uv.select(1, 0), 1.0 - uv.select(1, 1)}, 1);  // (u, 1 - v)

  const auto left = need("left_eyeball"), right = need("right_eyeball");
  std::vector<int64_t> eyes(left);
  eyes.insert(eyes.end(), right.begin(), right.end());
  a.eye_vertices = index_tensor(eyes);

  auto front_most = [&](const std::vector<int64_t>& ids) {
    const auto z = model.v_template.index_select(0, index_tensor(ids)).select(1, 2);
    return ids[z.argmax().item<int64_t>()];
  };
  // The official pupils are FLAME vertices 4597 (image-left, in right_eyeball) and 4051 (image-right, in
  // left_eyeball): ids of FLAME's topology (5023 vertices, 9976 faces). Another topology (the synthetic model,
  // 5023 vertices but other faces) uses the front-most rest-pose vertex of each eyeball.
  const auto in = [](const std::vector<int64_t>& ids, int64_t v) {
    return std::find(ids.begin(), ids.end(), v) != ids.end();
  };
  const bool flame_topology = model.n_vertices() == 5023 && model.n_faces() == 9976 && in(right, 4597) &&
                              in(left, 4051);
  const auto iris_left = optional("iris_image_left"), iris_right = optional("iris_image_right");
  a.iris_vertices = index_tensor({!iris_left.empty() ? iris_left[0] : flame_topology ? 4597 : front_most(right),
                                  !iris_right.empty() ? iris_right[0] : flame_topology ? 4051 : front_most(left)});
  a.mirror_index = model.mirror_index;
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
PreparedTargets PreparedTargets::rows(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, index) : t; };
  PreparedTargets r;
  r.batch = index.numel();
  r.size = size;
  for (auto [dst, src] : {std::pair{&r.uv, &uv}, {&r.normals, &normals}, {&r.uv_mask, &uv_mask},
                          {&r.normal_mask, &normal_mask}, {&r.fg_mask, &fg_mask}, {&r.valid_bg, &valid_bg},
                          {&r.landmarks, &landmarks}, {&r.landmark_mask, &landmark_mask}, {&r.iris, &iris},
                          {&r.iris_mask, &iris_mask}, {&r.corr.target_px, &corr.target_px},
                          {&r.corr.uv_dist2, &corr.uv_dist2}})
    *dst = pick(*src);
  r.identity_prior = identity_prior;  // one prior for the whole set
  r.identity_codes = identity_codes;
  return r;
}

PreparedTargets PreparedTargets::cat(const std::vector<PreparedTargets>& parts) {
  PIXEL3DMM_CHECK(!parts.empty(), "PreparedTargets::cat: nothing to concatenate");
  PreparedTargets r;
  r.size = parts.front().size;
  for (const auto& p : parts) {
    PIXEL3DMM_CHECK(p.size == r.size, "PreparedTargets::cat: fit sizes differ (", r.size, " vs ", p.size, ")");
    r.batch += p.batch;
  }
  // Joins one field; parts lacking an optional field contribute zeros shaped like a part that has it.
  auto join = [&](torch::Tensor PreparedTargets::*field) {
    torch::Tensor like;
    for (const auto& p : parts)
      if ((p.*field).defined()) like = p.*field;
    if (!like.defined()) return torch::Tensor();
    std::vector<torch::Tensor> all;
    for (const auto& p : parts) {
      if ((p.*field).defined()) {
        all.push_back(p.*field);
      } else {
        auto sizes = like.sizes().vec();
        sizes[0] = p.batch;
        all.push_back(torch::zeros(sizes, like.options()));
      }
    }
    return torch::cat(all);
  };
  for (auto f : {&PreparedTargets::uv, &PreparedTargets::normals, &PreparedTargets::uv_mask,
                 &PreparedTargets::normal_mask, &PreparedTargets::fg_mask, &PreparedTargets::valid_bg,
                 &PreparedTargets::landmarks, &PreparedTargets::landmark_mask, &PreparedTargets::iris,
                 &PreparedTargets::iris_mask})
    r.*f = join(f);
  std::vector<torch::Tensor> px, d2;
  for (const auto& p : parts) px.push_back(p.corr.target_px), d2.push_back(p.corr.uv_dist2);
  r.corr.target_px = torch::cat(px);
  r.corr.uv_dist2 = torch::cat(d2);
  // The set's prior: the parts' priors weighted by the number of codes each averages.
  for (const auto& p : parts) {
    if (!p.identity_prior.defined() || p.identity_codes <= 0) continue;
    const auto weighted = p.identity_prior * double(p.identity_codes);
    r.identity_prior = r.identity_prior.defined() ? r.identity_prior + weighted : weighted;
    r.identity_codes += p.identity_codes;
  }
  if (r.identity_prior.defined()) r.identity_prior = r.identity_prior / double(r.identity_codes);
  return r;
}

namespace {

render::MeshRenderer make_renderer(const flame::FlameModel& model, const FitAssets& assets,
                                   const std::string& silhouette) {
  const bool per_corner = model.uv_coords.defined() && model.uv_faces.defined();
  render::MeshRenderer r(model.faces, per_corner ? model.uv_coords : model.vertex_uv,
                         per_corner ? model.uv_faces : torch::Tensor(), model.n_vertices());
  auto eyes = torch::zeros({model.n_vertices(), 1});
  eyes.index_fill_(0, assets.eye_vertices, 1.0);
  r.set_region_masks(eyes);
  // The silhouette's mask texture (official: face + eyeballs); none: the whole mesh's coverage (ours).
  r.set_mask_texture(silhouette_texture(model, silhouette));
  return r;
}

}  // namespace

Fitter::Fitter(flame::Flame flame, FitConfig config)
    : flame_(std::move(flame)),
      config_(std::move(config)),
      assets_(FitAssets::from_model(flame_->model())),
      renderer_(make_renderer(flame_->model(), assets_, config_.silhouette_texture)) {
  PIXEL3DMM_CHECK(flame_->options().rotation() == flame::RotationRep::SixD,
                  "Fitter: the Flame module must take 6D rotations (FlameOptions().rotation(RotationRep::SixD))");
  PIXEL3DMM_CHECK(flame_->dtype() == torch::kFloat, "Fitter: the Flame module must be float32");
  PIXEL3DMM_CHECK(config_.image_size >= 16, "fit.image_size must be at least 16, got ", config_.image_size);
  PIXEL3DMM_CHECK(config_.n_shape >= 0 && config_.n_shape <= flame_->n_shape(), "fit.n_shape = ", config_.n_shape,
                  " but the FLAME module has ", flame_->n_shape(), " identity components");
  PIXEL3DMM_CHECK(config_.n_expr >= 0 && config_.n_expr <= flame_->n_expr(), "fit.n_expr = ", config_.n_expr,
                  " but the FLAME module has ", flame_->n_expr(), " expression components");
  PIXEL3DMM_CHECK(flame_->model().has_landmarks(), flame_->model().source,
                  ": the fit needs the landmark embedding (static_lmk_faces_idx)");
  // The optimisers step float32 tensors: a rate beyond float's range would fail inside LibTorch mid-fit.
  const auto& lr = config_.lr;
  const auto& cam = config_.camera;
  for (const auto& [name, v] : {std::pair<const char*, double>{"lr.exp", lr.exp}, {"lr.eyes", lr.eyes},
                                {"lr.eyelids", lr.eyelids}, {"lr.t", lr.t}, {"lr.R", lr.R}, {"lr.shape", lr.shape},
                                {"lr.jaw", lr.jaw}, {"lr.neck", lr.neck}, {"lr.focal", lr.focal}, {"lr.pp", lr.pp},
                                {"camera.lr_t", cam.lr_t}, {"camera.lr_R", cam.lr_R},
                                {"camera.lr_focal", cam.lr_focal}, {"camera.lr_pp", cam.lr_pp}})
    PIXEL3DMM_CHECK_T(ValueError, std::isfinite(v) && v >= 0 && v <= std::numeric_limits<float>::max(), "fit.",
                      name, " must be a learning rate in [0, 3.4e38] (float32), found ", v);
}

std::pair<torch::Tensor, int64_t> Fitter::identity_prior(const std::vector<FitTarget>& targets) const {
  const int64_t n = config_.n_shape, full = flame_->n_shape();
  torch::Tensor sum;
  int64_t count = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const torch::Tensor& code = targets[i].identity;
    if (!code.defined()) continue;
    const std::string what = "target " + std::to_string(i) + " identity";
    const int64_t k = code.numel();
    PIXEL3DMM_CHECK_T(ValueError, (code.dim() == 1 || (code.dim() == 2 && code.size(0) == 1)) && (k == n || k == full),
                      what, ": expected shape [1, ", n, "] or [", n, "]", (full != n ? " (or " + std::to_string(full) +
                      " coefficients, the model's identity count, of which the first " + std::to_string(n) +
                      " are used)" : std::string()), ", found ", shape_string(code.sizes()));
    PIXEL3DMM_CHECK_T(ValueError, code.is_floating_point(), what, ": expected a floating-point dtype, found ",
                      code.scalar_type());
    check_finite(code, what);
    const auto c = code.detach().to(torch::kFloat).reshape({1, k}).slice(1, 0, n);
    sum = sum.defined() ? sum + c : c.clone();
    ++count;
  }
  if (count == 0) return {torch::Tensor(), 0};
  return {sum / double(count), count};
}

PreparedTargets Fitter::prepare(const std::vector<FitTarget>& targets) const {
  PIXEL3DMM_CHECK(!targets.empty(), "Fitter::fit: no targets");
  const int64_t s = config_.image_size;
  PreparedTargets p;
  p.batch = static_cast<int64_t>(targets.size());
  p.size = s;
  std::vector<torch::Tensor> uv, n, uvm, nm, fg, bg, lmk, lmkm, iris, irism;
  bool any_bg = false, any_lmk = false, any_iris = false;
  for (const auto& t : targets) any_bg |= t.valid_bg.defined(), any_lmk |= t.landmarks.defined(),
                                any_iris |= t.iris.defined();
  for (size_t i = 0; i < targets.size(); ++i) {
    const FitTarget& t = targets[i];
    const std::string what = "target " + std::to_string(i);
    check_shape(t.uv, {1, 2, -1, -1}, what + " uv");
    const int64_t h = t.uv.size(2), w = t.uv.size(3);
    PIXEL3DMM_CHECK(h == w, what, ": maps must be square, found ", h, " x ", w);
    check_shape(t.normals, {1, 3, h, w}, what + " normals");
    check_shape(t.uv_mask, {1, h, w}, what + " uv_mask");
    check_shape(t.normal_mask, {1, h, w}, what + " normal_mask");
    check_finite(t.uv, what + " uv");
    check_finite(t.normals, what + " normals");
    const auto uv_mask = resize_mask(t.uv_mask, s);
    uv.push_back(resize_map(t.uv, s) * uv_mask.unsqueeze(1));  // official: zeroed outside the UV mask
    n.push_back(resize_map(t.normals, s));
    uvm.push_back(uv_mask);
    nm.push_back(resize_mask(t.normal_mask, s));
    if (t.fg_mask.defined()) check_shape(t.fg_mask, {1, h, w}, what + " fg_mask");
    fg.push_back(resize_mask(t.fg_mask.defined() ? t.fg_mask : t.normal_mask, s));
    if (any_bg) {
      if (t.valid_bg.defined()) check_shape(t.valid_bg, {1, h, w}, what + " valid_bg");
      bg.push_back(t.valid_bg.defined() ? resize_mask(t.valid_bg, s) : torch::zeros({1, s, s}));
    }
    const double scale = double(s) / double(w);
    if (any_lmk) {
      if (t.landmarks.defined()) {
        check_shape(t.landmarks, {1, 68, 2}, what + " landmarks");
        check_finite(t.landmarks, what + " landmarks");
        lmk.push_back(t.landmarks.to(torch::kFloat) * scale);
        lmkm.push_back(t.landmark_mask.defined() ? t.landmark_mask.to(torch::kFloat).reshape({1, 68})
                                                 : (t.landmarks.abs().sum(-1) != 0).to(torch::kFloat));
      } else {
        lmk.push_back(torch::zeros({1, 68, 2}));
        lmkm.push_back(torch::zeros({1, 68}));
      }
    }
    if (any_iris) {
      if (t.iris.defined()) {
        check_shape(t.iris, {1, 2, 2}, what + " iris");
        iris.push_back(t.iris.to(torch::kFloat) * scale);
        irism.push_back((t.iris.abs().sum(-1) != 0).to(torch::kFloat));
      } else {
        iris.push_back(torch::zeros({1, 2, 2}));
        irism.push_back(torch::zeros({1, 2}));
      }
    }
  }
  p.uv = torch::cat(uv);
  p.normals = torch::cat(n);
  p.uv_mask = torch::cat(uvm);
  p.normal_mask = torch::cat(nm);
  p.fg_mask = torch::cat(fg);
  if (any_bg) p.valid_bg = torch::cat(bg);
  if (any_lmk) p.landmarks = torch::cat(lmk), p.landmark_mask = torch::cat(lmkm);
  if (any_iris) p.iris = torch::cat(iris), p.iris_mask = torch::cat(irism);
  p.corr = uv_correspondences(p.uv, assets_.uv_vertex_uv);
  std::tie(p.identity_prior, p.identity_codes) = identity_prior(targets);
  return p;
}

render::Camera Fitter::camera(const FitParams& params) const {
  render::Camera cam = render::Camera::official(config_.image_size);
  cam.focal = params.focal;
  cam.principal_point = params.principal_point;
  return cam;
}

Fitter::Evaluation Fitter::evaluate(const FitParams& p) const {
  const int64_t b = p.batch_size();
  flame::FlameParams fp;
  fp.shape = p.shape.expand({b, p.shape.size(1)});
  fp.expression = p.expression;
  fp.jaw_pose = p.jaw;
  fp.neck_pose = config_.include_neck ? p.neck : identity_6d(b);
  fp.eye_pose = p.eyes;
  fp.eyelids = p.eyelids;  // undefined in the camera stage, as the official warm-up runs FLAME without eyelids
  const auto rotation = flame::rotation_6d_to_matrix(p.rotation);
  // Official: the contour landmarks use the inverse head rotation (quirk 6), camera rotation = identity.
  fp.landmark_rotation = rotation.transpose(1, 2);
  Evaluation e;
  e.flame = flame_.ptr()->forward(fp);  // forward is not const; the fitter does not change the module
  e.rotation = rotation;
  auto to_world = [&](const torch::Tensor& x) {
    return torch::matmul(x, rotation.transpose(1, 2)) + p.translation.unsqueeze(1);
  };
  e.vertices = to_world(e.flame.vertices);
  e.landmarks = to_world(e.flame.landmarks);
  return e;
}

FitResult Fitter::fit(const std::vector<FitTarget>& targets, const FitCallback& on_step) const {
  return run(prepare(targets), on_step, false, nullptr, FitStages{});
}

FitResult Fitter::fit_from(const std::vector<FitTarget>& targets, const FitParams& start,
                           const FitCallback& on_step) const {
  return fit_stages(prepare(targets), start, FitStages{}, on_step);
}

FitResult Fitter::fit_stages(const PreparedTargets& data, const FitParams& start, const FitStages& stages,
                             const FitCallback& on_step) const {
  const int64_t b = data.batch;
  check_shape(start.shape, {1, config_.n_shape}, "fit_from: start.shape");
  check_shape(start.expression, {b, config_.n_expr}, "fit_from: start.expression");
  check_shape(start.jaw, {b, 6}, "fit_from: start.jaw");
  check_shape(start.neck, {b, 6}, "fit_from: start.neck");
  check_shape(start.eyes, {b, 12}, "fit_from: start.eyes");
  check_shape(start.eyelids, {b, 2}, "fit_from: start.eyelids");
  check_shape(start.rotation, {b, 6}, "fit_from: start.rotation");
  check_shape(start.translation, {b, 3}, "fit_from: start.translation");
  check_shape(start.focal, {1, 1}, "fit_from: start.focal");
  check_shape(start.principal_point, {1, 2}, "fit_from: start.principal_point");
  return run(data, on_step, false, &start, stages);
}

FitResult Fitter::fit_landmarks_only(const std::vector<FitTarget>& targets, const FitCallback& on_step) const {
  return run(prepare(targets), on_step, true, nullptr, FitStages{});
}

FitParams Fitter::padded(const FitParams& q) const {
  auto pad = [](const torch::Tensor& x, int64_t n) {
    return x.size(1) == n ? x : torch::cat({x, torch::zeros({x.size(0), n - x.size(1)}, x.options())}, 1);
  };
  FitParams r = q;
  r.shape = pad(q.shape, flame_->n_shape());
  r.expression = pad(q.expression, flame_->n_expr());
  return r;
}

std::map<std::string, torch::Tensor> Fitter::full_stage_terms(const FitParams& p, const PreparedTargets& data,
                                                              double w_sil, bool landmarks_only) const {
  const int64_t s = data.size;
  PIXEL3DMM_CHECK(p.batch_size() == data.batch, "full_stage_terms: ", p.batch_size(), " parameter rows for ",
                  data.batch, " targets");
  const FitLossConfig& w = config_.loss;
  const UVVertexLossOptions uv_gates{w.delta_uv, w.dist_uv, w.uv_l2};
  const auto i6 = identity_6d(1);
  const bool have_lmk = data.landmarks.defined() && config_.use_landmarks;
  const auto eye_ids = torch::arange(36, 48);
  auto project2d = [&](const render::Camera& cam, const torch::Tensor& pts) {
    return cam.project(pts).slice(-1, 0, 2);
  };
  const FitParams q = padded(p);
  const Evaluation ev = evaluate(q);
  const render::Camera cam = camera(p);
  std::map<std::string, torch::Tensor> terms;
  // landmarks
  if (have_lmk) {
    const auto lmk2d = project2d(cam, ev.landmarks);
    if (landmarks_only) {
      terms["lmk68"] = landmark_loss(lmk2d, data.landmarks, data.landmark_mask, s) * config_.camera.w_landmarks;
    } else {
      terms["lmk_eye2"] = landmark_loss(lmk2d.index_select(1, eye_ids), data.landmarks.index_select(1, eye_ids),
                                        data.landmark_mask.index_select(1, eye_ids), s) *
                          w.landmarks_eyes;
    }
    terms["lmk_eye"] = eyelid_closure_loss(lmk2d, data.landmarks, data.landmark_mask, s) * w.landmarks_eyelids;
    if (w.landmarks_mouth > 0) {
      const auto mouth = torch::arange(48, 68);
      terms["lmk_mouth"] = landmark_loss(lmk2d.index_select(1, mouth), data.landmarks.index_select(1, mouth),
                                         data.landmark_mask.index_select(1, mouth), s) *
                           w.landmarks_mouth;
    }
    if (w.landmarks_mouth_closure > 0)
      terms["lmk_mouth_closure"] =
          mouth_closure_loss(lmk2d, data.landmarks, data.landmark_mask, s) * w.landmarks_mouth_closure;
  }
  if (data.iris.defined() && config_.use_landmarks) {
    const auto iris2d = project2d(cam, ev.vertices.index_select(1, assets_.iris_vertices));
    terms["lmk_iris_left"] = landmark_loss(iris2d.slice(1, 0, 1), data.iris.slice(1, 0, 1),
                                           data.iris_mask.slice(1, 0, 1), s) * w.landmarks_iris;
    terms["lmk_iris_right"] = landmark_loss(iris2d.slice(1, 1, 2), data.iris.slice(1, 1, 2),
                                            data.iris_mask.slice(1, 1, 2), s) * w.landmarks_iris;
  }
  // regularisers (official: sum over dims, mean over batch)
  terms["reg/exp"] = sum_squares(p.expression) * w.reg_exp;
  terms["reg/sym"] = sum_squares(p.eyes.slice(1, 0, 6) - p.eyes.slice(1, 6, 12)) * w.reg_sym;
  terms["reg/jaw"] = sum_squares(p.jaw, i6) * w.reg_jaw;
  terms["reg/neck"] = sum_squares(p.neck, i6) * w.reg_neck;
  terms["reg/eye_left"] = sum_squares(p.eyes.slice(1, 0, 6), i6) * w.reg_eyes;
  terms["reg/eye_right"] = sum_squares(p.eyes.slice(1, 6, 12), i6) * w.reg_eyes;
  // Official: reg/shape pulls toward the MICA code (zero with ignore_mica), reg/shape_general toward zero.
  terms["reg/shape"] = sum_squares(p.shape, data.identity_prior) * w.reg_shape;
  terms["reg/shape_general"] = sum_squares(p.shape) * w.reg_shape_general;
  if (assets_.mirror_index.defined() && w.reg_mirror > 0)
    terms["reg/mirror"] = mirror_loss(ev.flame.v_shaped, assets_.mirror_index) * w.reg_mirror;
  terms["reg/pp"] = sum_squares(p.principal_point) * w.reg_pp;
  // dense terms through the renderer
  if (!landmarks_only) {
    render::RenderRequest req;
    req.mask = data.valid_bg.defined();
    // Normals straight in the FLAME frame: the official code renders the normals of the world-space neck-free
    // mesh and rotates them back per pixel (einsum('bxy,bxhw->byhw', R, n)); vertex normals turn with the mesh,
    // so the normals of the FLAME-space neck-free mesh are the same numbers without a 3 x 3 product per pixel.
    req.normal_vertices = ev.flame.vertices_noneck;
    const render::RenderOutput out = renderer_.render(ev.vertices, cam, req);
    const auto proj = cam.project(ev.vertices.index_select(1, assets_.uv_vertices));
    torch::Tensor visible;
    if (w.occlusion_filter) visible = render::vertex_visibility(proj.detach(), out.depth.detach());
    terms["uv"] = uv_vertex_loss(proj.slice(-1, 0, 2), data.corr, visible, s, uv_gates) * w.uv;
    terms["uv_pixel"] = uv_pixel_loss(data.uv, out.uv, data.uv_mask, w.uv_l2, w.uv_pixel_gate) * w.uv;
    terms["normal"] = normal_loss(data.normals, out.normals, data.normal_mask, out.regions.select(1, 0),
                                  {w.delta_n, w.normal_mask_ksize, w.normal_l2}) *
                      w.normal;
    if (data.valid_bg.defined()) {
      // Official: the mean over the texture's channels (uv_mask_eyes.png's three differ in a few thousand texels).
      const int64_t c = out.mask.size(1);
      auto sil = silhouette_loss(data.fg_mask, out.mask.select(1, 0), data.valid_bg);
      for (int64_t k = 1; k < c; ++k) sil = sil + silhouette_loss(data.fg_mask, out.mask.select(1, k), data.valid_bg);
      terms["sil"] = sil * (w_sil / static_cast<double>(c));
    }
  }
  return terms;
}

FitResult Fitter::run(const PreparedTargets& data, const FitCallback& on_step, bool landmarks_only,
                      const FitParams* start_params, const FitStages& stages) const {
  const auto start = std::chrono::steady_clock::now();
  PIXEL3DMM_CHECK(!landmarks_only || data.landmarks.defined(), "landmark-only fit: the targets have no landmarks");
  const int64_t s = data.size, b = data.batch;
  const FitLossConfig& w = config_.loss;
  // Official start: the identity at the prior (MICA's code), everything else neutral.
  FitParams p = start_params ? start_params->clone()
                             : FitParams::initial(b, config_.n_shape, config_.n_expr, config_.focal_init,
                                                  data.identity_prior);
  FitResult result;
  const UVVertexLossOptions uv_gates{w.delta_uv, w.dist_uv, w.uv_l2};
  auto log_step = [&](const std::string& stage, int step, const std::map<std::string, torch::Tensor>& terms,
                      const torch::Tensor& total) {
    FitLogEntry e{stage, step, item(total), {}};
    for (const auto& [k, v] : terms) e.terms[k] = item(v);
    result.log.push_back(e);
    ++result.iterations;
    return on_step ? on_step(result.log.back()) : true;
  };
  auto project2d = [&](const render::Camera& cam, const torch::Tensor& pts) {
    return cam.project(pts).slice(-1, 0, 2);
  };

  bool stopped = false;
  // One optimisation step that refuses to leave non-finite numbers behind: a non-finite loss or gradient stops
  // before the update, non-finite parameters after it are rolled back, so `p` always holds the last finite state.
  auto guarded_step = [&](const char* stage, int step, const std::map<std::string, torch::Tensor>& terms,
                          const torch::Tensor& total, torch::optim::Adam& opt) {
    std::string fault;
    if (!std::isfinite(item(total))) {
      fault = detail::concat("non-finite loss at ", stage, "-stage step ", step, " (terms: ",
                             non_finite_names(terms, false), ")");
    } else {
      opt.zero_grad();
      total.backward();
      if (std::string bad = non_finite_names(p.named(), true); !bad.empty()) {
        fault = detail::concat("non-finite gradient at ", stage, "-stage step ", step, " (", bad, ")");
      } else {
        const FitParams before = p.clone();
        opt.step();
        if (std::string bad_p = non_finite_names(p.named(), false); !bad_p.empty()) {
          torch::NoGradGuard no_grad;
          const auto now = p.named();
          for (const auto& [name, t] : before.named()) now.at(name).copy_(t);
          fault = detail::concat("non-finite parameters after ", stage, "-stage step ", step, " (", bad_p, ")");
        }
      }
    }
    if (fault.empty()) return true;
    if (!config_.stop_on_numerical_fault) throw NumericalFault(fault);
    result.fault = fault;
    stopped = true;
    return false;
  };
  // ---- stage A: camera warm-up (official optimize_camera) ----
  if (stages.camera) {
    const CameraStageConfig& c = config_.camera;
    p.translation.requires_grad_(true);
    p.rotation.requires_grad_(true);
    p.focal.requires_grad_(true);
    p.principal_point.requires_grad_(true);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.push_back(group(p.translation, c.lr_t));
    groups.push_back(group(p.rotation, c.lr_R));
    groups.push_back(group(p.focal, c.lr_focal));
    groups.push_back(group(p.principal_point, c.lr_pp));
    torch::optim::Adam opt(std::move(groups));
    const int decay_at = static_cast<int>(c.lr_decay_at * c.steps);
    const bool have_lmk = data.landmarks.defined() && config_.use_landmarks;
    for (int k = 0; k < c.steps; ++k) {
      if (k == decay_at && k > 0) set_learning_rate(opt, c.lr_decay);
      FitParams q = padded(p);
      q.eyelids = torch::Tensor();
      const Evaluation ev = evaluate(q);
      const render::Camera cam = camera(p);
      std::map<std::string, torch::Tensor> terms;
      terms["reg/pp"] = p.principal_point.pow(2).sum();
      // Landmarks first, then UV correspondences (official: k <= 250). Without landmarks the UV term runs from the
      // start (the official code would idle here with an all-zero landmark mask).
      if (have_lmk && k < c.landmark_steps) {
        terms["lmk68"] = landmark_loss(project2d(cam, ev.landmarks), data.landmarks, data.landmark_mask, s) *
                         c.w_landmarks;
      } else if (!landmarks_only) {
        const auto proj = project2d(cam, ev.vertices.index_select(1, assets_.uv_vertices));
        UVVertexLossOptions l1 = uv_gates;
        l1.l2 = false;
        terms["uv"] = uv_vertex_loss(proj, data.corr, {}, s, l1) * c.w_uv;
      } else {
        terms["lmk68"] = landmark_loss(project2d(cam, ev.landmarks), data.landmarks, data.landmark_mask, s) *
                         c.w_landmarks;
      }
      torch::Tensor total = torch::zeros({});
      for (const auto& [name, v] : terms) total = total + v;
      if (!guarded_step("camera", k, terms, total, opt)) break;
      if (!log_step("camera", k, terms, total)) {
        stopped = true;  // the callback ends the whole fit, not just this stage
        break;
      }
    }
  }

  // ---- stage B: full fit (official optimize_color) ----
  if (!stopped) {
    const FitLearningRates& lr = config_.lr;
    for (auto* t : {&p.expression, &p.jaw, &p.neck, &p.eyes, &p.eyelids, &p.translation, &p.rotation})
      t->requires_grad_(true);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.push_back(group(p.expression, lr.exp));
    groups.push_back(group(p.eyes, lr.eyes));
    groups.push_back(group(p.eyelids, lr.eyelids));
    groups.push_back(group(p.translation, lr.t));
    groups.push_back(group(p.rotation, lr.R));
    if (stages.optimise_shape) {
      p.shape.requires_grad_(true);
      groups.push_back(group(p.shape, lr.shape));
    } else {
      p.shape = p.shape.detach();
    }
    groups.push_back(group(p.jaw, lr.jaw));
    if (config_.include_neck) groups.push_back(group(p.neck, lr.neck));
    if (config_.optimise_camera_intrinsics) {
      p.focal.requires_grad_(true);
      p.principal_point.requires_grad_(true);
      groups.push_back(group(p.focal, lr.focal));
      groups.push_back(group(p.principal_point, lr.pp));
    } else {
      p.focal = p.focal.detach();
      p.principal_point = p.principal_point.detach();
    }
    torch::optim::Adam opt(std::move(groups));
    // Official first-frame rule: the silhouette weight is divided by 10.
    const double w_sil = stages.first_frame ? w.silhouette / 10.0 : w.silhouette;
    const int iters = stages.iters >= 0 ? stages.iters : config_.iters;
    // Official early stopping: |loss_p - loss_p-1| in a ring buffer of 10 started at 100.
    std::vector<double> ring(10, 100.0);
    double previous = 0.0;
    for (int k = 0; k < iters; ++k) {
      const auto terms = full_stage_terms(p, data, w_sil, landmarks_only);
      torch::Tensor total = torch::zeros({});
      for (const auto& [name, v] : terms) total = total + v;
      if (!guarded_step("full", k, terms, total, opt)) break;
      const double value = item(total);  // finite: guarded_step stops on a non-finite loss
      if (!log_step("full", k, terms, total)) break;
      if (stages.early_stopping_delta > 0) {
        if (k > 0) ring[k % ring.size()] = std::abs(value - previous);
        previous = value;
        double mean = 0.0;
        for (double d : ring) mean += d / ring.size();
        if (k > 10 && mean < stages.early_stopping_delta) break;
      }
    }
  }

  // ---- the result ----
  torch::NoGradGuard no_grad;
  result.params = p.clone();
  const FitParams q = padded(result.params);
  const Evaluation ev = evaluate(q);
  result.camera = camera(result.params);
  result.vertices = ev.vertices;
  result.vertices_flame = ev.flame.vertices;
  result.landmarks2d = project2d(result.camera, ev.landmarks);
  if (data.identity_prior.defined()) result.identity_prior = data.identity_prior.clone();
  flame::FlameParams neutral;
  neutral.shape = q.shape;
  result.canonical = flame_.ptr()->forward(neutral).v_shaped;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace pixel3dmm::fit
