#pragma once
/// The reconstruction benchmark (the paper's third contribution, in the NeRSemble protocol): every case is scored
/// twice, against the posed ground truth (the expression of the photo) and against the neutral one (the person's
/// identity with zero expression and pose). Each prediction is aligned to the truth from the 7 NoW landmarks
/// (rigid Umeyama) refined by ICP, over the face region, then compared with Chamfer distances, R2.5 and normal
/// consistency (metrics.h).
///
/// One include for the whole benchmark: the manifest (benchmark_manifest.h: a folder's cases.jsonl), scoring
/// (scorer.h), results and tables (benchmark_results.h), heat maps (heatmap.h) and, here, running methods over a
/// benchmark. eval/synthetic_benchmark.h writes the synthetic benchmark.

#include <cstdint>
#include <functional>
#include <string>

#include "pixel3dmm/eval/benchmark_manifest.h"
#include "pixel3dmm/eval/benchmark_results.h"
#include "pixel3dmm/eval/heatmap.h"
#include "pixel3dmm/eval/scorer.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/predict/predictor.h"

namespace pixel3dmm::eval {

/// The methods `run_benchmark` fits: "landmarks" (Fitter::fit_landmarks_only), "uv" (the fit with the normal term
/// off), "normals" (the full stage's UV terms off: the paper's fourth ablation row), "full" (UV + normals: the
/// method), "ours" (= full with the config as given). For "full"/"ours" a
/// predictor, when given, replaces the case's maps by its predictions on the case's image (method (d)).
fit::FitConfig method_config(const std::string& method, fit::FitConfig config);

struct RunOptions {
  std::string method = "full";
  fit::FitConfig config;  ///< before method_config
  ScoreOptions score;
  const predict::Predictor* predictor = nullptr;  ///< optional: network predictions on the case photos
  int heatmaps = 3;                               ///< cases drawn in heatmaps.png (0: none)
  /// Called after each case with (cases done, total, its score).
  std::function<void(int64_t, int64_t, const CaseScore&)> progress;
  fit::FitCallback on_step;  ///< passed to every fit
  /// >= 0: the identity-prior experiment (synthetic benchmarks only): each case's fit is given an identity prior
  /// (FitTarget::identity, as MICA's code would be) = the true identity from <case>/truth.json + N(0, noise^2)
  /// per coefficient, seeded by the case's index; the method's name gets " + prior". < 0: no prior.
  double identity_noise = -1.0;
};

/// Fits every case with `options.method`, writes the meshes to <out>/meshes/<name>_{posed,neutral}.ply, scores
/// them, and writes <out>/results.{md,csv} and <out>/heatmaps.png. A case that fails is reported, not fatal.
BenchmarkResults run_benchmark(const Benchmark& bench, const flame::Flame& flame, const RunOptions& options,
                               const std::string& out);

/// Scores any tool's meshes: <meshes>/<name>_posed.{ply,obj} (required) and <name>_neutral.{ply,obj} (optional),
/// FLAME topology. Writes the same results as run_benchmark into `out` (method name `method`).
BenchmarkResults score_benchmark(const Benchmark& bench, const flame::FlameModel& model, const std::string& meshes,
                                 const ScoreOptions& options, const std::string& out,
                                 const std::string& method = "meshes", int heatmaps = 3,
                                 const std::function<void(int64_t, int64_t, const CaseScore&)>& progress = {});

}  // namespace pixel3dmm::eval
