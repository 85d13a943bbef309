#include "pixel3dmm/track/synthetic_evaluation.h"

#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/vertex_error.h"

namespace pixel3dmm::track {

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

SyntheticEvaluation evaluate_synthetic_video(const Tracker& tracker, const synth::SyntheticVideoOptions& vo,
                                             bool compare, const std::string& state, const TrackCallback& on_progress,
                                             const std::function<void(int64_t)>& on_single_fit) {
  SyntheticEvaluation ev;
  const auto& model = tracker.fitter().flame()->model();
  ev.video = synth::make_synthetic_video(tracker.fitter(), vo);
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
