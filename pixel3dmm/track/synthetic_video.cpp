#include "pixel3dmm/track/synthetic_video.h"

#include <algorithm>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/vertex_error.h"

namespace pixel3dmm::track {

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
  const fit::FitParams keys = fit::random_params(n_keys, cfg.n_shape, cfg.n_expr, o.seed, o.pose);
  SyntheticVideo v;
  v.truth = keys.clone();
  for (auto* t : {&v.truth.expression, &v.truth.jaw, &v.truth.neck, &v.truth.eyes, &v.truth.eyelids,
                  &v.truth.rotation, &v.truth.translation})
    *t = interpolate_keys(*t, o.frames, o.key_every).contiguous();
  for (int64_t f = 0; f < o.frames; ++f) {
    fit::SyntheticTargetOptions m = o.maps;
    m.seed = o.maps.seed + static_cast<uint64_t>(f) * 7919u + o.seed * 104729u;
    fit::SyntheticTarget st = fit::render_synthetic_target(fitter, v.truth, f, m);
    v.frames.push_back(std::move(st.target));
    if (f == 0) v.canonical = st.canonical;
    v.vertices = v.vertices.defined() ? torch::cat({v.vertices, st.vertices}) : st.vertices;
    v.vertices_flame = v.vertices_flame.defined() ? torch::cat({v.vertices_flame, st.vertices_flame})
                                                  : st.vertices_flame;
  }
  return v;
}

double vertex_jitter(const torch::Tensor& vertices, const torch::Tensor& subset) {
  check_shape(vertices, {-1, -1, 3}, "vertex_jitter: vertices");
  PIXEL3DMM_CHECK_T(ValueError, vertices.size(0) >= 3, "vertex_jitter: needs at least 3 frames, got ",
                    vertices.size(0));
  const auto v = subset.defined() ? vertices.index_select(1, subset) : vertices;
  const int64_t n = v.size(0);
  const auto acc = v.slice(0, 2, n) - 2 * v.slice(0, 1, n - 1) + v.slice(0, 0, n - 2);
  return acc.norm(2, -1).mean().item<double>();
}

SequenceErrors sequence_errors(const torch::Tensor& vertices, const torch::Tensor& truth,
                               const flame::FlameModel& model) {
  SequenceErrors e;
  const auto measured = eval::non_eyeball_vertices(model);
  e.posed = eval::aligned_vertex_error(vertices, truth, measured);
  e.face = eval::aligned_vertex_error(vertices, truth, eval::face_region_vertices(model));
  if (vertices.size(0) >= 3) e.jitter = vertex_jitter(vertices, measured);
  return e;
}

SyntheticEvaluation evaluate_synthetic_video(const Tracker& tracker, const SyntheticVideoOptions& vo, bool compare,
                                             const std::string& state, const TrackCallback& on_progress,
                                             const std::function<void(int64_t)>& on_single_fit) {
  SyntheticEvaluation ev;
  const auto& model = tracker.fitter().flame()->model();
  ev.video = make_synthetic_video(tracker.fitter(), vo);
  const auto head = ev.video.vertices[0];
  ev.head_size = (std::get<0>(head.max(0)) - std::get<0>(head.min(0))).norm().item<double>();
  ev.result = tracker.track(ev.video.frames, state, on_progress);
  if (!ev.result.complete) return ev;
  const double n = static_cast<double>(ev.video.frames.size());
  ev.truth = sequence_errors(ev.video.vertices, ev.video.vertices, model);
  TrackResult online = ev.result;
  online.params = ev.result.online_params;
  tracker.evaluate(online);
  ev.online = sequence_errors(online.vertices, ev.video.vertices, model);
  ev.online.seconds_per_frame = ev.result.online_seconds / n;
  ev.tracked = sequence_errors(ev.result.vertices, ev.video.vertices, model);
  ev.tracked.seconds_per_frame = (ev.result.online_seconds + ev.result.global_seconds) / n;
  if (compare) {
    std::vector<torch::Tensor> independent;
    double seconds = 0.0;
    for (size_t i = 0; i < ev.video.frames.size(); ++i) {
      const fit::FitResult f = tracker.fitter().fit(ev.video.frames[i]);
      independent.push_back(f.vertices);
      seconds += f.seconds;
      if (on_single_fit) on_single_fit(static_cast<int64_t>(i));
    }
    ev.independent = sequence_errors(torch::cat(independent), ev.video.vertices, model);
    ev.independent.seconds_per_frame = seconds / n;
    ev.compared = true;
  }
  return ev;
}

}  // namespace pixel3dmm::track
