#pragma once
/// Monocular video tracking as the official tracker's video mode (official-fitting.md section 6):
///   online stage  frame after frame: the first frame gets the camera warm-up and the full stage, every later frame
///                 starts from the previous frame's result and runs the full stage with early stopping; the
///                 identity stays frozen (official freeze_id) and the camera intrinsics are global;
///   global stage  all frames jointly in mini-batches: per-frame tables (expression, jaw, neck, eyes, eyelids, R, t)
///                 updated only on the selected rows ("lazy Adam", our stand-in for the official SparseAdam), one
///                 shared identity and camera (dense Adam), temporal smoothness on contiguous windows (4.7) and a
///                 step-wise learning-rate decay at 50 / 75 / 90%.
/// The tracker consumes per-frame fit::FitTargets, so the fitting core is independent of where the maps come from
/// (track/front_end.h for videos and image folders, synth/synthetic_video.h for exact synthetic maps).
/// With a state folder every finished online frame and every `checkpoint_every` global steps are written
/// atomically; a later call with the same folder and options continues from there.

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/io/config.h"

namespace pixel3dmm::track {

/// The online stage (official 6.1).
struct OnlineOptions {
  int iters = 200;                    ///< full-stage steps per frame (official `iters`, default 200)
  double early_stopping_delta = 5.0;  ///< frames > 0: stop once the mean |dloss| of the last 10 steps < delta
  bool optimise_shape = false;        ///< official freeze_id: the identity is left to the global stage
  bool discontinuous = false;         ///< official is_discontinuous: every frame restarts from the neutral pose
};
PIXEL3DMM_CONFIG(OnlineOptions, iters, early_stopping_delta, optimise_shape, discontinuous)

/// Weights of the temporal smoothness terms (official 4.7, times reg_smooth_mult = `multiplier`).
struct SmoothnessWeights {
  double exp = 50.0, eyes = 10.0, eyelids = 2.0, jaw = 50.0, neck = 1000.0, R = 2000.0, t = 15200.0;
  double multiplier = 1.0;
};
PIXEL3DMM_CONFIG(SmoothnessWeights, exp, eyes, eyelids, jaw, neck, R, t, multiplier)

/// The global stage (official 6.2).
struct GlobalOptions {
  int iters = 5000;                 ///< official global_iters
  int batch_size = 16;              ///< frames per step (min(16, N)); contiguous windows need it even
  bool smooth = true;               ///< temporal smoothness on contiguous windows
  double smooth_start = 0.15;       ///< before this share of iters, even steps take random frames, no smoothness
  SmoothnessWeights smoothness;
  std::vector<double> lr_decay_at = {0.5, 0.75, 0.9};  ///< shares of iters where the per-frame LRs drop
  std::vector<double> lr_decay = {0.5, 0.5, 0.2};      ///< the factor at each (official /2, /2, /5)
  bool optimise_camera = true;      ///< official global camera: focal (lr fit.lr.focal) and pp (fit.lr.pp) shared
  uint64_t seed = 42;               ///< batch selection (step p draws from a generator seeded by seed and p)
  int checkpoint_every = 100;       ///< steps between resumable states (with a state folder)
};
PIXEL3DMM_CONFIG(GlobalOptions, iters, batch_size, smooth, smooth_start, smoothness, lr_decay_at, lr_decay,
                 optimise_camera, seed, checkpoint_every)

/// The fit settings the tracker starts from: the official ones but for two, measured in docs/tracking.md ("The two
/// changes to the official video settings"). Both stop Adam from walking along a direction the images barely
/// constrain over the 5000 global steps, which the 500 + 500 single-image steps are too short to notice:
/// - the official dense UV loss is an ungated L2, so outlier pixels and predicted-mask pixels the render does not
///   cover push steadily along the depth / head-size valley and the fit diverges; gating it (uv_pixel_gate 0.1, as
///   configs/fit-robust.json does) keeps the stage converging;
/// - the head rotation and the neck rotation trade off (the face stays put, the neck bends); the official neck
///   prior (reg_neck 0.1) is too weak to hold it, 20 holds it and still follows a neck that turns by 20 degrees.
inline fit::FitConfig tracking_fit_defaults() {
  fit::FitConfig c;
  c.loss.uv_pixel_gate = 0.1;
  c.loss.reg_neck = 20.0;
  return c;
}

/// Everything the tracker does; `configs/track.json` mirrors it (docs/tracking.md documents each field).
struct TrackerOptions {
  fit::FitConfig fit = tracking_fit_defaults();  ///< resolution, loss weights, learning rates, camera warm-up
  OnlineOptions online;
  GlobalOptions global;
};
PIXEL3DMM_CONFIG(TrackerOptions, fit, online, global)

/// What the callback sees: one online frame finished, or one global step taken.
struct TrackProgress {
  std::string stage;   ///< "online" or "global"
  int64_t done = 0;    ///< frames (online) or steps (global) finished so far, resumed ones included
  int64_t total = 0;   ///< frames or global iters
  double loss = 0.0;   ///< the frame's final loss, or the step's total loss
  int steps = 0;       ///< online: optimisation steps the frame took (0 when it was resumed from the state)
};
/// Return false to stop; with a state folder, a later call continues where this one stopped.
using TrackCallback = std::function<bool(const TrackProgress&)>;

struct TrackResult {
  fit::FitParams params;          ///< N rows (shape, focal and pp: 1 row): the tracked sequence
  fit::FitParams online_params;   ///< N rows: after the online stage (before the global one)
  torch::Tensor vertices;         ///< N x V x 3 world (what the camera sees)
  torch::Tensor vertices_flame;   ///< N x V x 3 FLAME space, posed, no head R / t
  torch::Tensor canonical;        ///< 1 x V x 3 template + identity
  torch::Tensor identity_prior;   ///< 1 x n_shape the mean of the frames' identity codes; undefined: none (zero)
  std::vector<int> online_steps;  ///< optimisation steps per frame (camera warm-up included on frame 0)
  std::vector<double> online_loss;   ///< final loss per frame
  std::vector<double> global_loss;   ///< total loss per global step taken in this call or restored from the state
  double online_seconds = 0.0, global_seconds = 0.0;  ///< time spent in this call
  bool complete = false;          ///< false when the callback stopped the run
};

/// Sum of the weighted smoothness terms' inputs: for each per-frame parameter x of a window of B consecutive frames,
/// mean over (B - 1, dims) of (x[k] - x[k + 1])^2 times its weight * multiplier (official names smooth/exp, ...).
/// window: B >= 2 rows; returns an empty map for B < 2.
std::map<std::string, torch::Tensor> smoothness_terms(const fit::FitParams& window, const SmoothnessWeights& weights);

/// Adam moments and step count of a parameter table, updated row-wise by lazy_adam_step.
struct LazyAdamState {
  torch::Tensor exp_avg, exp_avg_sq;  ///< like the table
  int64_t step = 0;                   ///< one count for the whole table, as torch.optim.SparseAdam
};

/// One Adam step on the rows `rows` (int64, distinct) of `table` (N x D, updated in place) with their gradients
/// `grad` (len(rows) x D), as torch.optim.SparseAdam does for an embedding's sparse gradient: the moments of other
/// rows are neither decayed nor used, and those rows do not move (dense Adam on the table would keep moving them by
/// their momentum). Bias correction uses the table's step count. With all rows selected it is plain Adam.
void lazy_adam_step(torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& grad, LazyAdamState& state,
                    double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);

/// The frames a global step optimises (sorted int64 indices): a contiguous window of `batch` frames, or (random =
/// true) `batch` distinct frames drawn without replacement, from a generator seeded by (seed, step).
torch::Tensor select_frames(int64_t n_frames, int64_t batch, bool random, uint64_t seed, int64_t step);

class Tracker {
 public:
  Tracker(flame::Flame flame, TrackerOptions options = {});

  /// Tracks a sequence. frames: one target per frame, in order (all maps of one size); the frames' identity codes
  /// (FitTarget::identity, e.g. MICA's on every N // 10-th frame) average into the identity prior, which starts the
  /// identity and is the target of reg/shape in both stages. state_folder: where the
  /// resumable state lives (created if missing; empty = none). It must have been made with the same options and
  /// frame count, else ValueError. The callback may stop the run (result.complete = false).
  TrackResult track(const std::vector<fit::FitTarget>& frames, const std::string& state_folder = "",
                    const TrackCallback& on_progress = {}) const;

  /// Geometry of N-row parameters (chunked): fills result.vertices, vertices_flame, canonical from result.params.
  void evaluate(TrackResult& result) const;

  const TrackerOptions& options() const { return options_; }
  const fit::Fitter& fitter() const { return fitter_; }

 private:
  TrackerOptions options_;
  fit::Fitter fitter_;
};

/// The per-frame rows `rows` (int64) of N-row parameters (shape, focal and pp are shared and kept as they are).
fit::FitParams frame_rows(const fit::FitParams& params, const torch::Tensor& rows);

}  // namespace pixel3dmm::track
