#include "pixel3dmm/flame/flame_model.h"

#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::flame {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

/// Reads named arrays, converting dtypes and reporting problems against the file.
class Reader {
 public:
  Reader(const io::TensorMap& tensors, std::string source) : tensors_(tensors), source_(std::move(source)) {}

  torch::Tensor floats(const std::string& key, bool required) const { return get(key, required, true); }
  torch::Tensor ints(const std::string& key, bool required) const { return get(key, required, false); }

 private:
  torch::Tensor get(const std::string& key, bool required, bool is_float) const {
    const auto it = tensors_.find(key);
    if (it == tensors_.end()) {
      PIXEL3DMM_CHECK_FORMAT(!required, source_, "missing key '", key, "' (required by the FLAME layout)");
      return {};
    }
    const torch::Tensor& t = it->second;
    PIXEL3DMM_CHECK_FORMAT(t.defined(), source_, "key '", key, "' holds no array");
    if (is_float) {
      PIXEL3DMM_CHECK_FORMAT(t.is_floating_point(), source_, "key '", key, "': expected a float dtype, found ",
                             c10::toString(t.scalar_type()));
      return t.to(torch::kDouble).contiguous();
    }
    PIXEL3DMM_CHECK_FORMAT(!t.is_floating_point() && !t.is_complex() && t.scalar_type() != torch::kBool, source_,
                           "key '", key, "': expected an integer dtype, found ", c10::toString(t.scalar_type()));
    return t.to(torch::kLong).contiguous();
  }

  const io::TensorMap& tensors_;
  std::string source_;
};

class Validator {
 public:
  explicit Validator(std::string source) : source_(std::move(source)) {}

  void shape(const torch::Tensor& t, const char* key, std::initializer_list<int64_t> expected) const {
    PIXEL3DMM_CHECK_FORMAT(t.defined(), source_, "missing key '", key, "'");
    PIXEL3DMM_CHECK_FORMAT(shape_matches(t.sizes(), expected), source_, "key '", key, "': expected shape ",
                           shape_string(expected), ", found ", shape_string(t.sizes()));
  }
  void finite(const torch::Tensor& t, const char* key) const {
    const int64_t bad = (~torch::isfinite(t)).sum().item<int64_t>();
    PIXEL3DMM_CHECK_FORMAT(bad == 0, source_, "key '", key, "': contains ", bad, " non-finite value(s)");
  }
  void range(const torch::Tensor& t, const std::string& key, int64_t upper, const char* what) const {
    if (t.numel() == 0) return;
    const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
    PIXEL3DMM_CHECK_FORMAT(lo >= 0 && hi < upper, source_, "key '", key, "': expected ", what, " in [0, ", upper,
                           "), found values in [", lo, ", ", hi, "]");
  }

 private:
  std::string source_;
};

}  // namespace

std::vector<int64_t> FlameModel::parents() const {
  const auto row = kintree_table[0].contiguous();
  std::vector<int64_t> p(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  if (!p.empty()) p[0] = -1;
  return p;
}

void FlameModel::validate() const {
  const Validator check(source);
  check.shape(v_template, keys::kVTemplate, {-1, 3});
  const int64_t V = v_template.size(0);
  PIXEL3DMM_CHECK_FORMAT(V > 0, source, "key 'v_template': expected at least one vertex, found 0");
  check.finite(v_template, keys::kVTemplate);
  check.shape(faces, keys::kFaces, {-1, 3});
  const int64_t F = faces.size(0);
  check.range(faces, keys::kFaces, V, "vertex indices");
  check.shape(J_regressor, keys::kJRegressor, {-1, V});
  const int64_t J = J_regressor.size(0);
  PIXEL3DMM_CHECK_FORMAT(J >= 1, source, "key 'J_regressor': expected at least one joint, found 0");
  check.finite(J_regressor, keys::kJRegressor);
  check.shape(shapedirs, keys::kShapedirs, {V, 3, -1});
  check.finite(shapedirs, keys::kShapedirs);
  const int64_t K = shapedirs.size(2);
  PIXEL3DMM_CHECK_FORMAT(n_shape_basis >= 0 && n_shape_basis <= K, source, "key 'n_shape_basis': expected a value in [0, ",
                         K, "] (shapedirs has ", K, " components), found ", n_shape_basis);
  check.shape(posedirs, keys::kPosedirs, {V, 3, 9 * (J - 1)});
  check.finite(posedirs, keys::kPosedirs);
  check.shape(kintree_table, keys::kKintreeTable, {2, J});
  const auto p = parents();
  for (int64_t j = 1; j < J; ++j)
    PIXEL3DMM_CHECK_FORMAT(p[j] >= 0 && p[j] < j, source, "key 'kintree_table': expected the parent of joint ", j,
                           " in [0, ", j, ") (parents before children), found ", p[j]);
  check.shape(lbs_weights, keys::kWeights, {V, J});
  check.finite(lbs_weights, keys::kWeights);

  if (vertex_uv.defined()) {
    check.shape(vertex_uv, keys::kVertexUv, {V, 2});
    check.finite(vertex_uv, keys::kVertexUv);
  }
  PIXEL3DMM_CHECK_FORMAT(uv_coords.defined() == uv_faces.defined(), source, "keys 'vt' and 'ft': expected both or ",
                         "neither, found only '", uv_coords.defined() ? "vt" : "ft", "'");
  if (uv_coords.defined()) {
    check.shape(uv_coords, keys::kUvCoords, {-1, 2});
    check.finite(uv_coords, keys::kUvCoords);
    check.shape(uv_faces, keys::kUvFaces, {F, 3});
    check.range(uv_faces, keys::kUvFaces, uv_coords.size(0), "texture-coordinate indices");
  }
  PIXEL3DMM_CHECK_FORMAT(static_lmk_faces_idx.defined() == static_lmk_bary_coords.defined(), source,
                         "keys 'static_lmk_faces_idx' and 'static_lmk_bary_coords': expected both or neither");
  if (static_lmk_faces_idx.defined()) {
    check.shape(static_lmk_faces_idx, keys::kStaticLmkFaces, {-1});
    check.range(static_lmk_faces_idx, keys::kStaticLmkFaces, F, "face indices");
    check.shape(static_lmk_bary_coords, keys::kStaticLmkBary, {static_lmk_faces_idx.size(0), 3});
    check.finite(static_lmk_bary_coords, keys::kStaticLmkBary);
  }
  PIXEL3DMM_CHECK_FORMAT(dynamic_lmk_faces_idx.defined() == dynamic_lmk_bary_coords.defined(), source,
                         "keys 'dynamic_lmk_faces_idx' and 'dynamic_lmk_bary_coords': expected both or neither");
  if (dynamic_lmk_faces_idx.defined()) {
    PIXEL3DMM_CHECK_FORMAT(static_lmk_faces_idx.defined(), source,
                           "key 'dynamic_lmk_faces_idx' given without 'static_lmk_faces_idx'");
    check.shape(dynamic_lmk_faces_idx, keys::kDynamicLmkFaces, {-1, -1});
    PIXEL3DMM_CHECK_FORMAT(dynamic_lmk_faces_idx.size(0) > 0, source,
                           "key 'dynamic_lmk_faces_idx': expected at least one yaw bin, found 0");
    check.range(dynamic_lmk_faces_idx, keys::kDynamicLmkFaces, F, "face indices");
    check.shape(dynamic_lmk_bary_coords, keys::kDynamicLmkBary,
                {dynamic_lmk_faces_idx.size(0), dynamic_lmk_faces_idx.size(1), 3});
    check.finite(dynamic_lmk_bary_coords, keys::kDynamicLmkBary);
  }
  PIXEL3DMM_CHECK_FORMAT(l_eyelid.defined() == r_eyelid.defined(), source,
                         "keys 'l_eyelid' and 'r_eyelid': expected both or neither, found only '",
                         l_eyelid.defined() ? "l_eyelid" : "r_eyelid", "'");
  if (l_eyelid.defined()) {
    check.shape(l_eyelid, keys::kLEyelid, {V, 3});
    check.shape(r_eyelid, keys::kREyelid, {V, 3});
    check.finite(l_eyelid, keys::kLEyelid);
    check.finite(r_eyelid, keys::kREyelid);
  }
  if (mirror_index.defined()) {
    check.shape(mirror_index, keys::kMirrorIndex, {V});
    check.range(mirror_index, keys::kMirrorIndex, V, "vertex indices");
  }
  for (const auto& [name, idx] : masks) {
    const std::string key = keys::kMaskPrefix + name;
    PIXEL3DMM_CHECK_FORMAT(idx.defined() && idx.dim() == 1, source, "key '", key, "': expected shape [*], found ",
                           idx.defined() ? shape_string(idx.sizes()) : std::string("none"));
    check.range(idx, key, V, "vertex indices");
  }
}

io::TensorMap FlameModel::to_tensors(torch::ScalarType float_dtype) const {
  io::TensorMap m;
  const auto put_f = [&](const char* key, const torch::Tensor& t) {
    if (t.defined()) m[key] = t.to(float_dtype).contiguous();
  };
  const auto put_i = [&](const std::string& key, const torch::Tensor& t) {
    if (t.defined()) m[key] = t.to(torch::kLong).contiguous();
  };
  put_f(keys::kVTemplate, v_template);
  put_i(keys::kFaces, faces);
  put_f(keys::kShapedirs, shapedirs);
  m[keys::kNShapeBasis] = torch::tensor(n_shape_basis, torch::kLong);
  put_f(keys::kPosedirs, posedirs);
  put_f(keys::kJRegressor, J_regressor);
  put_i(keys::kKintreeTable, kintree_table);
  put_f(keys::kWeights, lbs_weights);
  put_f(keys::kVertexUv, vertex_uv);
  put_f(keys::kUvCoords, uv_coords);
  put_i(keys::kUvFaces, uv_faces);
  put_i(keys::kStaticLmkFaces, static_lmk_faces_idx);
  put_f(keys::kStaticLmkBary, static_lmk_bary_coords);
  put_i(keys::kDynamicLmkFaces, dynamic_lmk_faces_idx);
  put_f(keys::kDynamicLmkBary, dynamic_lmk_bary_coords);
  put_f(keys::kLEyelid, l_eyelid);
  put_f(keys::kREyelid, r_eyelid);
  put_i(keys::kMirrorIndex, mirror_index);
  for (const auto& [name, idx] : masks) put_i(keys::kMaskPrefix + name, idx);
  return m;
}

FlameModel FlameModel::from_tensors(const io::TensorMap& tensors, const std::string& source) {
  const Reader r(tensors, source);
  FlameModel m;
  m.source = source;
  m.v_template = r.floats(keys::kVTemplate, true);
  m.faces = r.ints(keys::kFaces, true);
  m.shapedirs = r.floats(keys::kShapedirs, true);
  m.posedirs = r.floats(keys::kPosedirs, true);
  m.J_regressor = r.floats(keys::kJRegressor, true);
  m.kintree_table = r.ints(keys::kKintreeTable, true);
  m.lbs_weights = r.floats(keys::kWeights, true);
  if (m.kintree_table.dim() == 2 && m.kintree_table.size(1) > 0) {
    m.kintree_table = m.kintree_table.clone();  // FLAME pkls store the root's parent as 2^32 - 1
    m.kintree_table[0][0] = -1;
  }
  const torch::Tensor ns = r.ints(keys::kNShapeBasis, false);
  if (ns.defined()) {
    PIXEL3DMM_CHECK_FORMAT(ns.numel() == 1, source, "key 'n_shape_basis': expected shape [] or [1], found ",
                           shape_string(ns.sizes()));
    m.n_shape_basis = ns.item<int64_t>();
  } else if (m.shapedirs.dim() == 3) {
    m.n_shape_basis = std::min<int64_t>(kFlameShapeBasis, m.shapedirs.size(2));
  }
  m.vertex_uv = r.floats(keys::kVertexUv, false);
  m.uv_coords = r.floats(keys::kUvCoords, false);
  m.uv_faces = r.ints(keys::kUvFaces, false);
  m.static_lmk_faces_idx = r.ints(keys::kStaticLmkFaces, false);
  m.static_lmk_bary_coords = r.floats(keys::kStaticLmkBary, false);
  m.dynamic_lmk_faces_idx = r.ints(keys::kDynamicLmkFaces, false);
  m.dynamic_lmk_bary_coords = r.floats(keys::kDynamicLmkBary, false);
  m.l_eyelid = r.floats(keys::kLEyelid, false);
  m.r_eyelid = r.floats(keys::kREyelid, false);
  m.mirror_index = r.ints(keys::kMirrorIndex, false);
  const std::string prefix = keys::kMaskPrefix;
  for (const auto& [key, value] : tensors)
    if (key.rfind(prefix, 0) == 0 && key.size() > prefix.size()) m.masks[key.substr(prefix.size())] = r.ints(key, true);
  m.validate();
  return m;
}

FlameModel FlameModel::load(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npz") return from_tensors(io::read_npz(path), path);
  if (ext == ".safetensors") return from_tensors(io::read_safetensors(path).tensors, path);
  throw ValueError(path + ": expected a FLAME model as .npz or .safetensors, found extension '" + ext +
                   "' (convert the official .pkl with `python -m pixel3dmm.convert_flame`)");
}

void FlameModel::save(const std::string& path, torch::ScalarType float_dtype) const {
  validate();
  const std::string ext = lower_extension(path);
  if (ext == ".npz") {
    io::write_npz(path, to_tensors(float_dtype), /*compress=*/true);
  } else if (ext == ".safetensors") {
    io::write_safetensors(path, to_tensors(float_dtype), {{"format", "pixel3dmm-flame"}, {"version", "1"}});
  } else {
    throw ValueError(path + ": expected a .npz or .safetensors destination for a FLAME model, found extension '" +
                     ext + "'");
  }
}

std::string describe(const FlameModel& m) {
  std::ostringstream s;
  s << "FlameModel(V=" << m.n_vertices() << ", F=" << m.n_faces() << ", J=" << m.n_joints()
    << ", shape=" << m.n_shape_basis << ", expr=" << m.n_expr_basis();
  if (m.has_landmarks()) {
    s << ", landmarks=";
    if (m.has_dynamic_landmarks()) s << m.dynamic_lmk_faces_idx.size(1) << "+";
    s << m.static_lmk_faces_idx.size(0);
  }
  if (m.has_uv()) s << ", vt=" << m.uv_coords.size(0);
  if (m.has_eyelids()) s << ", eyelids";
  if (!m.masks.empty()) s << ", masks=" << m.masks.size();
  if (m.mirror_index.defined()) s << ", mirror";
  s << ")";
  return s.str();
}

}  // namespace pixel3dmm::flame
