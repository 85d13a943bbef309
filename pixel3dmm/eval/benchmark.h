#pragma once
/// The reconstruction benchmark (the paper's third contribution, in the NeRSemble protocol): every case is scored
/// twice, against the posed ground truth (the expression of the photo) and against the neutral one (the person's
/// identity with zero expression and pose). Each prediction is aligned to the truth from the 7 NoW landmarks
/// (rigid Umeyama) refined by ICP, over the face region, then compared with Chamfer distances, R2.5 and normal
/// consistency (metrics.h).
///
/// A benchmark folder holds `cases.jsonl` (one JSON object per line):
///   {"name": "case_000", "gt_posed": "case_000/gt_posed.ply", "gt_neutral": "case_000/gt_neutral.ply",
///    "fit_inputs": "case_000/fit_inputs", "image": "case_000/fit_inputs/crop.png",
///    "landmarks_posed": [[x, y, z] x 7], "landmarks_neutral": [[x, y, z] x 7]}
/// name, gt_posed and gt_neutral are required; paths are relative to the folder; the landmarks (metres, NoW order)
/// are needed only for ground-truth meshes without FLAME topology (scans). `benchmark.json` beside it records how
/// the benchmark was made (generator, seed, FLAME model; optional).

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "pixel3dmm/eval/alignment.h"
#include "pixel3dmm/eval/metrics.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/predict/predictor.h"

namespace pixel3dmm::eval {

struct BenchmarkCase {
  std::string name;
  std::string gt_posed, gt_neutral;  ///< ground-truth meshes (absolute or relative to the manifest's folder)
  std::string fit_inputs;            ///< a fit-inputs folder (reconstruct/fit_inputs.h), for our fits; optional
  std::string image;                 ///< the photo (a face crop), for methods that start from pixels; optional
  torch::Tensor landmarks_posed, landmarks_neutral;  ///< 7 x 3 float32 NoW landmarks of the truth; optional
};

struct Benchmark {
  std::string folder;  ///< the manifest's folder; case paths are resolved against it
  std::string flame;   ///< FLAME model the benchmark was made with ("" = the synthetic model), from benchmark.json
  std::vector<BenchmarkCase> cases;
  /// A case's path resolved against `folder` (empty stays empty).
  std::string resolve(const std::string& path) const;
};

/// Reads a manifest: a benchmark folder (its cases.jsonl) or a .jsonl file. Throws FileNotFound for a missing
/// file, FormatError naming file, line and key for a malformed line, a duplicate name or a bad landmark array.
Benchmark read_benchmark(const std::string& path);
/// Writes `folder`/cases.jsonl (paths as given), atomically.
void write_manifest(const std::string& folder, const std::vector<BenchmarkCase>& cases);

struct ScoreOptions {
  MetricOptions metrics;    ///< R2.5 threshold, samples per surface
  IcpOptions icp;           ///< ICP after the landmark alignment (iterations = 0: landmarks only)
  bool with_scale = false;  ///< similarity instead of rigid alignment (NeRSemble: rigid)
};

/// One geometry's score.
struct GeometryScore {
  SurfaceMetrics metrics;
  Similarity alignment;        ///< prediction -> truth
  torch::Tensor vertex_error;  ///< V_gt float32 metres: each truth vertex to the aligned prediction; NaN outside
                               ///< the region scored
};

/// Scores meshes against ground truth with one FLAME model's face region and landmark embedding.
class Scorer {
 public:
  explicit Scorer(flame::FlameModel model, ScoreOptions options = {});

  /// pred: a FLAME-topology mesh (the NoW landmarks are read off it); gt: a FLAME-topology mesh, or any mesh (already
  /// cropped to the face) with `gt_landmarks` (7 x 3, NoW order) given. Both are restricted to the face region
  /// (eval::face_region_vertices) when they have FLAME topology.
  GeometryScore score(const io::Mesh& pred, const io::Mesh& gt, const torch::Tensor& gt_landmarks = {}) const;

  const flame::FlameModel& model() const { return model_; }
  const ScoreOptions& options() const { return options_; }
  /// The faces of the scored region of a mesh with `n_vertices` vertices and faces `faces`.
  torch::Tensor region_faces(const torch::Tensor& faces, int64_t n_vertices) const;

 private:
  flame::FlameModel model_;
  ScoreOptions options_;
  torch::Tensor in_region_;  // V bool
};

/// One case's outcome.
struct CaseScore {
  std::string name;
  bool ok = false;
  std::string error;  ///< why it failed (the run goes on)
  GeometryScore posed, neutral;
  bool has_neutral = false;
  double fit_seconds = 0.0;
};

/// Mean figures over the successful cases.
struct Summary {
  int64_t cases = 0, failed = 0;
  double posed_l1 = 0, posed_l2 = 0, posed_r25 = 0, posed_nc = 0;
  double neutral_l1 = 0, neutral_l2 = 0, neutral_r25 = 0, neutral_nc = 0;
  double fit_seconds = 0;
};

struct BenchmarkResults {
  std::string method;
  std::vector<CaseScore> cases;
  Summary summary() const;
};

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

/// results.md (per-case rows and the mean) and results.csv (every metric), atomically.
void write_results(const std::string& folder, const BenchmarkResults& results);

/// Per-vertex error heat maps of the first `count` scored cases: the ground-truth posed and neutral meshes shaded
/// and coloured by vertex_error (0 to `max_mm`, grey outside the region), with a colour bar. -> 3 x H x W in [0, 1].
torch::Tensor heatmap_image(const Benchmark& bench, const BenchmarkResults& results, int count, double max_mm = 5.0,
                            int64_t panel = 256);

/// Several methods' summaries side by side, with the relative posed / neutral L1 change against `baseline`
/// (a method name; skipped when absent). Markdown.
std::string comparison_table(const std::vector<BenchmarkResults>& results, const std::string& baseline = "landmarks");

}  // namespace pixel3dmm::eval
