#pragma once
/// A synthetic video with known geometry, for testing and evaluating the tracker: one random identity animated along a
/// smooth random trajectory (expression, jaw, eyelids, head rotation and translation interpolated between random
/// key poses), each frame's maps rendered exactly by our renderer (fit::render_synthetic_target: rendered UV and
/// normals with noise and outlier pixels, masks, landmarks with detector-like noise, a shaded picture).

#include <torch/torch.h>

#include <vector>

#include "pixel3dmm/fit/synthetic_target.h"
#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::track {

struct SyntheticVideoOptions {
  int64_t frames = 24;              ///< number of frames
  int64_t key_every = 8;            ///< frames between random key poses (the trajectory is a C1 cubic through them)
  fit::RandomParamsOptions pose;    ///< range of the key poses (the focal length is one for the whole video)
  fit::SyntheticTargetOptions maps; ///< map size, noise, outliers (the seed is varied per frame)
  uint64_t seed = 0;
};

struct SyntheticVideo {
  std::vector<fit::FitTarget> frames;  ///< one target per frame (target.image: the shaded render)
  fit::FitParams truth;                ///< N rows: the ground-truth trajectory
  torch::Tensor vertices;              ///< N x V x 3 world-space ground truth
  torch::Tensor vertices_flame;        ///< N x V x 3 FLAME space, posed
  torch::Tensor canonical;             ///< 1 x V x 3 neutral ground truth
};

/// Renders the video with the fitter's model and renderer (deterministic in options.seed).
SyntheticVideo make_synthetic_video(const fit::Fitter& fitter, const SyntheticVideoOptions& options = {});

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
  SyntheticVideo video;
  TrackResult result;
  double head_size = 0.0;        ///< diagonal of frame 0's posed head's bounding box (m)
  SequenceErrors truth;          ///< the truth against itself (its jitter: the motion's own acceleration)
  SequenceErrors online;         ///< after the online stage
  SequenceErrors tracked;        ///< after the global stage
  SequenceErrors independent;    ///< every frame fitted alone (Fitter::fit, the single-image schedule); if compared
  bool compared = false;
};
/// Makes the video, tracks it (state folder and callback as Tracker::track) and, with `compare`, fits each frame on
/// its own with the tracker's fitter.
SyntheticEvaluation evaluate_synthetic_video(const Tracker& tracker, const SyntheticVideoOptions& video,
                                             bool compare, const std::string& state = "",
                                             const TrackCallback& on_progress = {},
                                             const std::function<void(int64_t frame)>& on_single_fit = {});

}  // namespace pixel3dmm::track
