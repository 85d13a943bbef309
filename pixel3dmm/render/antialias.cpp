#include "pixel3dmm/render/antialias.h"

#include <algorithm>
#include <vector>

#include "pixel3dmm/render/autograd/functions.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {

torch::Tensor edge_topology(const torch::Tensor& faces, int64_t num_vertices) {
  PIXEL3DMM_CHECK(num_vertices >= 0, "edge_topology: num_vertices must be >= 0, found ", num_vertices);
  const auto f = detail::checked_faces(faces, num_vertices, "edge_topology");
  const int64_t F = f.size(0);
  auto opposite = torch::full({F, 3}, -1, torch::TensorOptions().dtype(torch::kInt32));
  const int64_t* fd = f.data_ptr<int64_t>();
  int32_t* od = opposite.data_ptr<int32_t>();
  // Bucket the half-edges by their smaller vertex (counting sort), then match within each (small) bucket.
  struct HalfEdge {
    int64_t hi, slot;  // larger vertex; 3 * face + edge
  };
  std::vector<int64_t> start(static_cast<size_t>(num_vertices + 1), 0);
  auto valid_face = [&](int64_t t) {
    return fd[3 * t] != fd[3 * t + 1] && fd[3 * t + 1] != fd[3 * t + 2] && fd[3 * t + 2] != fd[3 * t];
  };
  for (int64_t t = 0; t < F; ++t)
    if (valid_face(t))
      for (int i = 0; i < 3; ++i) ++start[std::min(fd[3 * t + (i + 1) % 3], fd[3 * t + (i + 2) % 3]) + 1];
  for (int64_t v = 0; v < num_vertices; ++v) start[v + 1] += start[v];
  std::vector<HalfEdge> edges(static_cast<size_t>(start[num_vertices]));
  std::vector<int64_t> cursor(start.begin(), start.end() - 1);
  for (int64_t t = 0; t < F; ++t) {
    if (!valid_face(t)) continue;
    for (int i = 0; i < 3; ++i) {
      const int64_t a = fd[3 * t + (i + 1) % 3], b = fd[3 * t + (i + 2) % 3];
      edges[cursor[std::min(a, b)]++] = {std::max(a, b), 3 * t + i};
    }
  }
  for (int64_t v = 0; v < num_vertices; ++v) {
    for (int64_t i = start[v]; i < start[v + 1]; ++i) {
      int64_t match = -1, count = 0;
      for (int64_t j = start[v]; j < start[v + 1]; ++j) {
        if (j == i || edges[j].hi != edges[i].hi) continue;
        match = j;
        ++count;
      }
      if (count == 1) od[edges[i].slot] = static_cast<int32_t>(fd[edges[match].slot]);  // slot 3t+i <-> vertex i
    }
  }
  return opposite;
}

torch::Tensor antialias(const torch::Tensor& color, const RasterOutput& raster, const torch::Tensor& topology) {
  PIXEL3DMM_CHECK(raster.triangle_id.defined() && raster.pos_clip.defined(), "antialias: empty raster output");
  PIXEL3DMM_CHECK(color.defined(), "antialias: color is undefined");
  const int64_t B = raster.triangle_id.size(0);
  check_shape(color, {B, raster.height, raster.width, -1}, "antialias: color");
  check_dtype(color, raster.bary.scalar_type(), "antialias: color (must match the clip positions)");
  PIXEL3DMM_CHECK(color.device().is_cpu(), "antialias: color must be a CPU tensor, found ", color.device());
  torch::Tensor opposite;
  if (topology.defined()) {
    check_shape(topology, {raster.faces.size(0), 3}, "antialias: topology");
    check_dtype(topology, torch::kInt32, "antialias: topology");
    opposite = topology.contiguous();
    if (opposite.numel() > 0) {
      const int64_t lo = opposite.min().item<int64_t>(), hi = opposite.max().item<int64_t>();
      PIXEL3DMM_CHECK(lo >= -1 && hi < raster.pos_clip.size(1), "antialias: topology: vertex indices must lie in [-1, ",
                      raster.pos_clip.size(1), "), found range [", lo, ", ", hi, "]");
    }
  } else {
    opposite = edge_topology(raster.faces, raster.pos_clip.size(1));
  }
  return autograd::antialias(color, raster.pos_clip, raster.triangle_id, raster.depth, raster.faces, opposite);
}

}  // namespace pixel3dmm::render
