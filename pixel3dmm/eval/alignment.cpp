#include "pixel3dmm/eval/alignment.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/nearest_neighbors.h"

namespace pixel3dmm::eval {

Similarity Similarity::identity() {
  return {torch::eye(3, torch::kDouble), torch::zeros({3}, torch::kDouble), 1.0};
}

torch::Tensor Similarity::apply(const torch::Tensor& points) const {
  const auto p = points.to(torch::kDouble);
  return (scale * torch::matmul(p, rotation.t()) + translation).to(points.scalar_type());
}

torch::Tensor Similarity::rotate(const torch::Tensor& directions) const {
  return torch::matmul(directions.to(torch::kDouble), rotation.t()).to(directions.scalar_type());
}

Similarity Similarity::compose(const Similarity& o) const {
  // s R (s' R' x + t') + t
  return {torch::matmul(rotation, o.rotation), scale * torch::matmul(rotation, o.translation) + translation,
          scale * o.scale};
}

std::string Similarity::repr() const {
  const auto r = rotation.contiguous(), t = translation.contiguous();
  const double angle = std::acos(std::clamp((r.trace().item<double>() - 1) / 2, -1.0, 1.0)) * 180.0 / M_PI;
  char buf[200];
  std::snprintf(buf, sizeof buf, "Similarity(scale=%.6g, rotation=%.4g deg, translation=[%.6g, %.6g, %.6g])", scale,
                angle, t[0].item<double>(), t[1].item<double>(), t[2].item<double>());
  return buf;
}

Similarity umeyama(const torch::Tensor& src, const torch::Tensor& dst, bool with_scale) {
  check_shape(src, {-1, 3}, "umeyama src");
  check_shape(dst, {src.size(0), 3}, "umeyama dst");
  PIXEL3DMM_CHECK_T(ValueError, src.size(0) >= 3, "umeyama: expected at least 3 point pairs, found ", src.size(0));
  check_finite(src, "umeyama src");
  check_finite(dst, "umeyama dst");
  const auto x = src.detach().to(torch::kDouble), y = dst.detach().to(torch::kDouble);
  const auto mx = x.mean(0), my = y.mean(0);
  const auto xc = x - mx, yc = y - my;
  const auto n = static_cast<double>(x.size(0));
  const auto cov = torch::matmul(yc.t(), xc) / n;  // 3 x 3, dst x src
  auto [u, s, vh] = torch::linalg_svd(cov, false);
  PIXEL3DMM_CHECK_T(ValueError, s[1].item<double>() > 1e-12 * std::max(1.0, s[0].item<double>()),
                    "umeyama: the points are (nearly) collinear; the rotation is undetermined");
  auto d = torch::ones({3}, torch::kDouble);
  if (torch::det(u).item<double>() * torch::det(vh).item<double>() < 0) d[2] = -1.0;
  const auto r = torch::matmul(u * d, vh);
  double scale = 1.0;
  if (with_scale) {
    const double var = (xc * xc).sum().item<double>() / n;
    PIXEL3DMM_CHECK_T(ValueError, var > 0, "umeyama: the source points coincide; the scale is undetermined");
    scale = (s * d).sum().item<double>() / var;
  }
  return {r, my - scale * torch::matmul(r, mx), scale};
}

torch::Tensor now_landmarks(const flame::FlameModel& model, const torch::Tensor& vertices) {
  PIXEL3DMM_CHECK_T(ValueError, model.has_landmarks() && model.static_lmk_faces_idx.size(0) == 51, model.source,
                    ": the NoW landmarks need FLAME's 51-point static landmark embedding (iBUG 17-67), found ",
                    model.has_landmarks() ? model.static_lmk_faces_idx.size(0) : 0, " points");
  check_shape(vertices, {model.n_vertices(), 3}, "now_landmarks vertices (the FLAME model's vertex count)");
  std::vector<int64_t> rows;
  for (int i : kNowLandmarksIbug) rows.push_back(i - 17);
  const auto sel = torch::tensor(rows, torch::kLong);
  const auto faces = model.faces.to(torch::kLong).index_select(0, model.static_lmk_faces_idx.to(torch::kLong).index_select(0, sel));
  const auto bary = model.static_lmk_bary_coords.to(vertices.scalar_type()).index_select(0, sel);  // 7 x 3
  const auto corners = vertices.index_select(0, faces.reshape({-1})).reshape({7, 3, 3});
  return (corners * bary.unsqueeze(-1)).sum(1);
}

IcpResult icp(const torch::Tensor& source, const torch::Tensor& target, const Similarity& initial,
              const IcpOptions& o) {
  check_shape(source, {-1, 3}, "icp source");
  PIXEL3DMM_CHECK_T(ValueError, o.iterations >= 0, "icp: iterations must be >= 0");
  const KdTree tree(target);
  const auto tgt = target.detach().to(torch::kDouble);
  const auto src = source.detach().to(torch::kDouble);
  IcpResult r;
  r.transform = initial;
  double previous = INFINITY;
  for (int it = 0; it < o.iterations; ++it) {
    const auto moved = r.transform.apply(src);
    const NearestNeighbors nn = tree.query(moved);
    auto keep = o.max_distance > 0 ? nn.distances <= o.max_distance : torch::ones_like(nn.distances, torch::kBool);
    const auto idx = keep.nonzero().squeeze(1);
    PIXEL3DMM_CHECK(idx.numel() >= 3, "icp: fewer than 3 point pairs within max_distance ", o.max_distance,
                    " m after ", it, " iterations (is the initial alignment wrong?)");
    const auto d = nn.distances.index_select(0, idx).to(torch::kDouble);
    const double mse = (d * d).mean().item<double>();
    r.rms = std::sqrt(mse), r.pairs = idx.numel(), r.iterations = it + 1;
    const Similarity step = umeyama(moved.index_select(0, idx), tgt.index_select(0, nn.indices.index_select(0, idx)),
                                    o.with_scale);
    r.transform = step.compose(r.transform);
    if (std::abs(previous - mse) < o.tolerance) break;
    previous = mse;
  }
  return r;
}

}  // namespace pixel3dmm::eval
