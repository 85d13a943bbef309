#pragma once
/// A synthetic video with known geometry, for testing and evaluating the tracker: one random identity animated along a
/// smooth random trajectory (expression, jaw, eyelids, head rotation and translation interpolated between random
/// key poses), each frame's maps rendered exactly by our renderer (render_synthetic_target: rendered UV and
/// normals with noise and outlier pixels, masks, landmarks with detector-like noise, a shaded picture).

#include <torch/torch.h>

#include <vector>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/synth/synthetic_target.h"

namespace pixel3dmm::synth {

struct SyntheticVideoOptions {
  int64_t frames = 24;          ///< number of frames
  int64_t key_every = 8;        ///< frames between random key poses (the trajectory is a C1 cubic through them)
  RandomParamsOptions pose;     ///< range of the key poses (the focal length is one for the whole video)
  SyntheticTargetOptions maps;  ///< map size, noise, outliers (the seed is varied per frame)
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

}  // namespace pixel3dmm::synth
