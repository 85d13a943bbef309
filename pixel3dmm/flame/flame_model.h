#pragma once
/// FlameModel: the arrays of a FLAME file (FLAME 2020 / 2023 converted with `python -m pixel3dmm.convert_flame`,
/// or the synthetic FLAME-layout model of synthetic.h), loaded from our .npz / .safetensors layout.
///
/// File layout (every key, shape and dtype; docs/flame.md has the full table). V vertices, F faces, J joints,
/// K = S + E blendshapes, T texture coordinates, L static landmarks, Y x C dynamic contour table:
///   v_template (V,3) float  f (F,3) int  shapedirs (V,3,K) float  n_shape_basis () or (1,) int [optional]
///   posedirs (V,3,9(J-1)) float  J_regressor (J,V) float  kintree_table (2,J) int  weights (V,J) float
///   vertex_uv (V,2) float  vt (T,2) float  ft (F,3) int                                       [optional]
///   static_lmk_faces_idx (L,) int  static_lmk_bary_coords (L,3) float                          [optional]
///   dynamic_lmk_faces_idx (Y,C) int  dynamic_lmk_bary_coords (Y,C,3) float                     [optional]
///   l_eyelid (V,3) float  r_eyelid (V,3) float  mirror_index (V,) int  mask.<name> (N,) int    [optional]
/// Any float dtype and any integer dtype is accepted; in memory floats are float64 and indices int64.

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/io/safetensors.h"  // TensorMap

namespace pixel3dmm::flame {

/// Key names of the file layout.
namespace keys {
inline constexpr const char* kVTemplate = "v_template";
inline constexpr const char* kFaces = "f";
inline constexpr const char* kShapedirs = "shapedirs";
inline constexpr const char* kNShapeBasis = "n_shape_basis";
inline constexpr const char* kPosedirs = "posedirs";
inline constexpr const char* kJRegressor = "J_regressor";
inline constexpr const char* kKintreeTable = "kintree_table";
inline constexpr const char* kWeights = "weights";
inline constexpr const char* kVertexUv = "vertex_uv";
inline constexpr const char* kUvCoords = "vt";
inline constexpr const char* kUvFaces = "ft";
inline constexpr const char* kStaticLmkFaces = "static_lmk_faces_idx";
inline constexpr const char* kStaticLmkBary = "static_lmk_bary_coords";
inline constexpr const char* kDynamicLmkFaces = "dynamic_lmk_faces_idx";
inline constexpr const char* kDynamicLmkBary = "dynamic_lmk_bary_coords";
inline constexpr const char* kLEyelid = "l_eyelid";
inline constexpr const char* kREyelid = "r_eyelid";
inline constexpr const char* kMirrorIndex = "mirror_index";
inline constexpr const char* kMaskPrefix = "mask.";
}  // namespace keys

/// FLAME 2020 / 2023 split their 400 blendshapes into 300 identity + 100 expression components; a file without
/// `n_shape_basis` is read with this split (or all-identity when it has no more than 300 components).
inline constexpr int64_t kFlameShapeBasis = 300;

/// The arrays of a FLAME model. Required tensors are always defined after load/validate; optional ones are
/// undefined tensors (or an empty map) when the file lacks them. Floats are float64, indices int64.
struct FlameModel {
  torch::Tensor v_template;     ///< V x 3, metres (x right, y up, z toward the camera)
  torch::Tensor faces;          ///< F x 3 vertex indices (FLAME pkl `f`)
  torch::Tensor shapedirs;      ///< V x 3 x K: identity components [0, n_shape_basis), then expression
  int64_t n_shape_basis = 0;    ///< S; the E = K - S expression components follow
  torch::Tensor posedirs;       ///< V x 3 x 9(J-1): pose correctives, rows of (R_j - I) for joints 1..J-1
  torch::Tensor J_regressor;    ///< J x V (dense)
  torch::Tensor kintree_table;  ///< 2 x J: row 0 parents (entry 0 is the root, stored as -1), row 1 joint ids
  torch::Tensor lbs_weights;    ///< V x J skinning weights (FLAME pkl `weights`)

  torch::Tensor vertex_uv;  ///< V x 2 per-vertex (u, v), v up (the official flame_uv_coords.npy)
  torch::Tensor uv_coords;  ///< T x 2 OBJ `vt`
  torch::Tensor uv_faces;   ///< F x 3 indices into uv_coords, face order of `faces`

  torch::Tensor static_lmk_faces_idx;     ///< L (51 for FLAME) face indices
  torch::Tensor static_lmk_bary_coords;   ///< L x 3
  torch::Tensor dynamic_lmk_faces_idx;    ///< Y x C (79 x 17): contour faces per yaw bin
  torch::Tensor dynamic_lmk_bary_coords;  ///< Y x C x 3

  torch::Tensor l_eyelid;      ///< V x 3 displacement (metres per unit) of the left eyelid parameter
  torch::Tensor r_eyelid;      ///< V x 3
  torch::Tensor mirror_index;  ///< V: each vertex's left/right partner
  std::map<std::string, torch::Tensor> masks;  ///< region name -> vertex indices (face, left_eyeball, ...)

  std::string source = "<memory>";  ///< where it came from, for error messages

  int64_t n_vertices() const { return v_template.size(0); }
  int64_t n_faces() const { return faces.size(0); }
  int64_t n_joints() const { return J_regressor.size(0); }
  int64_t n_blendshapes() const { return shapedirs.size(2); }
  int64_t n_expr_basis() const { return n_blendshapes() - n_shape_basis; }
  /// Parent of each joint (-1 for the root), from kintree_table row 0.
  std::vector<int64_t> parents() const;

  bool has_landmarks() const { return static_lmk_faces_idx.defined(); }
  bool has_dynamic_landmarks() const { return dynamic_lmk_faces_idx.defined(); }
  bool has_eyelids() const { return l_eyelid.defined(); }
  bool has_uv() const { return uv_coords.defined(); }

  /// Checks every array against V, F, J, K: shapes, index ranges, finiteness, kinematic tree order (parents
  /// before children). Throws FormatError "<source>: key '<k>': expected ..., found ...".
  void validate() const;

  /// The file layout above (floats as float64 unless `dtype` says otherwise, indices int64).
  io::TensorMap to_tensors(torch::ScalarType float_dtype = torch::kDouble) const;

  /// Builds and validates a model from named arrays; `source` names the file in errors.
  static FlameModel from_tensors(const io::TensorMap& tensors, const std::string& source = "<memory>");

  /// Loads `.npz` or `.safetensors` (by extension). FileNotFound / FormatError name the path and key.
  static FlameModel load(const std::string& path);

  /// Writes `.npz` (compressed) or `.safetensors` (by extension), atomically. Floats stored as `float_dtype`.
  void save(const std::string& path, torch::ScalarType float_dtype = torch::kDouble) const;
};

/// Human-readable one-line summary: "FlameModel(V=5023, F=9976, J=5, shape=300, expr=100, landmarks=51+17, ...)".
std::string describe(const FlameModel& model);

}  // namespace pixel3dmm::flame
