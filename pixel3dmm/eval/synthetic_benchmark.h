#pragma once
/// The synthetic benchmark written as a benchmark folder (eval/benchmark.h): the cases of
/// synth::synthetic_benchmark_case with their fit inputs, ground-truth meshes and parameters.

#include <cstdint>
#include <functional>
#include <string>

#include "pixel3dmm/eval/benchmark.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/synth/synthetic_benchmark.h"

namespace pixel3dmm::eval {

/// Writes a synthetic benchmark into `folder` (created): per case <name>/fit_inputs/ (readable by `pixel3dmm fit`;
/// its crop.png is the photo, the case's `image`), <name>/gt_posed.ply (world space: what the camera sees),
/// <name>/gt_neutral.ply (template + identity) and <name>/truth.json (the parameters); then cases.jsonl and
/// benchmark.json. Deterministic in `options.seed`. `flame_path` is recorded ("" = the synthetic model).
/// `progress(done, total)` is called after each case.
Benchmark make_synthetic_benchmark(const std::string& folder, const flame::Flame& flame,
                                   const synth::SyntheticBenchmarkOptions& options, const std::string& flame_path = "",
                                   const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace pixel3dmm::eval
