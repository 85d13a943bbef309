#pragma once
/// The tracker evaluated on a synthetic video with known geometry (synth/synthetic_video.h): vertex error and
/// jitter of the tracked meshes against the truth, and against independent single-image fits (docs/tracking.md).

#include <torch/torch.h>

#include <functional>
#include <string>

#include "pixel3dmm/flame/flame_model.h"
#include "pixel3dmm/synth/synthetic_video.h"
#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::track {

/// Frame-to-frame jitter: mean over frames 1 .. N-2 and the given vertices (undefined = all) of
/// |v[t+1] - 2 v[t] + v[t-1]| (metres), the vertices' discrete acceleration. vertices: N x V x 3, N >= 3.
double vertex_jitter(const torch::Tensor& vertices, const torch::Tensor& subset = {});

/// Error and jitter of a sequence of meshes against the truth (non-eyeball vertices, as docs/fitting.md measures).
struct SequenceErrors {
  double posed = 0.0;   ///< mean over frames of the vertex error after a rigid (Kabsch) alignment per frame (m)
  double face = 0.0;    ///< the same over the face region (eval::face_region_vertices) (m)
  double jitter = 0.0;  ///< vertex_jitter of the world-space vertices (m); 0 for fewer than 3 frames
  double seconds_per_frame = 0.0;
};
SequenceErrors sequence_errors(const torch::Tensor& vertices, const torch::Tensor& truth,
                               const flame::FlameModel& model);

/// The tracker against independent single-image fits on one synthetic video (the evaluation in docs/tracking.md).
struct SyntheticEvaluation {
  synth::SyntheticVideo video;
  TrackResult result;
  double head_size = 0.0;      ///< diagonal of frame 0's posed head's bounding box (m)
  SequenceErrors truth;        ///< the truth against itself (its jitter: the motion's own acceleration)
  SequenceErrors online;       ///< after the online stage
  SequenceErrors tracked;      ///< after the global stage
  SequenceErrors independent;  ///< every frame fitted alone (Fitter::fit, the single-image schedule); if compared
  bool compared = false;
};
/// Makes the video, tracks it (state folder and callback as Tracker::track) and, with `compare`, fits each frame on
/// its own with the tracker's fitter.
SyntheticEvaluation evaluate_synthetic_video(const Tracker& tracker, const synth::SyntheticVideoOptions& video,
                                             bool compare, const std::string& state = "",
                                             const TrackCallback& on_progress = {},
                                             const std::function<void(int64_t frame)>& on_single_fit = {});

}  // namespace pixel3dmm::track
