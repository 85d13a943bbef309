#pragma once
/// Nearest-neighbour search for the benchmark's metrics and ICP: a static 3-D k-d tree over a point set, and the
/// exact distance from points to a triangle surface (a k-d tree over triangle centroids, pruned by the largest
/// triangle radius). Queries run in parallel with at::parallel_for (at::get_num_threads() threads); results do not
/// depend on the thread count.

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pixel3dmm::eval {

/// Nearest neighbours of a query set. distances: M float32 Euclidean (units of the points); indices: M int64.
struct NearestNeighbors {
  torch::Tensor distances;
  torch::Tensor indices;
};

/// A static k-d tree (median splits along the widest axis, leaves of at most `leaf_size` points). Built once,
/// queried from any number of threads. Coordinates are kept as float32.
class KdTree {
 public:
  /// points: N x 3 (any floating dtype, finite, N >= 1). Throws ValueError otherwise.
  explicit KdTree(const torch::Tensor& points, int leaf_size = 8);

  /// queries: M x 3 -> the nearest point of the tree for each (ties: the lower point index wins).
  NearestNeighbors query(const torch::Tensor& queries) const;

  /// Visits the points that may lie within `bound` of q, nearest subtrees first: `visit(i, xyz)` receives a point's
  /// original index and its 3 coordinates and may lower `bound` (a Euclidean distance); subtrees farther than
  /// `bound` are skipped.
  template <typename Visit>
  void search(const float* q, float& bound, Visit&& visit) const;

  int64_t size() const { return static_cast<int64_t>(index_.size()); }
  /// The stored coordinates of point i (original index), 3 floats.
  const float* point(int64_t i) const { return &coords_[3 * static_cast<size_t>(i)]; }

 private:
  struct Node {
    int32_t begin = 0, end = 0;   // range into order_
    int32_t left = -1, right = -1;  // children (-1: leaf)
    int32_t axis = 0;
    float split = 0.0f;
  };
  int32_t build(int32_t begin, int32_t end, int leaf_size);

  std::vector<float> coords_;    // N x 3, original order
  std::vector<float> sorted_;    // N x 3, in tree order (cache-friendly leaves)
  std::vector<int64_t> index_;   // tree order -> original index
  std::vector<Node> nodes_;
};

/// Builds a tree over `points` (N x 3) and queries it with `queries` (M x 3).
NearestNeighbors nearest_neighbors(const torch::Tensor& points, const torch::Tensor& queries);

/// The reference: every pair (M x N distances, in blocks), for tests and the benchmark. Same tie rule.
NearestNeighbors nearest_neighbors_brute_force(const torch::Tensor& points, const torch::Tensor& queries);

/// Closest points on a triangle surface.
struct SurfaceQuery {
  torch::Tensor distances;    ///< M float32, Euclidean distance to the surface
  torch::Tensor points;       ///< M x 3 float32, the closest surface point
  torch::Tensor faces;        ///< M int64, the triangle it lies on
  torch::Tensor barycentric;  ///< M x 3 float32, its barycentric coordinates in that triangle
};

/// Exact point-to-triangle-mesh distance (not point-to-vertex: a point set sampled on a surface would otherwise
/// measure its own spacing as error).
class SurfaceDistance {
 public:
  /// vertices: V x 3; faces: F x 3 int64 in [0, V), F >= 1. Throws ValueError otherwise.
  SurfaceDistance(const torch::Tensor& vertices, const torch::Tensor& faces);
  /// queries: M x 3 -> the closest surface point of each.
  SurfaceQuery query(const torch::Tensor& queries) const;

 private:
  std::vector<float> tri_;  // F x 9: the three corners
  KdTree centroids_;
  float radius_ = 0.0f;     // largest centroid-to-corner distance
};

// ---- implementation of the template ----

template <typename Visit>
void KdTree::search(const float* q, float& bound, Visit&& visit) const {
  struct Item {
    int32_t node;
    float plane;  // distance from q to the splitting plane that separates this subtree (0: q's side)
  };
  Item stack[128];
  int top = 0;
  stack[top++] = {0, 0.0f};
  while (top > 0) {
    const Item item = stack[--top];
    if (item.plane > bound) continue;
    const Node& n = nodes_[static_cast<size_t>(item.node)];
    if (n.left < 0) {
      for (int32_t k = n.begin; k < n.end; ++k) visit(index_[static_cast<size_t>(k)], &sorted_[3 * static_cast<size_t>(k)]);
      continue;
    }
    const float diff = q[n.axis] - n.split;
    const int32_t near_child = diff < 0 ? n.left : n.right, far_child = diff < 0 ? n.right : n.left;
    const float far_plane = std::max(item.plane, diff < 0 ? -diff : diff);
    if (far_plane <= bound) stack[top++] = {far_child, far_plane};
    stack[top++] = {near_child, item.plane};
  }
}

}  // namespace pixel3dmm::eval
