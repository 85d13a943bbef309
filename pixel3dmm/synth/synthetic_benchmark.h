#pragma once
/// The cases of the synthetic reconstruction benchmark: random identities, expressions, head poses (yaw up to
/// near-profile), camera distances and focal lengths of a FLAME-layout model, rendered as the maps a perfect network
/// would predict with noise and outliers (render_synthetic_target), and as a photo-like image
/// (render_synthetic_photo) for methods that start from pixels. eval::make_synthetic_benchmark writes them as a
/// benchmark folder.

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/synth/synthetic_target.h"

namespace pixel3dmm::synth {

struct SyntheticBenchmarkOptions {
  int64_t cases = 20;
  uint64_t seed = 0;
  int64_t size = 512;     ///< map and crop resolution (the network's output size)
  double yaw_deg = 75.0;  ///< head yaw uniform in [-yaw, yaw]
  double pitch_deg = 20.0, roll_deg = 10.0, jaw_deg = 15.0;
  double expr_std = 1.0, shape_std = 1.0;
  double distance_min = 0.85, distance_max = 1.3;  ///< camera distance, in units of the default (1 m)
  double focal_min = 3.4, focal_max = 4.4;         ///< normalised focal at the default distance (scaled with distance
                                                   ///< so the head keeps its size in the picture: perspective varies)
  SyntheticTargetOptions target;                   ///< noise and outliers (size and seed are set per case)
};

/// One case: its truth and what a method is given.
struct SyntheticBenchmarkCase {
  std::string name;              ///< case_000, case_001, ...
  uint64_t seed = 0;             ///< the case's seed (parameters, noise, photo)
  double camera_distance = 1.0;  ///< in units of the default
  fit::FitParams truth;          ///< batch 1, every component of the fitter's model
  /// The maps (target.target; its image is the photo-like render, 1 x 3 x S x S), labels and the ground-truth
  /// vertices (vertices: posed world space, canonical: template + identity).
  SyntheticTarget target;
};

/// Case `index` of the benchmark `options` (deterministic in options.seed and index) with the fitter's model and
/// renderer. Throws ValueError for index < 0 or a bad distance range.
SyntheticBenchmarkCase synthetic_benchmark_case(const fit::Fitter& fitter, const SyntheticBenchmarkOptions& options,
                                                int64_t index);

}  // namespace pixel3dmm::synth
