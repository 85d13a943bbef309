#include "pixel3dmm/synth/synthetic_video.h"

#include <algorithm>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::synth {

namespace {

// Cubic Hermite through key rows with Catmull-Rom tangents (clamped at the ends): keys K x D -> N x D, key k at
// frame k * every.
torch::Tensor interpolate_keys(const torch::Tensor& keys, int64_t n, int64_t every) {
  const int64_t k = keys.size(0);
  std::vector<torch::Tensor> rows;
  for (int64_t f = 0; f < n; ++f) {
    const int64_t i = std::min(f / every, k - 2);
    const double s = std::min(1.0, double(f - i * every) / double(every));
    const auto p0 = keys[i], p1 = keys[i + 1];
    const auto m0 = (keys[std::min(i + 1, k - 1)] - keys[std::max<int64_t>(i - 1, 0)]) * (i > 0 ? 0.5 : 1.0);
    const auto m1 = (keys[std::min(i + 2, k - 1)] - keys[i]) * (i + 2 < k ? 0.5 : 1.0);
    const double s2 = s * s, s3 = s2 * s;
    rows.push_back(p0 * (2 * s3 - 3 * s2 + 1) + m0 * (s3 - 2 * s2 + s) + p1 * (-2 * s3 + 3 * s2) + m1 * (s3 - s2));
  }
  return torch::stack(rows);
}

}  // namespace

SyntheticVideo make_synthetic_video(const fit::Fitter& fitter, const SyntheticVideoOptions& o) {
  PIXEL3DMM_CHECK_T(ValueError, o.frames >= 1, "synthetic video: frames must be >= 1, got ", o.frames);
  PIXEL3DMM_CHECK_T(ValueError, o.key_every >= 1, "synthetic video: key_every must be >= 1, got ", o.key_every);
  torch::NoGradGuard no_grad;
  const auto& cfg = fitter.config();
  const int64_t n_keys = std::max<int64_t>(2, (o.frames - 1 + o.key_every - 1) / o.key_every + 1);
  // Key poses of one identity (random_params shares the shape over its batch) and one focal length.
  const fit::FitParams keys = random_params(n_keys, cfg.n_shape, cfg.n_expr, o.seed, o.pose);
  SyntheticVideo v;
  v.truth = keys.clone();
  for (auto* t : {&v.truth.expression, &v.truth.jaw, &v.truth.neck, &v.truth.eyes, &v.truth.eyelids, &v.truth.rotation,
                  &v.truth.translation})
    *t = interpolate_keys(*t, o.frames, o.key_every).contiguous();
  for (int64_t f = 0; f < o.frames; ++f) {
    SyntheticTargetOptions m = o.maps;
    m.seed = o.maps.seed + static_cast<uint64_t>(f) * 7919u + o.seed * 104729u;
    SyntheticTarget st = render_synthetic_target(fitter, v.truth, f, m);
    v.frames.push_back(std::move(st.target));
    if (f == 0) v.canonical = st.canonical;
    v.vertices = v.vertices.defined() ? torch::cat({v.vertices, st.vertices}) : st.vertices;
    v.vertices_flame =
        v.vertices_flame.defined() ? torch::cat({v.vertices_flame, st.vertices_flame}) : st.vertices_flame;
  }
  return v;
}

}  // namespace pixel3dmm::synth
