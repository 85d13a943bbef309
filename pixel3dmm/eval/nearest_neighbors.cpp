#include "pixel3dmm/eval/nearest_neighbors.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::eval {
namespace {

std::vector<float> to_floats(const torch::Tensor& t, const std::string& what) {
  check_shape(t, {-1, 3}, what);
  PIXEL3DMM_CHECK_T(ValueError, t.is_floating_point(), what, ": expected a floating-point tensor, found ",
                    t.scalar_type());
  check_finite(t, what);
  const auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

inline float dist2(const float* a, const float* b) {
  const float x = a[0] - b[0], y = a[1] - b[1], z = a[2] - b[2];
  return x * x + y * y + z * z;
}

constexpr int64_t kGrain = 256;

// Closest point on triangle (a, b, c) to p, by the Voronoi regions of the triangle (vertex, edge, face); writes the
// barycentric coordinates (of a, b, c) and returns the squared distance.
float closest_on_triangle(const float* p, const float* a, const float* b, const float* c, float* bary) {
  auto sub = [](const float* u, const float* v, float* o) { o[0] = u[0] - v[0], o[1] = u[1] - v[1], o[2] = u[2] - v[2]; };
  auto dot = [](const float* u, const float* v) { return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]; };
  float ab[3], ac[3], ap[3], bp[3], cp[3];
  sub(b, a, ab), sub(c, a, ac), sub(p, a, ap);
  const float d1 = dot(ab, ap), d2 = dot(ac, ap);
  float u = 1, v = 0, w = 0;  // weights of a, b, c
  if (d1 <= 0 && d2 <= 0) {
    u = 1, v = 0, w = 0;
  } else {
    sub(p, b, bp);
    const float d3 = dot(ab, bp), d4 = dot(ac, bp);
    sub(p, c, cp);
    const float d5 = dot(ab, cp), d6 = dot(ac, cp);
    const float vc = d1 * d4 - d3 * d2, vb = d5 * d2 - d1 * d6, va = d3 * d6 - d5 * d4;
    if (d3 >= 0 && d4 <= d3) {
      u = 0, v = 1, w = 0;
    } else if (vc <= 0 && d1 >= 0 && d3 <= 0) {
      const float t = d1 / (d1 - d3);
      u = 1 - t, v = t, w = 0;
    } else if (d6 >= 0 && d5 <= d6) {
      u = 0, v = 0, w = 1;
    } else if (vb <= 0 && d2 >= 0 && d6 <= 0) {
      const float t = d2 / (d2 - d6);
      u = 1 - t, v = 0, w = t;
    } else if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
      const float t = (d4 - d3) / ((d4 - d3) + (d5 - d6));
      u = 0, v = 1 - t, w = t;
    } else {
      const float denom = va + vb + vc;
      if (!(std::abs(denom) > 0)) {  // degenerate triangle: fall back to the nearest corner
        const float da = dist2(p, a), db = dist2(p, b), dc = dist2(p, c);
        u = v = w = 0;
        (da <= db && da <= dc ? u : db <= dc ? v : w) = 1;
      } else {
        v = vb / denom, w = vc / denom, u = 1 - v - w;
      }
    }
  }
  bary[0] = u, bary[1] = v, bary[2] = w;
  float q[3];
  for (int k = 0; k < 3; ++k) q[k] = u * a[k] + v * b[k] + w * c[k];
  return dist2(p, q);
}

}  // namespace

KdTree::KdTree(const torch::Tensor& points, int leaf_size) {
  coords_ = to_floats(points, "KdTree points");
  const auto n = static_cast<int64_t>(coords_.size() / 3);
  PIXEL3DMM_CHECK_T(ValueError, n >= 1, "KdTree: expected at least one point, found none");
  PIXEL3DMM_CHECK_T(ValueError, n < (int64_t{1} << 31), "KdTree: at most 2^31 - 1 points, found ", n);
  PIXEL3DMM_CHECK_T(ValueError, leaf_size >= 1, "KdTree: leaf_size must be >= 1, found ", leaf_size);
  index_.resize(static_cast<size_t>(n));
  std::iota(index_.begin(), index_.end(), int64_t{0});
  nodes_.reserve(static_cast<size_t>(2 * n / leaf_size + 2));
  build(0, static_cast<int32_t>(n), leaf_size);
  sorted_.resize(coords_.size());
  for (size_t k = 0; k < index_.size(); ++k)
    std::copy_n(&coords_[3 * static_cast<size_t>(index_[k])], 3, &sorted_[3 * k]);
}

int32_t KdTree::build(int32_t begin, int32_t end, int leaf_size) {
  const auto id = static_cast<int32_t>(nodes_.size());
  nodes_.push_back({begin, end, -1, -1, 0, 0.0f});
  if (end - begin <= leaf_size) return id;
  float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int32_t k = begin; k < end; ++k) {
    const float* p = point(index_[static_cast<size_t>(k)]);
    for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], p[a]), hi[a] = std::max(hi[a], p[a]);
  }
  int axis = 0;
  for (int a = 1; a < 3; ++a)
    if (hi[a] - lo[a] > hi[axis] - lo[axis]) axis = a;
  const int32_t mid = begin + (end - begin) / 2;
  std::nth_element(index_.begin() + begin, index_.begin() + mid, index_.begin() + end,
                   [&](int64_t x, int64_t y) { return point(x)[axis] < point(y)[axis]; });
  const float split = point(index_[static_cast<size_t>(mid)])[axis];
  const int32_t left = build(begin, mid, leaf_size);
  const int32_t right = build(mid, end, leaf_size);
  Node& n = nodes_[static_cast<size_t>(id)];
  n.left = left, n.right = right, n.axis = axis, n.split = split;
  return id;
}

NearestNeighbors KdTree::query(const torch::Tensor& queries) const {
  const std::vector<float> q = to_floats(queries, "KdTree query points");
  const auto m = static_cast<int64_t>(q.size() / 3);
  auto distances = torch::empty({m}, torch::kFloat);
  auto indices = torch::empty({m}, torch::kLong);
  float* dist = distances.data_ptr<float>();
  int64_t* idx = indices.data_ptr<int64_t>();
  at::parallel_for(0, m, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* p = &q[3 * static_cast<size_t>(i)];
      float best2 = std::numeric_limits<float>::infinity(), bound = best2;
      int64_t best = -1;
      search(p, bound, [&](int64_t j, const float* xyz) {
        const float d2 = dist2(p, xyz);
        if (d2 < best2 || (d2 == best2 && j < best)) {
          best2 = d2, best = j;
          bound = std::sqrt(best2);
        }
      });
      dist[i] = std::sqrt(best2);
      idx[i] = best;
    }
  });
  return {distances, indices};
}

NearestNeighbors nearest_neighbors(const torch::Tensor& points, const torch::Tensor& queries) {
  return KdTree(points).query(queries);
}

NearestNeighbors nearest_neighbors_brute_force(const torch::Tensor& points, const torch::Tensor& queries) {
  const std::vector<float> p = to_floats(points, "points"), q = to_floats(queries, "query points");
  const auto n = static_cast<int64_t>(p.size() / 3), m = static_cast<int64_t>(q.size() / 3);
  PIXEL3DMM_CHECK_T(ValueError, n >= 1, "nearest_neighbors_brute_force: expected at least one point");
  auto distances = torch::empty({m}, torch::kFloat);
  auto indices = torch::empty({m}, torch::kLong);
  float* dist = distances.data_ptr<float>();
  int64_t* idx = indices.data_ptr<int64_t>();
  at::parallel_for(0, m, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float best2 = std::numeric_limits<float>::infinity();
      int64_t best = -1;
      for (int64_t j = 0; j < n; ++j) {
        const float d2 = dist2(&q[3 * static_cast<size_t>(i)], &p[3 * static_cast<size_t>(j)]);
        if (d2 < best2) best2 = d2, best = j;
      }
      dist[i] = std::sqrt(best2);
      idx[i] = best;
    }
  });
  return {distances, indices};
}

namespace {

torch::Tensor triangle_centroids(const torch::Tensor& vertices, const torch::Tensor& faces) {
  check_shape(vertices, {-1, 3}, "SurfaceDistance vertices");
  check_shape(faces, {-1, 3}, "SurfaceDistance faces");
  PIXEL3DMM_CHECK_T(ValueError, faces.size(0) >= 1, "SurfaceDistance: expected at least one triangle");
  PIXEL3DMM_CHECK_T(ValueError, !faces.is_floating_point(), "SurfaceDistance faces: expected integer indices");
  const auto f = faces.to(torch::kLong);
  PIXEL3DMM_CHECK_T(ValueError, f.min().item<int64_t>() >= 0 && f.max().item<int64_t>() < vertices.size(0),
                    "SurfaceDistance faces: indices out of range [0, ", vertices.size(0), ")");
  return vertices.detach().to(torch::kFloat).index_select(0, f.reshape({-1})).reshape({-1, 3, 3}).mean(1);
}

}  // namespace

SurfaceDistance::SurfaceDistance(const torch::Tensor& vertices, const torch::Tensor& faces)
    : centroids_(triangle_centroids(vertices, faces)) {
  const auto corners = vertices.detach().to(torch::kFloat).index_select(0, faces.to(torch::kLong).reshape({-1}))
                           .reshape({-1, 3, 3}).contiguous();
  tri_.assign(corners.data_ptr<float>(), corners.data_ptr<float>() + corners.numel());
  const auto centroid = corners.mean(1, true);
  radius_ = (corners - centroid).norm(2, -1).max().item<float>() * 1.0001f + 1e-12f;
}

SurfaceQuery SurfaceDistance::query(const torch::Tensor& queries) const {
  const std::vector<float> q = to_floats(queries, "SurfaceDistance query points");
  const auto m = static_cast<int64_t>(q.size() / 3);
  SurfaceQuery r;
  r.distances = torch::empty({m}, torch::kFloat);
  r.points = torch::empty({m, 3}, torch::kFloat);
  r.faces = torch::empty({m}, torch::kLong);
  r.barycentric = torch::empty({m, 3}, torch::kFloat);
  float* dist = r.distances.data_ptr<float>();
  float* pts = r.points.data_ptr<float>();
  int64_t* fid = r.faces.data_ptr<int64_t>();
  float* bar = r.barycentric.data_ptr<float>();
  at::parallel_for(0, m, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* p = &q[3 * static_cast<size_t>(i)];
      float best2 = std::numeric_limits<float>::infinity(), bound = best2, bc[3], best_bc[3] = {1, 0, 0};
      int64_t best = -1;
      // A triangle whose centroid is c lies within radius_ of c, so one farther than (best + radius_) cannot win.
      centroids_.search(p, bound, [&](int64_t t, const float*) {
        const float* tri = &tri_[9 * static_cast<size_t>(t)];
        const float d2 = closest_on_triangle(p, tri, tri + 3, tri + 6, bc);
        if (d2 < best2 || (d2 == best2 && t < best)) {
          best2 = d2, best = t;
          std::copy_n(bc, 3, best_bc);
          bound = std::sqrt(best2) + radius_;
        }
      });
      const float* tri = &tri_[9 * static_cast<size_t>(best)];
      for (int k = 0; k < 3; ++k) {
        pts[3 * i + k] = best_bc[0] * tri[k] + best_bc[1] * tri[3 + k] + best_bc[2] * tri[6 + k];
        bar[3 * i + k] = best_bc[k];
      }
      dist[i] = std::sqrt(best2);
      fid[i] = best;
    }
  });
  return r;
}

}  // namespace pixel3dmm::eval
