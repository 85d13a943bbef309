#pragma once
/// Synthetic meshes for tests, benchmarks and examples (the project renders no licence-gated asset in its tests).

#include <torch/torch.h>

namespace pixel3dmm::render {

/// A triangle mesh with per-corner texture coordinates, laid out like FLAME's OBJ: positions are shared (watertight),
/// UVs have their own index buffer (seams duplicate UVs, not positions).
struct TriangleMesh {
  torch::Tensor vertices;  ///< V x 3 float32
  torch::Tensor faces;     ///< F x 3 int64, counter-clockwise seen from outside (outward normals)
  torch::Tensor uvs;       ///< T x 2 float32 (u right, v up)
  torch::Tensor uv_faces;  ///< F x 3 int64 into uvs
};

/// Latitude-longitude sphere of the given radius centred at the origin, poles on the y axis (north = +y):
/// rings >= 2 latitude bands, segments >= 3 longitude sectors; V = 2 + (rings - 1) segments,
/// F = 2 segments (rings - 1) (rings = 51, segments = 100 gives 10,000 triangles, about FLAME's 9,976).
/// u runs once around the y axis with u = 0.5 facing +z (the seam at -z); v = 1 at the north pole, 0 at the south.
TriangleMesh uv_sphere(int64_t rings, int64_t segments, double radius = 1.0);

}  // namespace pixel3dmm::render
