// Mesh validation, dispatch by extension, and the conversions shared by the PLY and OBJ code.
#include "pixel3dmm/io/mesh.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/detail/mesh_common.h"

namespace pixel3dmm::io {

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

void check_floating(const torch::Tensor& t, const std::string& what, int64_t rows, int64_t cols) {
  check_shape(t, {rows, cols}, what);
  PIXEL3DMM_CHECK(t.is_floating_point(), what, ": expected a floating point tensor, found ", t.scalar_type());
  check_finite(t, what);
}

/// Index tensors: F x 3 integers in [0, limit).
void check_indices(const torch::Tensor& t, const std::string& what, int64_t rows, int64_t limit,
                   const char* target) {
  check_shape(t, {rows, 3}, what);
  PIXEL3DMM_CHECK(!t.is_floating_point() && !t.is_complex() && t.scalar_type() != torch::kBool, what,
                  ": expected an integer tensor, found ", t.scalar_type());
  if (t.numel() == 0) return;
  const auto idx = t.to(torch::kCPU).to(torch::kLong);
  const auto bad = ((idx < 0) | (idx >= limit)).any(1);
  if (bad.any().item<bool>()) {
    const int64_t face = bad.nonzero()[0][0].item<int64_t>();
    const auto row = idx[face];
    throw ValueError(detail::concat(what, ": face ", face, " is [", row[0].item<int64_t>(), ", ",
                                    row[1].item<int64_t>(), ", ", row[2].item<int64_t>(), "], out of range for ",
                                    limit, " ", target));
  }
}

torch::Tensor cpu_float(const torch::Tensor& t) {
  if (!t.defined()) return t;
  return t.detach().to(torch::kCPU).to(torch::kFloat).contiguous();
}

}  // namespace

void validate_mesh(const Mesh& mesh) {
  PIXEL3DMM_CHECK(mesh.vertices.defined(), "mesh.vertices: missing (expected a V x 3 tensor)");
  PIXEL3DMM_CHECK(mesh.faces.defined(), "mesh.faces: missing (expected an F x 3 tensor; 0 x 3 for a point cloud)");
  check_floating(mesh.vertices, "mesh.vertices", -1, 3);
  const int64_t V = mesh.vertices.size(0);
  check_indices(mesh.faces, "mesh.faces", -1, V, "vertices");
  const int64_t F = mesh.faces.size(0);
  if (mesh.normals.defined()) check_floating(mesh.normals, "mesh.normals", V, 3);
  if (mesh.colors.defined()) {
    check_shape(mesh.colors, {V, 3}, "mesh.colors");
    PIXEL3DMM_CHECK(mesh.colors.is_floating_point() || mesh.colors.scalar_type() == torch::kByte,
                    "mesh.colors: expected floating point in [0, 1] or uint8, found ", mesh.colors.scalar_type());
    if (mesh.colors.is_floating_point()) check_finite(mesh.colors, "mesh.colors");
  }
  if (mesh.uv_faces.defined()) {
    PIXEL3DMM_CHECK(mesh.uvs.defined(), "mesh.uv_faces: given without mesh.uvs");
  }
  if (mesh.uvs.defined()) {
    check_floating(mesh.uvs, "mesh.uvs", -1, 2);
    const int64_t T = mesh.uvs.size(0);
    if (mesh.uv_faces.defined()) {
      check_indices(mesh.uv_faces, "mesh.uv_faces", F, T, "uvs");
    } else {
      PIXEL3DMM_CHECK(T == V, "mesh.uvs: ", T, " rows but the mesh has ", V,
                      " vertices and no uv_faces (per-vertex UVs need one row per vertex)");
    }
  }
}

namespace detail {

MeshArrays prepare_for_writing(const Mesh& mesh, const std::string& path) {
  try {
    validate_mesh(mesh);
  } catch (const ValueError& e) {
    throw ValueError(concat(path, ": cannot write mesh: ", e.what()));
  }
  MeshArrays a;
  a.vertices = cpu_float(mesh.vertices);
  a.faces = mesh.faces.detach().to(torch::kCPU).to(torch::kLong).contiguous();
  a.normals = cpu_float(mesh.normals);
  if (mesh.colors.defined()) {
    a.colors = mesh.colors.scalar_type() == torch::kByte ? cpu_float(mesh.colors) / 255.0f : cpu_float(mesh.colors);
    a.colors = a.colors.contiguous();
  }
  a.uvs = cpu_float(mesh.uvs);
  if (mesh.uv_faces.defined()) a.uv_faces = mesh.uv_faces.detach().to(torch::kCPU).to(torch::kLong).contiguous();
  a.num_vertices = a.vertices.size(0);
  a.num_faces = a.faces.size(0);
  a.uv_per_vertex = a.uvs.defined() && (!a.uv_faces.defined() ||
                                        (a.uvs.size(0) == a.num_vertices && torch::equal(a.uv_faces, a.faces)));
  return a;
}

Mesh MeshBuilder::finish() {
  Mesh m;
  const int64_t V = static_cast<int64_t>(vertices.size() / 3);
  const int64_t F = static_cast<int64_t>(faces.size() / 3);
  // The tensors take over the vectors' memory (no copy: a 1M-vertex mesh would otherwise touch ~100 MB twice).
  auto to_tensor = [](auto& vec, int64_t rows, int64_t cols, torch::ScalarType type) {
    using Vec = std::decay_t<decltype(vec)>;
    if (vec.empty()) return torch::empty({rows, cols}, torch::TensorOptions().dtype(type));
    auto* owned = new Vec(std::move(vec));
    return torch::from_blob(
        owned->data(), {rows, cols}, [owned](void*) { delete owned; }, torch::TensorOptions().dtype(type));
  };
  m.vertices = to_tensor(vertices, V, 3, torch::kFloat);
  m.faces = to_tensor(faces, F, 3, torch::kLong);
  if (!normals.empty()) m.normals = to_tensor(normals, V, 3, torch::kFloat);
  if (!colors.empty()) m.colors = to_tensor(colors, V, 3, torch::kFloat);
  if (!corner_uvs.empty()) {
    uv_per_corner = true;
    // Per-corner UV values: share equal (u, v) pairs so that a written-then-read mesh keeps a compact table.
    struct PairHash {
      size_t operator()(const std::pair<uint32_t, uint32_t>& p) const {
        return std::hash<uint64_t>()((uint64_t(p.first) << 32) | p.second);
      }
    };
    std::unordered_map<std::pair<uint32_t, uint32_t>, int64_t, PairHash> index;
    uvs.clear();
    uv_faces.resize(corner_uvs.size() / 2);
    for (size_t c = 0; c < uv_faces.size(); ++c) {
      const float u = corner_uvs[2 * c] + 0.0f, v = corner_uvs[2 * c + 1] + 0.0f;  // + 0.0f folds -0 into 0
      uint32_t ub, vb;
      std::memcpy(&ub, &u, 4);
      std::memcpy(&vb, &v, 4);
      auto [it, inserted] = index.try_emplace({ub, vb}, static_cast<int64_t>(uvs.size() / 2));
      if (inserted) {
        uvs.push_back(u);
        uvs.push_back(v);
      }
      uv_faces[c] = it->second;
    }
  }
  if (!uvs.empty() || uv_per_corner) {
    m.uvs = to_tensor(uvs, static_cast<int64_t>(uvs.size() / 2), 2, torch::kFloat);
    if (uv_per_corner) m.uv_faces = to_tensor(uv_faces, F, 3, torch::kLong);
  }
  return m;
}

}  // namespace detail

void write_mesh(const std::string& path, const Mesh& mesh) {
  const std::string ext = lower_extension(path);
  if (ext == ".ply") return write_ply(path, mesh, true);
  if (ext == ".obj") return write_obj(path, mesh);
  throw ValueError(detail::concat(path, ": unknown mesh extension '", ext, "' (expected .ply or .obj)"));
}

Mesh read_mesh(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".ply") return detail::read_ply(path);
  if (ext == ".obj") return detail::read_obj(path);
  // Unknown extension: PLY announces itself in its first bytes; anything else is taken as OBJ text only if asked.
  std::error_code ec;
  PIXEL3DMM_CHECK_T(FileNotFound, std::filesystem::exists(path, ec), path, ": no such file");
  char magic[4] = {0, 0, 0, 0};
  std::ifstream(path, std::ios::binary).read(magic, 3);
  if (std::memcmp(magic, "ply", 3) == 0) return detail::read_ply(path);
  throw ValueError(detail::concat(path, ": unknown mesh extension '", ext, "' (expected .ply or .obj)"));
}

}  // namespace pixel3dmm::io
