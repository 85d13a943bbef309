#pragma once
/// Triangle meshes in and out: PLY (binary little endian or ASCII) and Wavefront OBJ (+ .mtl).

#include <torch/types.h>

#include <string>

namespace pixel3dmm::io {

/// A triangle mesh. Only `vertices` and `faces` are required; every other tensor may be undefined.
struct Mesh {
  torch::Tensor vertices;   ///< V x 3 float32
  torch::Tensor faces;      ///< F x 3 int64, 0-based
  torch::Tensor normals;    ///< V x 3 float32 per-vertex normals (optional)
  torch::Tensor colors;     ///< V x 3 float32 in [0, 1] per-vertex colours (optional)
  torch::Tensor uvs;        ///< T x 2 float32 texture coordinates, (u, v) with v up as in OBJ (optional)
  torch::Tensor uv_faces;   ///< F x 3 int64 indices into `uvs` per face corner (optional; if undefined and
                            ///< `uvs` has V rows, UVs are per vertex)
};

/// Checks shapes, dtypes, index ranges and finiteness; throws ValueError naming the field.
void validate_mesh(const Mesh& mesh);

/// Writes a PLY: vertices, faces, and optional normals (nx ny nz), colours (uchar red green blue) and per-vertex
/// UVs (s t; only when UVs are per vertex). Atomic.
void write_ply(const std::string& path, const Mesh& mesh, bool binary = true);

/// Writes an OBJ with `vt` UVs and `f v/vt[/vn]` faces when UVs are present; when `texture_path` is given a
/// `<stem>.mtl` is written beside it with `map_Kd <texture_path>` and referenced by `mtllib`. Atomic.
void write_obj(const std::string& path, const Mesh& mesh, const std::string& texture_path = "");

/// Writes by extension: .ply (binary) or .obj.
void write_mesh(const std::string& path, const Mesh& mesh);

/// Reads a PLY (ASCII / binary little / binary big endian) or OBJ triangle mesh (polygons are fan-triangulated;
/// OBJ `vt` and per-corner UV indices are kept). Errors name the file and line or element.
Mesh read_mesh(const std::string& path);

}  // namespace pixel3dmm::io
