#pragma once
// Internals shared by the PLY and OBJ readers and writers (pixel3dmm/io/mesh.cpp, ply.cpp, obj.cpp).

#include <torch/types.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pixel3dmm/io/mesh.h"

namespace pixel3dmm::io::detail {

using ::pixel3dmm::detail::concat;

/// A validated mesh as contiguous CPU arrays: vertices/normals/colors/uvs float32, faces/uv_faces int64.
/// `uv_per_vertex` is true when UVs are indexed by vertex ids (no uv_faces, or uv_faces == faces with T == V).
struct MeshArrays {
  torch::Tensor vertices, faces, normals, colors, uvs, uv_faces;
  int64_t num_vertices = 0, num_faces = 0;
  bool uv_per_vertex = false;

  const float* v() const { return vertices.data_ptr<float>(); }
  const int64_t* f() const { return faces.data_ptr<int64_t>(); }
  const float* n() const { return normals.defined() ? normals.data_ptr<float>() : nullptr; }
  const float* c() const { return colors.defined() ? colors.data_ptr<float>() : nullptr; }
  const float* t() const { return uvs.defined() ? uvs.data_ptr<float>() : nullptr; }
  const int64_t* tf() const { return uv_faces.defined() ? uv_faces.data_ptr<int64_t>() : nullptr; }
};

/// validate_mesh + conversion to MeshArrays; errors are prefixed with `path`.
MeshArrays prepare_for_writing(const Mesh& mesh, const std::string& path);

/// Appends the shortest decimal text that reads back as exactly `v`.
inline void append_number(std::string& out, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
inline void append_number(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

/// Mesh-building buffers filled by the readers, turned into tensors by `finish`.
struct MeshBuilder {
  std::vector<float> vertices, normals, colors;  // V*3 each (normals/colors empty when absent)
  std::vector<int64_t> faces;                    // F*3
  std::vector<float> uvs;                        // T*2
  std::vector<int64_t> uv_faces;                 // F*3 when uv_per_corner
  bool uv_per_corner = false;                    // false: uvs (if any) are per vertex
  /// Per-corner UV values (F*3*2) to be deduplicated into uvs + uv_faces by finish().
  std::vector<float> corner_uvs;

  Mesh finish();
};

/// Format-specific readers, dispatched by read_mesh.
Mesh read_ply(const std::string& path);
Mesh read_obj(const std::string& path);

}  // namespace pixel3dmm::io::detail
