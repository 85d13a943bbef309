#include "pixel3dmm/eval/benchmark.h"

#include <torch/torch.h>

#include <filesystem>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"

namespace pixel3dmm::eval {
namespace {

namespace fs = std::filesystem;

io::Mesh mesh_of(const torch::Tensor& vertices, const torch::Tensor& faces) {
  io::Mesh m;
  m.vertices = vertices.detach().to(torch::kFloat).contiguous();
  m.faces = faces.to(torch::kLong).contiguous();
  return m;
}

// The identity-prior experiment's prior for case `index`: the truth's identity + N(0, noise^2), seeded by the index.
torch::Tensor noisy_true_identity(const Benchmark& bench, const BenchmarkCase& c, int64_t index, double noise) {
  const std::string path = (fs::path(bench.resolve(c.gt_neutral)).parent_path() / "truth.json").string();
  PIXEL3DMM_CHECK_T(FileNotFound, fs::exists(path), path, ": no such file (the identity-prior experiment needs the ",
                    "truth of a synthetic benchmark: pixel3dmm eval synth)");
  const io::json j = io::read_json(path);
  PIXEL3DMM_CHECK_FORMAT(j.contains("params") && j["params"].contains("shape") && j["params"]["shape"].is_array() &&
                             j["params"]["shape"].size() == 1 && j["params"]["shape"][0].is_array(),
                         path, "expected params.shape = [[identity coefficients]]");
  const auto values = j["params"]["shape"][0].get<std::vector<double>>();
  const auto truth = torch::tensor(values, torch::kFloat64).to(torch::kFloat32);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(0x1d3a7 + index));
  return truth + torch::randn(truth.sizes(), gen, torch::kFloat32) * noise;
}

std::string find_mesh(const std::string& folder, const std::string& stem) {
  for (const char* ext : {".ply", ".obj"}) {
    const fs::path p = fs::path(folder) / (stem + ext);
    if (fs::exists(p)) return p.string();
  }
  return "";
}

}  // namespace

fit::FitConfig method_config(const std::string& method, fit::FitConfig config) {
  if (method == "uv") {
    config.loss.normal = 0.0;
  } else if (method == "normals") {
    config.loss.uv = 0.0;  // the full stage's UV-vertex and UV-pixel terms; the camera warm-up keeps its own
  } else if (method != "full" && method != "ours" && method != "landmarks") {
    throw ValueError("unknown benchmark method '" + method + "' (expected ours, landmarks, uv, normals or full)");
  }
  return config;
}

namespace {

void finish(const Benchmark& bench, BenchmarkResults& r, const std::string& out, int heatmaps) {
  write_results(out, r);
  if (heatmaps > 0) {
    const auto img = heatmap_image(bench, r, heatmaps);
    if (img.defined()) io::write_image((fs::path(out) / "heatmaps.png").string(), img);
  }
}

CaseScore score_case(const Scorer& scorer, const Benchmark& bench, const BenchmarkCase& c, const io::Mesh& posed,
                     const io::Mesh* neutral) {
  CaseScore s;
  s.name = c.name;
  s.posed = scorer.score(posed, io::read_mesh(bench.resolve(c.gt_posed)), c.landmarks_posed);
  if (neutral) {
    s.neutral = scorer.score(*neutral, io::read_mesh(bench.resolve(c.gt_neutral)), c.landmarks_neutral);
    s.has_neutral = true;
  }
  s.ok = true;
  return s;
}

}  // namespace

BenchmarkResults run_benchmark(const Benchmark& bench, const flame::Flame& flame, const RunOptions& o,
                               const std::string& out) {
  const fit::FitConfig config = method_config(o.method, o.config);
  const fit::Fitter fitter(flame, config);
  const Scorer scorer(flame->model(), o.score);
  const auto faces = flame->model().faces;
  const fs::path meshes = fs::path(out) / "meshes";
  fs::create_directories(meshes);
  BenchmarkResults r;
  r.method = o.method + (o.predictor ? " (network)" : "") + (o.identity_noise >= 0 ? " + prior" : "");
  const auto total = static_cast<int64_t>(bench.cases.size());
  for (int64_t i = 0; i < total; ++i) {
    const BenchmarkCase& c = bench.cases[static_cast<size_t>(i)];
    try {
      PIXEL3DMM_CHECK_T(ValueError, !c.fit_inputs.empty(), c.name,
                        ": the case has no fit_inputs (our fit needs "
                        "the landmarks and masks of the crop)");
      const auto fi = reconstruct::read_fit_inputs(bench.resolve(c.fit_inputs));
      predict::Predictions pred = fi.predictions;
      if (o.predictor) {
        PIXEL3DMM_CHECK_T(ValueError, !c.image.empty(), c.name, ": the case has no image for the network");
        pred = o.predictor->predict(io::read_image(bench.resolve(c.image)));
      }
      fit::FitTarget target = reconstruct::make_target(fi.input, pred);
      if (o.identity_noise >= 0) target.identity = noisy_true_identity(bench, c, i, o.identity_noise);
      const fit::FitResult fr =
          o.method == "landmarks" ? fitter.fit_landmarks_only({target}, o.on_step) : fitter.fit(target, o.on_step);
      const io::Mesh posed = mesh_of(fr.vertices[0], faces), neutral = mesh_of(fr.canonical[0], faces);
      io::write_ply((meshes / (c.name + "_posed.ply")).string(), posed);
      io::write_ply((meshes / (c.name + "_neutral.ply")).string(), neutral);
      CaseScore s = score_case(scorer, bench, c, posed, &neutral);
      s.fit_seconds = fr.seconds;
      r.cases.push_back(std::move(s));
    } catch (const std::exception& e) {
      CaseScore s;
      s.name = c.name;
      s.error = e.what();
      r.cases.push_back(std::move(s));
    }
    if (o.progress) o.progress(i + 1, total, r.cases.back());
  }
  finish(bench, r, out, o.heatmaps);
  return r;
}

BenchmarkResults score_benchmark(const Benchmark& bench, const flame::FlameModel& model, const std::string& meshes,
                                 const ScoreOptions& options, const std::string& out, const std::string& method,
                                 int heatmaps,
                                 const std::function<void(int64_t, int64_t, const CaseScore&)>& progress) {
  PIXEL3DMM_CHECK_T(FileNotFound, fs::is_directory(meshes), meshes, ": no such folder of meshes");
  const Scorer scorer(model, options);
  fs::create_directories(out);
  BenchmarkResults r;
  r.method = method;
  const auto total = static_cast<int64_t>(bench.cases.size());
  for (int64_t i = 0; i < total; ++i) {
    const BenchmarkCase& c = bench.cases[static_cast<size_t>(i)];
    try {
      const std::string posed_path = find_mesh(meshes, c.name + "_posed");
      PIXEL3DMM_CHECK_T(FileNotFound, !posed_path.empty(), meshes, ": no ", c.name, "_posed.ply or ", c.name,
                        "_posed.obj");
      const std::string neutral_path = find_mesh(meshes, c.name + "_neutral");
      const io::Mesh posed = io::read_mesh(posed_path);
      io::Mesh neutral;
      if (!neutral_path.empty()) neutral = io::read_mesh(neutral_path);
      r.cases.push_back(score_case(scorer, bench, c, posed, neutral_path.empty() ? nullptr : &neutral));
    } catch (const std::exception& e) {
      CaseScore s;
      s.name = c.name;
      s.error = e.what();
      r.cases.push_back(std::move(s));
    }
    if (progress) progress(i + 1, total, r.cases.back());
  }
  finish(bench, r, out, heatmaps);
  return r;
}

}  // namespace pixel3dmm::eval
