#include "pixel3dmm/eval/metrics.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/nearest_neighbors.h"

namespace pixel3dmm::eval {
namespace {

void check_mesh(const torch::Tensor& vertices, const torch::Tensor& faces, const std::string& what) {
  check_shape(vertices, {-1, 3}, what + " vertices");
  check_shape(faces, {-1, 3}, what + " faces");
  PIXEL3DMM_CHECK_T(ValueError, vertices.is_floating_point(), what, " vertices: expected floating point, found ",
                    vertices.scalar_type());
  PIXEL3DMM_CHECK_T(ValueError, !faces.is_floating_point(), what, " faces: expected integer indices, found ",
                    faces.scalar_type());
  PIXEL3DMM_CHECK_T(ValueError, faces.size(0) >= 1, what, ": the surface has no triangles");
  check_finite(vertices, what + " vertices");
  const auto f = faces.to(torch::kLong);
  PIXEL3DMM_CHECK_T(ValueError, f.min().item<int64_t>() >= 0 && f.max().item<int64_t>() < vertices.size(0), what,
                    " faces: indices out of range [0, ", vertices.size(0), ")");
}

// One direction's statistics: distances in metres.
struct Direction {
  double l1 = 0, l2 = 0, within = 0;
};
Direction stats(const torch::Tensor& d, double threshold) {
  const auto dd = d.to(torch::kDouble);
  return {dd.mean().item<double>() * 1e3, (dd * dd).mean().item<double>() * 1e6,
          (dd <= threshold).to(torch::kDouble).mean().item<double>()};
}

SurfaceMetrics combine(const torch::Tensor& pred_to_gt, const torch::Tensor& gt_to_pred, double nc,
                       double threshold) {
  SurfaceMetrics m;
  const Direction a = stats(pred_to_gt, threshold), c = stats(gt_to_pred, threshold);
  m.accuracy_l1 = a.l1, m.completeness_l1 = c.l1, m.chamfer_l1 = 0.5 * (a.l1 + c.l1);
  m.accuracy_l2 = a.l2, m.completeness_l2 = c.l2, m.chamfer_l2 = 0.5 * (a.l2 + c.l2);
  m.precision25 = a.within, m.r25 = c.within;
  m.normal_consistency = nc;
  m.n_pred = pred_to_gt.numel(), m.n_gt = gt_to_pred.numel();
  m.pred_distances = pred_to_gt, m.gt_distances = gt_to_pred;
  return m;
}

torch::Tensor normalized(const torch::Tensor& n) { return n / n.norm(2, -1, true).clamp_min(1e-12); }

}  // namespace

torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces) {
  check_mesh(vertices, faces, "vertex_normals");
  const auto v = vertices.detach().to(torch::kDouble);
  const auto f = faces.to(torch::kLong);
  const auto a = v.index_select(0, f.select(1, 0)), b = v.index_select(0, f.select(1, 1)),
             c = v.index_select(0, f.select(1, 2));
  const auto fn = torch::cross(b - a, c - a, -1);  // length = 2 x area: area weighting for free
  auto n = torch::zeros_like(v);
  for (int k = 0; k < 3; ++k) n.index_add_(0, f.select(1, k), fn);
  const auto len = n.norm(2, -1, true);
  return torch::where(len > 0, n / len.clamp_min(1e-300), torch::zeros_like(n)).to(torch::kFloat);
}

SurfaceSamples sample_surface(const torch::Tensor& vertices, const torch::Tensor& faces, int64_t n, uint64_t seed) {
  check_mesh(vertices, faces, "sample_surface");
  PIXEL3DMM_CHECK_T(ValueError, n >= 1, "sample_surface: expected n >= 1, found ", n);
  const auto v = vertices.detach().to(torch::kDouble);
  const auto f = faces.to(torch::kLong);
  const auto a = v.index_select(0, f.select(1, 0)), b = v.index_select(0, f.select(1, 1)),
             c = v.index_select(0, f.select(1, 2));
  const auto area = torch::cross(b - a, c - a, -1).norm(2, -1);
  PIXEL3DMM_CHECK_T(ValueError, area.sum().item<double>() > 0, "sample_surface: the surface has zero area");
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto tri = torch::multinomial(area, n, true, g);
  // Uniform in a triangle: (1 - sqrt(r1), sqrt(r1) (1 - r2), sqrt(r1) r2).
  const auto r = torch::rand({n, 2}, g, torch::kDouble);
  const auto s = r.select(1, 0).sqrt();
  const auto w = torch::stack({1 - s, s * (1 - r.select(1, 1)), s * r.select(1, 1)}, 1);  // n x 3
  const auto ft = f.index_select(0, tri);
  const auto corners = v.index_select(0, ft.reshape({-1})).reshape({n, 3, 3});
  SurfaceSamples out;
  out.points = (corners * w.unsqueeze(-1)).sum(1).to(torch::kFloat);
  const auto vn = vertex_normals(vertices, faces).to(torch::kDouble);
  const auto ncorners = vn.index_select(0, ft.reshape({-1})).reshape({n, 3, 3});
  out.normals = normalized((ncorners * w.unsqueeze(-1)).sum(1)).to(torch::kFloat);
  return out;
}

SurfaceMetrics chamfer(const torch::Tensor& pred, const torch::Tensor& gt, const torch::Tensor& pred_normals,
                       const torch::Tensor& gt_normals, const MetricOptions& o) {
  const KdTree pred_tree(pred), gt_tree(gt);
  const NearestNeighbors p2g = gt_tree.query(pred), g2p = pred_tree.query(gt);
  double nc = 0;
  if (pred_normals.defined() || gt_normals.defined()) {
    PIXEL3DMM_CHECK_T(ValueError, pred_normals.defined() && gt_normals.defined(),
                      "chamfer: give normals for both point sets or for neither");
    check_shape(pred_normals, {pred.size(0), 3}, "chamfer pred_normals");
    check_shape(gt_normals, {gt.size(0), 3}, "chamfer gt_normals");
    const auto pn = normalized(pred_normals.detach().to(torch::kDouble)),
               gn = normalized(gt_normals.detach().to(torch::kDouble));
    const double a = (pn * gn.index_select(0, p2g.indices)).sum(-1).abs().mean().item<double>();
    const double c = (gn * pn.index_select(0, g2p.indices)).sum(-1).abs().mean().item<double>();
    nc = 0.5 * (a + c);
  }
  return combine(p2g.distances, g2p.distances, nc, o.threshold);
}

SurfaceMetrics compare_surfaces(const torch::Tensor& pred_vertices, const torch::Tensor& pred_faces,
                                const torch::Tensor& gt_vertices, const torch::Tensor& gt_faces,
                                const MetricOptions& o) {
  check_mesh(pred_vertices, pred_faces, "compare_surfaces pred");
  check_mesh(gt_vertices, gt_faces, "compare_surfaces gt");
  const SurfaceSamples ps = sample_surface(pred_vertices, pred_faces, o.samples, o.seed);
  const SurfaceSamples gs = sample_surface(gt_vertices, gt_faces, o.samples, o.seed + 1);
  const SurfaceDistance pred_surface(pred_vertices, pred_faces), gt_surface(gt_vertices, gt_faces);
  const SurfaceQuery p2g = gt_surface.query(ps.points), g2p = pred_surface.query(gs.points);
  // Normal of the other surface at the closest point, interpolated from its vertex normals.
  auto normal_at = [](const torch::Tensor& v, const torch::Tensor& f, const SurfaceQuery& q) {
    const auto vn = vertex_normals(v, f);
    const auto corners = f.to(torch::kLong).index_select(0, q.faces);  // M x 3
    const auto n = vn.index_select(0, corners.reshape({-1})).reshape({-1, 3, 3});
    return normalized((n * q.barycentric.unsqueeze(-1)).sum(1));
  };
  const auto gt_n = normal_at(gt_vertices, gt_faces, p2g), pred_n = normal_at(pred_vertices, pred_faces, g2p);
  const double a = (ps.normals * gt_n).sum(-1).abs().to(torch::kDouble).mean().item<double>();
  const double c = (gs.normals * pred_n).sum(-1).abs().to(torch::kDouble).mean().item<double>();
  return combine(p2g.distances, g2p.distances, 0.5 * (a + c), o.threshold);
}

std::string repr(const SurfaceMetrics& m) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "SurfaceMetrics(chamfer_l1=%.4g mm [accuracy %.4g, completeness %.4g], chamfer_l2=%.4g mm^2, "
                "r25=%.2f%%, precision25=%.2f%%, normal_consistency=%.4f, n_pred=%lld, n_gt=%lld)",
                m.chamfer_l1, m.accuracy_l1, m.completeness_l1, m.chamfer_l2, 100 * m.r25, 100 * m.precision25,
                m.normal_consistency, static_cast<long long>(m.n_pred), static_cast<long long>(m.n_gt));
  return buf;
}

}  // namespace pixel3dmm::eval
