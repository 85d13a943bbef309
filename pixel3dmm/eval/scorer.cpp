#include "pixel3dmm/eval/scorer.h"

#include <torch/torch.h>

#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/nearest_neighbors.h"
#include "pixel3dmm/eval/vertex_error.h"

namespace pixel3dmm::eval {

Scorer::Scorer(flame::FlameModel model, ScoreOptions options) : model_(std::move(model)), options_(options) {
  in_region_ = torch::zeros({model_.n_vertices()}, torch::kBool);
  in_region_.index_fill_(0, face_region_vertices(model_), true);
}

torch::Tensor Scorer::region_faces(const torch::Tensor& faces, int64_t n_vertices) const {
  const auto f = faces.to(torch::kLong);
  if (n_vertices != model_.n_vertices()) return f;
  const auto keep = in_region_.index_select(0, f.reshape({-1})).reshape({-1, 3}).all(1);
  return f.index_select(0, keep.nonzero().squeeze(1));
}

GeometryScore Scorer::score(const io::Mesh& pred, const io::Mesh& gt, const torch::Tensor& gt_landmarks) const {
  const int64_t v = model_.n_vertices();
  PIXEL3DMM_CHECK_T(ValueError, pred.vertices.defined() && pred.vertices.size(0) == v,
                    "score: the prediction must have FLAME topology (", v,
                    " vertices, to read the NoW landmarks "
                    "off it), found ",
                    pred.vertices.defined() ? pred.vertices.size(0) : 0);
  torch::Tensor gt_lmk = gt_landmarks;
  if (!gt_lmk.defined()) {
    PIXEL3DMM_CHECK_T(ValueError, gt.vertices.size(0) == v, "score: the ground truth has ", gt.vertices.size(0),
                      " vertices, not FLAME's ", v,
                      ": give its 7 NoW landmarks (landmarks_posed / "
                      "landmarks_neutral in the manifest)");
    gt_lmk = now_landmarks(model_, gt.vertices.to(torch::kFloat));
  }
  check_shape(gt_lmk, {7, 3}, "ground-truth NoW landmarks");
  const auto pv = pred.vertices.to(torch::kFloat), gv = gt.vertices.to(torch::kFloat);
  const auto pf = region_faces(pred.faces, pv.size(0)), gf = region_faces(gt.faces, gv.size(0));
  PIXEL3DMM_CHECK_T(ValueError, pf.size(0) > 0 && gf.size(0) > 0, "score: the face region has no triangles");
  GeometryScore s;
  s.alignment = umeyama(now_landmarks(model_, pv), gt_lmk, options_.with_scale);
  if (options_.icp.iterations > 0) {
    const int64_t n = options_.metrics.samples;
    const auto src = sample_surface(pv, pf, n, options_.metrics.seed + 7).points;
    const auto dst = sample_surface(gv, gf, 2 * n, options_.metrics.seed + 8).points;
    IcpOptions icp = options_.icp;
    icp.with_scale = options_.with_scale;
    s.alignment = eval::icp(src, dst, s.alignment, icp).transform;
  }
  const auto aligned = s.alignment.apply(pv);
  s.metrics = compare_surfaces(aligned, pf, gv, gf, options_.metrics);
  const auto d = SurfaceDistance(aligned, pf).query(gv).distances;
  // Scored vertices: those of the region's triangles (a region vertex with no region triangle is not surface).
  auto mask = torch::zeros({gv.size(0)}, torch::kBool);
  mask.index_fill_(0, gf.reshape({-1}), true);
  s.vertex_error = torch::where(mask, d, torch::full_like(d, NAN));
  return s;
}

}  // namespace pixel3dmm::eval
