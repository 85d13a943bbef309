// FLAME: rotations, the synthetic model, the forward pass (identities, batching, representations, eyelids,
// dynamic contour), finite-difference gradients, file round trips and loading errors.
#include <cmath>
#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/flame/lbs.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::flame;
using namespace pixel3dmm::synth;
using pixel3dmm::test::max_abs_diff;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

/// A small model shared by the tests (built once: ~50 ms).
const FlameModel& small_model() {
  static const FlameModel m = synthetic_flame(SyntheticFlameOptions().vertices(600).n_shape(8).n_expr(6).seed(3));
  return m;
}

torch::Tensor random_rotations(int64_t n, double scale, RotationRep rep, torch::Dtype dtype, int64_t seed) {
  torch::manual_seed(seed);
  const auto aa = torch::randn({n, 3}, torch::kDouble) * scale;
  return matrix_to_rotation(axis_angle_to_matrix(aa), rep).to(dtype);
}

/// Random parameters for every input (rotations of up to ~0.3 rad).
FlameParams random_params(const FlameImpl& f, int64_t B, int64_t seed) {
  const auto rep = f.options().rotation();
  const auto dt = f.dtype();
  torch::manual_seed(seed);
  FlameParams p;
  p.shape = torch::randn({B, f.n_shape()}, dt);
  p.expression = torch::randn({B, f.n_expr()}, dt);
  p.eyelids = torch::rand({B, 2}, dt);
  p.translation = torch::randn({B, 3}, dt) * 0.05;
  p.global_rotation = random_rotations(B, 0.3, rep, dt, seed + 1);
  p.neck_pose = random_rotations(B, 0.3, rep, dt, seed + 2);
  p.jaw_pose = random_rotations(B, 0.2, rep, dt, seed + 3);
  p.eye_pose =
      torch::cat({random_rotations(B, 0.2, rep, dt, seed + 4), random_rotations(B, 0.2, rep, dt, seed + 5)}, 1);
  return p;
}

torch::Tensor slice_or_undef(const torch::Tensor& t, int64_t i) { return t.defined() ? t.narrow(0, i, 1) : t; }

}  // namespace

// ------------------------------------------------------------------------------------------------------------------
TEST_CASE("rotation conversions round-trip, including near 0 and pi", "[flame][rotation]") {
  torch::manual_seed(0);
  auto aa = torch::randn({64, 3}, torch::kDouble);
  aa = aa / aa.norm(2, -1, true) * torch::rand({64, 1}, torch::kDouble) * 3.1;  // angles in [0, 3.1)
  aa = torch::cat({aa, torch::zeros({1, 3}, torch::kDouble), torch::tensor({{1e-9, -2e-9, 0.0}}, torch::kDouble),
                   torch::tensor({{0.0, 3.14159, 0.0}}, torch::kDouble)});
  const auto R = axis_angle_to_matrix(aa);
  const auto eye = torch::eye(3, torch::kDouble).expand_as(R);
  require_close(torch::matmul(R, R.transpose(-1, -2)), eye, 1e-12);  // orthonormal
  REQUIRE(torch::allclose(torch::linalg_det(R), torch::ones({R.size(0)}, torch::kDouble)));
  require_close(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, 1e-9);
  require_close(matrix_to_axis_angle(R).narrow(0, 0, 64), aa.narrow(0, 0, 64), 1e-9);
  require_close(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, 1e-12);
  require_close(quaternion_to_matrix(matrix_to_quaternion(R)), R, 1e-12);
  // 6D is the first two ROWS.
  require_close(matrix_to_rotation_6d(R).narrow(-1, 0, 3), R.select(-2, 0), 0.0);
  require_close(matrix_to_rotation_6d(R).narrow(-1, 3, 3), R.select(-2, 1), 0.0);
  // A rotation about +z by 90 degrees maps x to y.
  const auto Rz = axis_angle_to_matrix(torch::tensor({0.0, 0.0, M_PI / 2}, torch::kDouble));
  require_close(torch::matmul(Rz, torch::tensor({1.0, 0.0, 0.0}, torch::kDouble)),
                torch::tensor({0.0, 1.0, 0.0}, torch::kDouble), 1e-15);
  // Gram-Schmidt of a non-orthonormal 6D vector (the official formula).
  const auto d6 = torch::tensor({2.0, 0.0, 0.0, 1.0, 3.0, 0.0}, torch::kDouble);
  require_close(rotation_6d_to_matrix(d6), torch::eye(3, torch::kDouble), 1e-15);
  require_throws_with<ValueError>([] { axis_angle_to_matrix(torch::zeros({2, 4})); }, {"[..., 3]", "[2, 4]"});
}

TEST_CASE("axis-angle gradient is finite and exact at zero", "[flame][rotation]") {
  auto v = torch::zeros({3}, torch::TensorOptions(torch::kDouble).requires_grad(true));
  const auto w = torch::tensor({{0.3, -1.0, 0.5}, {0.7, 0.2, -0.4}, {1.1, 0.0, 0.9}}, torch::kDouble);
  const auto loss = (axis_angle_to_matrix(v) * w).sum();
  const auto g = torch::autograd::grad({loss}, {v})[0];
  // dR/dv_k at 0 is the generator [e_k]_x; d(sum w.R)/dv = (w21 - w12, w02 - w20, w10 - w01).
  const auto expected = torch::tensor({0.0 - (-0.4), 0.5 - 1.1, 0.7 - (-1.0)}, torch::kDouble);
  require_close(g, expected, 1e-12);
}

// ------------------------------------------------------------------------------------------------------------------
TEST_CASE("synthetic model has FLAME's layout at 5023 vertices", "[flame][synthetic]") {
  const SyntheticLayout L = synthetic_layout(5023);
  REQUIRE(L.head_vertices() == 3931);
  REQUIRE(L.eye_vertices() == 546);
  REQUIRE(L.n_faces() == 9905);
  const FlameModel m = synthetic_flame(SyntheticFlameOptions().n_shape(4).n_expr(3));
  REQUIRE(m.n_vertices() == 5023);
  REQUIRE(m.n_faces() == 9905);
  REQUIRE(m.n_joints() == 5);
  REQUIRE(m.shapedirs.sizes() == std::vector<int64_t>{5023, 3, 7});
  REQUIRE(m.posedirs.sizes() == std::vector<int64_t>{5023, 3, 36});
  REQUIRE(m.static_lmk_faces_idx.size(0) == 51);
  REQUIRE(m.dynamic_lmk_faces_idx.sizes() == std::vector<int64_t>{79, 17});
  REQUIRE(m.parents() == std::vector<int64_t>{-1, 0, 1, 1, 1});
  // The eyeballs are the last two vertex ranges, left (+x) first, like FLAME's 3931-4476 / 4477-5022.
  REQUIRE(m.masks.at("left_eyeball").min().item<int64_t>() == 3931);
  REQUIRE(m.masks.at("right_eyeball").max().item<int64_t>() == 5022);
  REQUIRE(m.v_template.index_select(0, m.masks.at("left_eyeball")).select(1, 0).min().item<double>() > 0.0);
  for (const char* name : {"face", "left_eyeball", "right_eyeball", "eye_region", "nose", "lips", "forehead", "neck",
                           "scalp", "boundary", "left_ear", "right_ear"}) {
    INFO(name);
    REQUIRE(m.masks.count(name) == 1);
    REQUIRE(m.masks.at(name).numel() > 0);
  }
  // Metre scale: a head about 15 cm wide and 25 cm tall.
  const auto extent = std::get<0>(m.v_template.max(0)) - std::get<0>(m.v_template.min(0));
  REQUIRE(extent[0].item<double>() > 0.12);
  REQUIRE(extent[0].item<double>() < 0.2);
  REQUIRE(extent[1].item<double>() > 0.2);
  REQUIRE(extent[1].item<double>() < 0.3);
}

TEST_CASE("synthetic model is deterministic, seeded, symmetric and consistently oriented", "[flame][synthetic]") {
  auto opts = SyntheticFlameOptions().vertices(600).n_shape(8).n_expr(6);
  const FlameModel a = synthetic_flame(opts.seed(1)), b = synthetic_flame(opts.seed(1)),
                   c = synthetic_flame(opts.seed(2));
  REQUIRE(torch::equal(a.shapedirs, b.shapedirs));
  REQUIRE(torch::equal(a.posedirs, b.posedirs));
  REQUIRE(!torch::allclose(a.shapedirs, c.shapedirs));
  REQUIRE(torch::equal(a.v_template, c.v_template));  // the seed only drives the bases
  // Mirror index: v[mirror[i]] == (-x, y, z) and an involution.
  const auto mirrored = a.v_template.index_select(0, a.mirror_index) * torch::tensor({-1.0, 1.0, 1.0}, torch::kDouble);
  require_close(mirrored, a.v_template, 1e-12);
  REQUIRE(torch::equal(a.mirror_index.index_select(0, a.mirror_index), torch::arange(a.n_vertices())));
  // Outward normals: every eyeball encloses a positive volume; the head's faces point away from its axis.
  const auto tri = a.v_template.index_select(0, a.faces.reshape({-1})).view({-1, 3, 3});
  for (const char* eye : {"left_eyeball", "right_eyeball"}) {
    const auto idx = a.masks.at(eye);
    const auto centre = a.v_template.index_select(0, idx).mean(0);
    const auto in_eye = (a.faces.select(1, 0) >= idx.min()) & (a.faces.select(1, 0) <= idx.max());
    const auto t = tri.index({in_eye}) - centre;
    const double vol = (t.select(1, 0) * torch::cross(t.select(1, 1), t.select(1, 2), -1)).sum().item<double>() / 6;
    const double r = (a.v_template.index_select(0, idx) - centre).norm(2, -1).mean().item<double>();
    INFO(eye << " volume " << vol);
    REQUIRE(vol > 0.8 * 4.0 / 3.0 * M_PI * r * r * r);
  }
  const auto head = tri.index({a.faces.select(1, 0) < a.masks.at("left_eyeball").min()});
  const auto normal = torch::cross(head.select(1, 1) - head.select(1, 0), head.select(1, 2) - head.select(1, 0), -1);
  const auto away = head.mean(1) * torch::tensor({1.0, 0.0, 1.0}, torch::kDouble);  // from the vertical axis
  REQUIRE(((normal * away).sum(-1) > 0).to(torch::kDouble).mean().item<double>() > 0.95);
  // The J_regressor puts each eye joint at its eyeball's centre.
  const auto J = torch::matmul(a.J_regressor, a.v_template);
  const auto left_idx = a.masks.at("left_eyeball");
  const auto poles = a.v_template.index_select(0, torch::stack({left_idx.min(), left_idx.max()}));
  require_close(J[3], poles.mean(0), 1e-12);  // the centre between the front and back poles
  // Skinning weights are a partition of unity.
  require_close(a.lbs_weights.sum(1), torch::ones({a.n_vertices()}, torch::kDouble), 1e-12);
}

TEST_CASE("synthetic landmarks sit on the face and the contour table slides with yaw", "[flame][synthetic]") {
  const FlameModel& m = small_model();
  Flame flame(m, FlameOptions().dtype(torch::kDouble));
  const auto out = flame->forward(flame->neutral_params(1));
  const auto lm = out.landmarks[0];
  REQUIRE(lm.size(0) == 68);
  // iBUG order: contour 0..16 from image-left (-x) to image-right, chin (8) lowest; eyes above the mouth.
  REQUIRE(lm[0][0].item<double>() < -0.05);
  REQUIRE(lm[16][0].item<double>() > 0.05);
  REQUIRE(lm[8][1].item<double>() < lm[57][1].item<double>());
  REQUIRE(lm[36][1].item<double>() > lm[48][1].item<double>());
  REQUIRE(lm[30][2].item<double>() > lm[36][2].item<double>());  // the nose tip is in front of the eyes
  // Left/right pairs mirror each other.
  for (auto [i, j] : std::vector<std::pair<int, int>>{{0, 16}, {36, 45}, {39, 42}, {48, 54}, {17, 26}}) {
    INFO(i << " <-> " << j);
    REQUIRE(std::abs(lm[i][0].item<double>() + lm[j][0].item<double>()) < 2e-3);
    REQUIRE(std::abs(lm[i][1].item<double>() - lm[j][1].item<double>()) < 2e-3);
  }
  // At yaw +30 degrees (bin 69) the +x half of the contour (9..16) has moved toward the front.
  const auto row0 = barycentric_points(m.v_template.unsqueeze(0), m.faces.index_select(0, m.dynamic_lmk_faces_idx[0]),
                                       m.dynamic_lmk_bary_coords[0]);
  const auto row69 = barycentric_points(m.v_template.unsqueeze(0), m.faces.index_select(0, m.dynamic_lmk_faces_idx[69]),
                                        m.dynamic_lmk_bary_coords[69]);
  require_close(row0[0], lm.narrow(0, 0, 17), 1e-12);
  REQUIRE(row69[0][16][2].item<double>() > row0[0][16][2].item<double>() + 0.01);
  require_close(row69[0].narrow(0, 0, 8), row0[0].narrow(0, 0, 8), 1e-12);  // the visible side stays
}

// ------------------------------------------------------------------------------------------------------------------
TEST_CASE("zero parameters give the template", "[flame]") {
  const FlameModel& m = small_model();
  for (auto rep : {RotationRep::SixD, RotationRep::AxisAngle}) {
    Flame flame(m, FlameOptions().dtype(torch::kDouble).rotation(rep));
    const auto expected = m.v_template.unsqueeze(0).expand({2, -1, -1});
    const auto out = flame->forward(flame->neutral_params(2));
    require_close(out.vertices, expected, 1e-12);
    require_close(out.vertices_noneck, expected, 1e-12);
    require_close(out.v_shaped, expected, 1e-12);
    require_close(out.joints, torch::matmul(m.J_regressor, m.v_template).unsqueeze(0).expand({2, -1, -1}), 1e-12);
    require_close(out.transforms, torch::eye(4, torch::kDouble).expand({2, 5, 4, 4}), 1e-12);
    // Omitted inputs mean the same thing.
    require_close(flame->forward(FlameParams{}).vertices, expected.narrow(0, 0, 1), 1e-12);
  }
  // float32 too.
  Flame flame32(m);
  require_close(flame32->forward(FlameParams{}).vertices, m.v_template.unsqueeze(0), 1e-6);
  REQUIRE(flame32->forward(FlameParams{}).vertices.scalar_type() == torch::kFloat);
}

TEST_CASE("blendshapes, translation and eyelids are linear and added where the official forward adds them", "[flame]") {
  const FlameModel& m = small_model();
  Flame flame(m, FlameOptions().dtype(torch::kDouble));
  const int64_t S = m.n_shape_basis;
  FlameParams p = random_params(*flame, 1, 11);
  p.eyelids = torch::tensor({{0.7, -0.3}}, torch::kDouble);
  const auto out = flame->forward(p);
  // v_shaped = template + identity + expression offsets.
  const auto expected_shaped = m.v_template + torch::einsum("vck,k->vc", {m.shapedirs.narrow(2, 0, S), p.shape[0]}) +
                               torch::einsum("vck,k->vc", {m.shapedirs.narrow(2, S, 6), p.expression[0]});
  require_close(out.v_shaped[0], expected_shaped, 1e-12);
  // Eyelids are added after skinning, unrotated; vertices_noneck carries none.
  FlameParams q = p;
  q.eyelids = torch::Tensor();
  const auto base = flame->forward(q);
  require_close(out.vertices - base.vertices, (0.7 * m.l_eyelid - 0.3 * m.r_eyelid).unsqueeze(0), 1e-12);
  require_close(out.vertices_noneck, base.vertices_noneck, 0.0);
  // vertices_noneck == the full pose with the neck at rest; translation moves every posed output.
  FlameParams r = q;
  r.neck_pose = identity_rotation(1, RotationRep::SixD, torch::kDouble);
  const auto noneck = flame->forward(r);
  require_close(base.vertices_noneck, noneck.vertices, 1e-12);
  r.translation = torch::zeros({1, 3}, torch::kDouble);
  const auto untranslated = flame->forward(r);
  require_close(noneck.vertices - untranslated.vertices, q.translation.unsqueeze(1).expand_as(noneck.vertices), 1e-12);
  require_close(noneck.joints - untranslated.joints, q.translation.unsqueeze(1).expand({1, 5, 3}), 1e-12);
  require_close(noneck.landmarks - untranslated.landmarks, q.translation.unsqueeze(1).expand({1, 68, 3}), 1e-12);
  // The transforms do not include the translation (as the official A).
  require_close(noneck.transforms, untranslated.transforms, 0.0);
}

TEST_CASE("the module matches the free lbs() and each joint moves its own region", "[flame]") {
  const FlameModel& m = small_model();
  Flame flame(m, FlameOptions().dtype(torch::kDouble).rotation(RotationRep::AxisAngle).compute_noneck(false));
  const FlameParams p = random_params(*flame, 3, 5);
  const auto out = flame->forward(p);
  REQUIRE(!out.vertices_noneck.defined());
  const auto R =
      axis_angle_to_matrix(torch::cat({p.global_rotation, p.neck_pose, p.jaw_pose, p.eye_pose}, 1).view({3, 5, 3}));
  const auto J = torch::einsum("jv,bvc->bjc", {m.J_regressor, out.v_shaped});
  const auto posedirs = m.posedirs.reshape({-1, 36}).t();
  const auto ref = lbs(out.v_shaped, J, R, posedirs, m.parents(), m.lbs_weights);
  const auto eyelid = torch::einsum("bk,kvc->bvc", {p.eyelids, torch::stack({m.l_eyelid, m.r_eyelid})});
  require_close(out.vertices, ref.vertices + eyelid + p.translation.unsqueeze(1), 1e-12);
  require_close(out.transforms, ref.transforms, 1e-12);
  // Rotating only the left eye moves exactly the left eyeball.
  FlameParams e = flame->neutral_params(1);
  e.eye_pose = torch::tensor({{0.0, 0.4, 0.0, 0.0, 0.0, 0.0}}, torch::kDouble);
  const auto moved = (flame->forward(e).vertices[0] - m.v_template).norm(2, -1) > 1e-9;
  const auto left = torch::zeros({m.n_vertices()}, torch::kBool).index_fill_(0, m.masks.at("left_eyeball"), true);
  REQUIRE(torch::equal(moved, left));
}

TEST_CASE("a batch of 16 equals 16 single calls", "[flame]") {
  const FlameModel& m = small_model();
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    Flame flame(m, FlameOptions().dtype(dtype));
    const FlameParams p = random_params(*flame, 16, 21);
    const auto batch = flame->forward(p);
    const double tol = dtype == torch::kDouble ? 1e-12 : 2e-6;
    for (int64_t i = 0; i < 16; ++i) {
      FlameParams one;
      one.shape = slice_or_undef(p.shape, i);
      one.expression = slice_or_undef(p.expression, i);
      one.global_rotation = slice_or_undef(p.global_rotation, i);
      one.neck_pose = slice_or_undef(p.neck_pose, i);
      one.jaw_pose = slice_or_undef(p.jaw_pose, i);
      one.eye_pose = slice_or_undef(p.eye_pose, i);
      one.eyelids = slice_or_undef(p.eyelids, i);
      one.translation = slice_or_undef(p.translation, i);
      const auto single = flame->forward(one);
      require_close(single.vertices, batch.vertices.narrow(0, i, 1), tol);
      require_close(single.vertices_noneck, batch.vertices_noneck.narrow(0, i, 1), tol);
      require_close(single.landmarks, batch.landmarks.narrow(0, i, 1), tol);
      require_close(single.joints, batch.joints.narrow(0, i, 1), tol);
    }
  }
}

TEST_CASE("6D and axis-angle parameters give the same mesh", "[flame]") {
  const FlameModel& m = small_model();
  Flame f6(m, FlameOptions().dtype(torch::kDouble).rotation(RotationRep::SixD));
  Flame faa(m, FlameOptions().dtype(torch::kDouble).rotation(RotationRep::AxisAngle));
  FlameParams p = random_params(*faa, 4, 31);
  FlameParams q = p;
  const auto to6 = [](const torch::Tensor& aa) {
    return axis_angle_to_rotation_6d(aa.reshape({aa.size(0), -1, 3})).reshape({aa.size(0), -1});
  };
  q.global_rotation = to6(p.global_rotation);
  q.neck_pose = to6(p.neck_pose);
  q.jaw_pose = to6(p.jaw_pose);
  q.eye_pose = to6(p.eye_pose);
  const auto a = faa->forward(p), b = f6->forward(q);
  require_close(a.vertices, b.vertices, 1e-12);
  require_close(a.landmarks, b.landmarks, 1e-12);
  require_close(a.transforms, b.transforms, 1e-12);
  // A scaled (non-normalised) 6D input is the same rotation after Gram-Schmidt.
  q.neck_pose = q.neck_pose * 3.0;
  require_close(f6->forward(q).vertices, b.vertices, 1e-12);
}

TEST_CASE("dynamic contour follows the official yaw formula", "[flame]") {
  const FlameModel& m = small_model();
  Flame flame(m, FlameOptions().dtype(torch::kDouble).rotation(RotationRep::AxisAngle));
  // Yaw angles (degrees) across the table, near rounding ties and beyond the clamps at +-39.
  const std::vector<double> yaws = {0.0,   0.4,  -0.4,  0.49, 1.51,  -2.49, 10.0,
                                    -10.0, 38.6, -38.6, 39.4, -39.6, 55.0,  -70.0};
  for (double yaw : yaws) {
    FlameParams p = flame->neutral_params(1);
    // Split the yaw between the global and neck rotations (plus some roll): the contour uses R_root R_neck.
    p.global_rotation = torch::tensor({{0.05, 0.3 * yaw * M_PI / 180.0, 0.0}}, torch::kDouble);
    p.neck_pose = torch::tensor({{0.0, 0.7 * yaw * M_PI / 180.0, 0.1}}, torch::kDouble);
    const auto out = flame->forward(p);
    // The official formula, by hand on the relative rotation.
    const auto rel = torch::matmul(axis_angle_to_matrix(p.global_rotation[0]), axis_angle_to_matrix(p.neck_pose[0]));
    const auto r = [&](int i, int j) { return rel[i][j].item<double>(); };
    const double e = std::atan2(-r(2, 0), std::sqrt(r(0, 0) * r(0, 0) + r(1, 0) * r(1, 0)));
    const int64_t a = static_cast<int64_t>(std::nearbyint(std::min(39.0, -e * 180.0 / M_PI)));  // half to even
    const int64_t bin = a >= 0 ? a : (a >= -39 ? 39 - a : 78);
    INFO("yaw " << yaw << " -> bin " << bin);
    REQUIRE(out.contour_bin.item<int64_t>() == bin);
    const auto expected = barycentric_points(out.vertices, m.faces.index_select(0, m.dynamic_lmk_faces_idx[bin]),
                                             m.dynamic_lmk_bary_coords[bin]);
    require_close(out.landmarks.narrow(1, 0, 17), expected, 1e-12);
    require_close(
        out.landmarks.narrow(1, 17, 51),
        barycentric_points(out.vertices, m.faces.index_select(0, m.static_lmk_faces_idx), m.static_lmk_bary_coords),
        1e-12);
  }
  // Bins by construction: yaw -10 deg -> 10, +10 deg -> 49, beyond -39 -> 39, beyond +39 -> 78.
  const auto Ry = [](double deg) {
    return axis_angle_to_matrix(torch::tensor({{0.0, deg * M_PI / 180.0, 0.0}}, torch::kDouble));
  };
  REQUIRE(dynamic_contour_bin(Ry(-10.2))[0].item<int64_t>() == 10);
  REQUIRE(dynamic_contour_bin(Ry(10.2))[0].item<int64_t>() == 49);
  REQUIRE(dynamic_contour_bin(Ry(-60))[0].item<int64_t>() == 39);
  REQUIRE(dynamic_contour_bin(Ry(60))[0].item<int64_t>() == 78);
  REQUIRE(dynamic_contour_bin(Ry(39.4))[0].item<int64_t>() == 78);
  REQUIRE(dynamic_contour_bin(Ry(0.3))[0].item<int64_t>() == 0);
  // landmark_rotation replaces the global rotation in the choice (the official rot_params_lmk_shift).
  FlameParams p = flame->neutral_params(1);
  p.global_rotation = torch::tensor({{0.0, 0.5, 0.0}}, torch::kDouble);
  p.landmark_rotation = axis_angle_to_matrix(torch::tensor({{0.0, -20.0 * M_PI / 180.0, 0.0}}, torch::kDouble));
  REQUIRE(flame->forward(p).contour_bin.item<int64_t>() == 20);
}

TEST_CASE("finite differences agree with autograd for every input (float64)", "[flame][grad]") {
  const FlameModel& m = small_model();
  for (auto rep : {RotationRep::SixD, RotationRep::AxisAngle}) {
    Flame flame(m, FlameOptions().dtype(torch::kDouble).rotation(rep));
    FlameParams p = random_params(*flame, 2, 41);
    torch::manual_seed(7);
    const auto wv = torch::randn({2, m.n_vertices(), 3}, torch::kDouble);
    const auto wn = torch::randn({2, m.n_vertices(), 3}, torch::kDouble);
    const auto wl = torch::randn({2, 68, 3}, torch::kDouble);
    const auto wj = torch::randn({2, 5, 3}, torch::kDouble);
    const auto loss_of = [&](const FlameParams& q) {
      const auto o = flame->forward(q);
      return (o.vertices * wv).sum() + (o.vertices_noneck * wn).sum() + (o.landmarks * wl).sum() +
             (o.joints * wj).sum();
    };
    std::vector<std::pair<const char*, torch::Tensor FlameParams::*>> fields = {
        {"shape", &FlameParams::shape},
        {"expression", &FlameParams::expression},
        {"global_rotation", &FlameParams::global_rotation},
        {"neck_pose", &FlameParams::neck_pose},
        {"jaw_pose", &FlameParams::jaw_pose},
        {"eye_pose", &FlameParams::eye_pose},
        {"eyelids", &FlameParams::eyelids},
        {"translation", &FlameParams::translation}};
    for (const auto& [name, field] : fields) {
      FlameParams q = p;
      auto x = (p.*field).clone().requires_grad_(true);
      q.*field = x;
      const auto analytic = torch::autograd::grad({loss_of(q)}, {x})[0];
      torch::NoGradGuard no_grad;
      auto numeric = torch::zeros_like(analytic);
      const double h = 1e-6;
      auto xf = x.detach().clone();
      // Up to 6 entries per input, spread over the batch (keeps the test fast; every input is covered).
      std::vector<int64_t> entries;
      for (int64_t i = 0; i < xf.numel(); i += std::max<int64_t>(1, xf.numel() / 6)) entries.push_back(i);
      entries.push_back(xf.numel() - 1);
      for (int64_t i : entries) {
        auto flat = xf.view({-1});
        const double x0 = flat[i].item<double>();
        flat[i] = x0 + h;
        q.*field = xf.clone();
        const double lp = loss_of(q).item<double>();
        flat[i] = x0 - h;
        q.*field = xf.clone();
        const double lm = loss_of(q).item<double>();
        flat[i] = x0;
        numeric.view({-1})[i] = (lp - lm) / (2 * h);
      }
      const auto idx = torch::tensor(entries, torch::kLong);
      const auto a = analytic.reshape({-1}).index_select(0, idx), n = numeric.reshape({-1}).index_select(0, idx);
      const double scale = std::max(1.0, a.abs().max().item<double>());
      INFO(to_string(rep) << " " << name << ": analytic " << a << "\nnumeric " << n);
      REQUIRE(a.abs().max().item<double>() > 0.0);  // the loss really depends on this input
      REQUIRE(max_abs_diff(a, n) < 1e-6 * scale);
    }
  }
}

// ------------------------------------------------------------------------------------------------------------------
TEST_CASE("FlameModel round-trips through .npz and .safetensors", "[flame][io]") {
  TempDir dir;
  const FlameModel& m = small_model();
  for (const char* name : {"m.npz", "m.safetensors"}) {
    m.save(dir.file(name));
    const FlameModel back = FlameModel::load(dir.file(name));
    INFO(name);
    REQUIRE(back.source == dir.file(name));
    REQUIRE(back.n_shape_basis == m.n_shape_basis);
    const auto a = m.to_tensors(), b = back.to_tensors();
    REQUIRE(a.size() == b.size());
    for (const auto& [key, t] : a) {
      INFO(key);
      REQUIRE(b.count(key) == 1);
      REQUIRE(torch::equal(t, b.at(key)));
    }
  }
  // float32 storage loads back (as float64) within float32 rounding.
  m.save(dir.file("m32.npz"), torch::kFloat);
  require_close(FlameModel::load(dir.file("m32.npz")).shapedirs, m.shapedirs, 1e-7);
  // A Flame module can be built straight from the file.
  Flame flame(dir.file("m.npz"), FlameOptions().dtype(torch::kDouble));
  require_close(flame->forward(FlameParams{}).vertices[0], m.v_template, 1e-12);
}

TEST_CASE("loading errors name the file, the key, and expected vs found", "[flame][io]") {
  TempDir dir;
  const auto full = small_model().to_tensors();
  const auto write = [&](io::TensorMap t) {
    const std::string path = dir.file("bad.npz");
    io::write_npz(path, t);
    return path;
  };
  {
    auto t = full;
    t.erase("J_regressor");
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {path, "J_regressor", "missing"});
  }
  {
    auto t = full;
    t["shapedirs"] = t["shapedirs"].narrow(0, 0, 10);
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); },
                                     {path, "'shapedirs'", "expected shape [600, 3, *]", "found [10, 3, 14]"});
  }
  {
    auto t = full;
    t["weights"] = t["weights"].narrow(1, 0, 4);
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {"'weights'", "[600, 5]", "[600, 4]"});
  }
  {
    auto t = full;
    t["f"] = t["f"].clone();
    t["f"][0][0] = 600;
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {"'f'", "vertex indices in [0, 600)", "600]"});
  }
  {
    auto t = full;
    t["f"] = t["f"].to(torch::kFloat);
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {"'f'", "integer dtype", "Float"});
  }
  {
    auto t = full;
    t.erase("r_eyelid");
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {"l_eyelid", "r_eyelid", "both or neither"});
  }
  {
    auto t = full;
    t["v_template"] = t["v_template"].clone();
    t["v_template"][3][1] = std::nan("");
    const auto path = write(t);
    require_throws_with<FormatError>([&] { FlameModel::load(path); }, {"'v_template'", "non-finite"});
  }
  require_throws_with<FileNotFound>([&] { FlameModel::load(dir.file("nope.npz")); }, {"nope.npz"});
  require_throws_with<ValueError>([&] { FlameModel::load(dir.file("model.pkl")); },
                                  {"model.pkl", ".npz or .safetensors", "convert_flame"});
}

TEST_CASE("forward rejects wrong shapes, dtypes and options with named messages", "[flame]") {
  const FlameModel& m = small_model();
  Flame flame(m);
  FlameParams p;
  p.shape = torch::zeros({2, 8});
  p.expression = torch::zeros({3, 6});
  require_throws_with<ValueError>([&] { flame->forward(p); }, {"expression", "[2, 6]", "[3, 6]"});
  p.expression = torch::zeros({2, 6}, torch::kDouble);
  require_throws_with<ValueError>([&] { flame->forward(p); }, {"expression", "Float", "Double"});
  require_throws_with<ValueError>([&] { Flame(m, FlameOptions().n_shape(9)); }, {"n_shape", "at most 8", "9"});
  FlameModel no_eyelids = m;
  no_eyelids.l_eyelid = no_eyelids.r_eyelid = torch::Tensor();
  Flame plain(no_eyelids);
  FlameParams e;
  e.eyelids = torch::zeros({1, 2});
  require_throws_with<ValueError>([&] { plain->forward(e); }, {"eyelids", "no eyelid blendshapes"});
}

TEST_CASE("the module clones and converts dtype like any torch module", "[flame]") {
  const FlameModel& m = small_model();
  Flame flame(m, FlameOptions().n_shape(4).n_expr(2));
  REQUIRE(flame->n_shape() == 4);
  auto copy = std::dynamic_pointer_cast<FlameImpl>(flame->clone());
  REQUIRE(copy);
  FlameParams p;
  p.shape = torch::ones({1, 4});
  require_close(copy->forward(p).vertices, flame->forward(p).vertices, 0.0);
  flame->to(torch::kDouble);
  REQUIRE(flame->dtype() == torch::kDouble);
  p.shape = torch::ones({1, 4}, torch::kDouble);
  REQUIRE(flame->forward(p).landmarks.scalar_type() == torch::kDouble);
}

TEST_CASE("blend() equals addmm in value and gradient on both sides of the streaming threshold", "[flame][blend]") {
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    for (int64_t B : {1, 3, 8, 9, 16}) {
      torch::manual_seed(B);
      const auto basis = torch::randn({37, 2500}, dtype).requires_grad_(true);  // 2500: not a block multiple
      const auto base1 = torch::randn({1, 2500}, dtype).requires_grad_(true);
      const auto baseB = torch::randn({B, 2500}, dtype).requires_grad_(true);
      auto coeffs = torch::randn({B, 37}, dtype);
      coeffs.index_put_({0, 3}, 0.0);  // zero coefficients are skipped by the kernel
      coeffs.requires_grad_(true);
      const double tol = dtype == torch::kDouble ? 1e-10 : 2e-4;
      for (const auto& base : {base1, baseB, torch::Tensor()}) {
        const auto out = blend(coeffs, basis, base);
        const auto ref = base.defined() ? torch::addmm(base, coeffs, basis) : torch::mm(coeffs, basis);
        INFO("B " << B << " dtype " << dtype << " base " << (base.defined() ? base.size(0) : -1));
        require_close(out, ref, tol);
        const auto w = torch::randn_like(ref);
        std::vector<torch::Tensor> inputs = {coeffs, basis};
        if (base.defined()) inputs.push_back(base);
        const auto g = torch::autograd::grad({(out * w).sum()}, inputs);
        const auto gr = torch::autograd::grad({(ref * w).sum()}, inputs);
        for (size_t i = 0; i < g.size(); ++i) require_close(g[i], gr[i], tol * 10);
      }
    }
  }
  require_throws_with<ValueError>(
      [] {
        blend(torch::zeros({2, 3}), torch::zeros({4, 5}));
      },
      {"basis", "[3, *]", "[4, 5]"});
}

TEST_CASE("the fused skinning op equals plain tensor ops in value and gradient", "[flame][blend]") {
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    for (int64_t V : {1, 7, 256, 600}) {  // around the 256-vertex block
      torch::manual_seed(V);
      const int64_t B = 3, J = 5;
      const auto x = torch::randn({B, V, 3}, dtype).requires_grad_(true);
      const auto rel = torch::randn({B, J, 4, 4}, dtype).requires_grad_(true);
      const auto w = torch::rand({V, J}, dtype).requires_grad_(true);
      const auto out = skin(x, rel, w);
      const auto T = torch::einsum("vj,bjrc->bvrc", {w, rel.narrow(2, 0, 3)});
      const auto ref = (T.narrow(3, 0, 3) * x.unsqueeze(2)).sum(-1) + T.select(3, 3);
      const double tol = dtype == torch::kDouble ? 1e-12 : 1e-4;
      INFO("V " << V << " dtype " << dtype);
      require_close(out, ref, tol);
      const auto g = torch::randn_like(ref);
      const auto ga = torch::autograd::grad({(out * g).sum()}, {x, rel, w});
      const auto gb = torch::autograd::grad({(ref * g).sum()}, {x, rel, w});
      for (int i = 0; i < 3; ++i) require_close(ga[i], gb[i], tol * 10);
    }
  }
}
