#include "pixel3dmm/flame/flame.h"

#include <torch/torch.h>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/flame/lbs.h"

namespace pixel3dmm::flame {
namespace {

/// Checks a B x width parameter (when defined) against the batch and the module's dtype.
void check_param(const torch::Tensor& t, const char* name, int64_t B, int64_t width, torch::ScalarType dtype) {
  if (!t.defined()) return;
  check_shape(t, {B, width}, std::string("Flame.forward: ") + name);
  check_dtype(t, dtype, std::string("Flame.forward: ") + name);
}

}  // namespace

FlameImpl::FlameImpl(FlameModel model, FlameOptions options)
    : model_(std::make_shared<const FlameModel>(std::move(model))), options_(options) {
  model_->validate();
  reset();
}

FlameImpl::FlameImpl(const std::string& model_path, FlameOptions options)
    : FlameImpl(FlameModel::load(model_path), options) {}

void FlameImpl::reset() {
  const FlameModel& m = *model_;
  PIXEL3DMM_CHECK(m.n_joints() == kNumJoints, m.source, ": Flame needs FLAME's 5 joints (root, neck, jaw, eyes), found ",
                  m.n_joints());
  const auto dtype = options_.dtype();
  PIXEL3DMM_CHECK(dtype == torch::kFloat || dtype == torch::kDouble,
                  "FlameOptions::dtype: expected Float or Double, found ", c10::toString(dtype));
  const int64_t S = m.n_shape_basis, E = m.n_expr_basis(), V = m.n_vertices(), J = kNumJoints;
  n_shape_ = options_.n_shape() < 0 ? S : options_.n_shape();
  n_expr_ = options_.n_expr() < 0 ? E : options_.n_expr();
  PIXEL3DMM_CHECK(n_shape_ <= S, "FlameOptions::n_shape: expected at most ", S, " (the identity components in ",
                  m.source, "), found ", n_shape_);
  PIXEL3DMM_CHECK(n_expr_ <= E, "FlameOptions::n_expr: expected at most ", E, " (the expression components in ",
                  m.source, "), found ", n_expr_);
  parents_ = m.parents();

  const auto cast = [&](const torch::Tensor& t) { return t.to(dtype).contiguous(); };
  // Bases as K x 3V rows so that a batch of coefficients is one GEMM; joints are linear in the coefficients, so
  // the regressor is applied to the bases once here instead of to v_shaped at every call.
  const auto dirs = m.shapedirs.permute({2, 0, 1}).reshape({m.n_blendshapes(), 3 * V});          // K x 3V
  const auto jdirs = torch::einsum("jv,vck->kjc", {m.J_regressor, m.shapedirs}).reshape({-1, 3 * J});  // K x 3J
  v_template_ = register_buffer("v_template", cast(m.v_template.reshape({1, 3 * V})));
  shape_dirs_ = register_buffer("shape_dirs", cast(dirs.narrow(0, 0, n_shape_)));
  expr_dirs_ = register_buffer("expr_dirs", cast(dirs.narrow(0, S, n_expr_)));
  pose_dirs_ = register_buffer("pose_dirs", cast(m.posedirs.reshape({3 * V, -1}).t()));
  j_template_ = register_buffer("j_template", cast(torch::matmul(m.J_regressor, m.v_template).reshape({1, 3 * J})));
  j_shape_dirs_ = register_buffer("j_shape_dirs", cast(jdirs.narrow(0, 0, n_shape_)));
  j_expr_dirs_ = register_buffer("j_expr_dirs", cast(jdirs.narrow(0, S, n_expr_)));
  lbs_weights_t_ = register_buffer("lbs_weights_t", cast(m.lbs_weights.t()));
  eyelid_dirs_ = torch::Tensor();
  if (m.has_eyelids())
    eyelid_dirs_ = register_buffer("eyelid_dirs", cast(torch::stack({m.l_eyelid.reshape({-1}), m.r_eyelid.reshape({-1})})));
  faces_ = m.faces.to(torch::kLong).contiguous();
  static_vidx_ = static_bary_ = dynamic_vidx_ = dynamic_bary_ = torch::Tensor();
  if (m.has_landmarks()) {
    static_vidx_ = faces_.index_select(0, m.static_lmk_faces_idx);
    static_bary_ = register_buffer("static_lmk_bary", cast(m.static_lmk_bary_coords));
  }
  if (m.has_dynamic_landmarks()) {
    const auto& idx = m.dynamic_lmk_faces_idx;
    dynamic_vidx_ = faces_.index_select(0, idx.reshape({-1})).view({idx.size(0), idx.size(1), 3});
    dynamic_bary_ = register_buffer("dynamic_lmk_bary", cast(m.dynamic_lmk_bary_coords));
  }
}

FlameOutput FlameImpl::forward(const FlameParams& p) {
  const auto dtype = v_template_.scalar_type();
  const auto opts = v_template_.options();
  const int64_t V = model_->n_vertices(), J = kNumJoints;
  const RotationRep rep = options_.rotation();
  const int64_t rs = rotation_size(rep);

  int64_t B = -1;
  for (const auto* t : {&p.shape, &p.expression, &p.global_rotation, &p.neck_pose, &p.jaw_pose, &p.eye_pose,
                        &p.eyelids, &p.translation, &p.landmark_rotation})
    if (t->defined() && t->dim() >= 1) {
      B = t->size(0);
      break;
    }
  if (B < 0) B = 1;
  check_param(p.shape, "shape", B, n_shape_, dtype);
  check_param(p.expression, "expression", B, n_expr_, dtype);
  check_param(p.global_rotation, "global_rotation", B, rs, dtype);
  check_param(p.neck_pose, "neck_pose", B, rs, dtype);
  check_param(p.jaw_pose, "jaw_pose", B, rs, dtype);
  check_param(p.eye_pose, "eye_pose", B, 2 * rs, dtype);
  check_param(p.eyelids, "eyelids", B, 2, dtype);
  check_param(p.translation, "translation", B, 3, dtype);
  if (p.landmark_rotation.defined()) {
    check_shape(p.landmark_rotation, {B, 3, 3}, "Flame.forward: landmark_rotation");
    check_dtype(p.landmark_rotation, dtype, "Flame.forward: landmark_rotation");
  }
  PIXEL3DMM_CHECK(!p.eyelids.defined() || eyelid_dirs_.defined(), "Flame.forward: eyelids given but ", model_->source,
                  " has no eyelid blendshapes (l_eyelid / r_eyelid)");

  // Blendshapes and rest joints: one pass per basis (separate, so a frozen identity costs no backward pass).
  torch::Tensor v_flat = v_template_, j_flat = j_template_;  // 1 x 3V, 1 x 3J until a basis is added
  if (p.shape.defined() && n_shape_ > 0) {
    v_flat = blend(p.shape, shape_dirs_, v_flat);
    j_flat = blend(p.shape, j_shape_dirs_, j_flat);
  }
  if (p.expression.defined() && n_expr_ > 0) {
    v_flat = blend(p.expression, expr_dirs_, v_flat);
    j_flat = blend(p.expression, j_expr_dirs_, j_flat);
  }
  v_flat = v_flat.expand({B, 3 * V});
  j_flat = j_flat.expand({B, 3 * J});

  // All five rotations converted in one call: (B, 5, rs) -> (B, 5, 3, 3).
  const auto identity = identity_rotation(1, rep, opts).view({1, 1, rs}).expand({B, 1, rs});
  const auto joint_rot = [&](const torch::Tensor& t) { return t.defined() ? t.reshape({B, 1, rs}) : identity; };
  const auto eyes = p.eye_pose.defined() ? p.eye_pose.reshape({B, 2, rs}) : identity.expand({B, 2, rs});
  const auto jaw = options_.zero_jaw() ? identity : joint_rot(p.jaw_pose);
  const auto R = rotation_to_matrix(
      torch::cat({joint_rot(p.global_rotation), joint_rot(p.neck_pose), jaw, eyes}, 1), rep);  // B x 5 x 3 x 3

  // Both LBS passes of the official forward (full pose, neck at rest) as one batch of 2B.
  const int64_t n_pass = options_.compute_noneck() ? 2 : 1;
  torch::Tensor R_all = R, v_all = v_flat, j_all = j_flat;
  if (n_pass == 2) {
    const auto eye3 = torch::eye(3, opts).expand({B, 1, 3, 3});
    R_all = torch::cat({R, torch::cat({R.narrow(1, 0, 1), eye3, R.narrow(1, 2, 3)}, 1)}, 0);
    v_all = torch::cat({v_flat, v_flat}, 0);
    j_all = torch::cat({j_flat, j_flat}, 0);
  }
  const auto v_posed = blend(pose_feature(R_all), pose_dirs_, v_all).view({n_pass * B, V, 3});
  const RigidTransforms rt = rigid_transforms(R_all, j_all.view({n_pass * B, J, 3}), parents_);
  const auto skinned = skin_transposed(v_posed, rt.relative, lbs_weights_t_);

  FlameOutput out;
  out.v_shaped = v_flat.reshape({B, V, 3});
  out.vertices = skinned.narrow(0, 0, B);
  out.transforms = rt.relative.narrow(0, 0, B);
  out.joints = rt.posed_joints.narrow(0, 0, B);
  if (n_pass == 2) out.vertices_noneck = skinned.narrow(0, B, B);
  if (p.eyelids.defined())  // after skinning, in the posed frame (official FLAME.py)
    out.vertices = blend(p.eyelids, eyelid_dirs_, out.vertices.reshape({B, 3 * V})).view({B, V, 3});
  if (p.translation.defined()) {
    const auto t = p.translation.unsqueeze(1);
    out.vertices = out.vertices + t;
    out.joints = out.joints + t;
    if (out.vertices_noneck.defined()) out.vertices_noneck = out.vertices_noneck + t;
  }

  if (static_vidx_.defined()) {
    auto landmarks = barycentric_points(out.vertices, static_vidx_, static_bary_);
    if (dynamic_vidx_.defined()) {
      const auto root = p.landmark_rotation.defined() ? p.landmark_rotation : R.select(1, kRoot);
      out.contour_bin = dynamic_contour_bin(small_matmul(root, R.select(1, kNeck)), dynamic_vidx_.size(0));
      const auto contour = barycentric_points(out.vertices, dynamic_vidx_.index_select(0, out.contour_bin),
                                              dynamic_bary_.index_select(0, out.contour_bin));
      landmarks = torch::cat({contour, landmarks}, 1);
    }
    out.landmarks = landmarks;
  }
  return out;
}

FlameParams FlameImpl::neutral_params(int64_t batch_size) const {
  const auto opts = v_template_.options();
  const RotationRep rep = options_.rotation();
  FlameParams p;
  p.shape = torch::zeros({batch_size, n_shape_}, opts);
  p.expression = torch::zeros({batch_size, n_expr_}, opts);
  p.global_rotation = identity_rotation(batch_size, rep, opts);
  p.neck_pose = identity_rotation(batch_size, rep, opts);
  p.jaw_pose = identity_rotation(batch_size, rep, opts);
  p.eye_pose = identity_rotation(batch_size, rep, opts).repeat({1, 2});
  if (eyelid_dirs_.defined()) p.eyelids = torch::zeros({batch_size, 2}, opts);
  p.translation = torch::zeros({batch_size, 3}, opts);
  return p;
}

void FlameImpl::pretty_print(std::ostream& stream) const {
  stream << "pixel3dmm::flame::Flame(V=" << model_->n_vertices() << ", shape=" << n_shape_ << ", expr=" << n_expr_
         << ", rotation=" << to_string(options_.rotation()) << ", dtype=" << c10::toString(v_template_.scalar_type())
         << (eyelid_dirs_.defined() ? ", eyelids" : "") << (static_vidx_.defined() ? ", landmarks" : "") << ")";
}

}  // namespace pixel3dmm::flame
