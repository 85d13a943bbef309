#include "pixel3dmm/eval/synthetic_benchmark.h"

#include <filesystem>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/tensor_json.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"

namespace pixel3dmm::eval {
namespace {

namespace fs = std::filesystem;

// The case's maps as the preprocessing would have left them: the crop is the whole picture.
preprocess::Preprocessed preprocessed_of(const fit::FitTarget& t, const std::string& name) {
  preprocess::Preprocessed p;
  const int64_t s = t.uv.size(-1);
  p.crop = t.image;
  p.landmarks = t.landmarks;
  p.iris = t.iris;
  p.uv_mask = t.uv_mask, p.normal_mask = t.normal_mask, p.fg_mask = t.fg_mask, p.valid_bg = t.valid_bg;
  p.affine = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, torch::kDouble).reshape({2, 3});
  p.box = torch::tensor({0.0f, 0.0f, float(s), float(s)});
  p.score = 1.0;
  p.image_height = p.image_width = s;
  p.source = "synthetic benchmark " + name;
  p.mask_method = "ground truth (synthetic)";
  return p;
}

}  // namespace

Benchmark make_synthetic_benchmark(const std::string& folder, const flame::Flame& flame,
                                   const synth::SyntheticBenchmarkOptions& o, const std::string& flame_path,
                                   const std::function<void(int64_t, int64_t)>& progress) {
  PIXEL3DMM_CHECK_T(ValueError, o.cases >= 1, "make_synthetic_benchmark: cases must be >= 1, found ", o.cases);
  PIXEL3DMM_CHECK_T(ValueError, o.distance_min > 0 && o.distance_min <= o.distance_max,
                    "make_synthetic_benchmark: expected 0 < distance_min <= distance_max");
  fs::create_directories(folder);
  fit::FitConfig config;  // only the renderer and the model are used: every component of the model
  config.n_shape = static_cast<int>(flame->n_shape()), config.n_expr = static_cast<int>(flame->n_expr());
  const fit::Fitter fitter(flame, config);
  const auto faces = flame->model().faces.to(torch::kLong).contiguous();
  // FLAME-topology meshes of the truth (V x 3 float32).
  auto mesh = [&](const torch::Tensor& v) {
    io::Mesh m;
    m.vertices = v.to(torch::kFloat).contiguous();
    m.faces = faces;
    return m;
  };
  std::vector<BenchmarkCase> cases;
  for (int64_t i = 0; i < o.cases; ++i) {
    const synth::SyntheticBenchmarkCase sc = synth::synthetic_benchmark_case(fitter, o, i);
    const std::string& name = sc.name;
    const fit::FitTarget& target = sc.target.target;
    const fs::path dir = fs::path(folder) / name;
    fs::create_directories(dir);
    predict::Predictions pred;
    pred.uv = target.uv, pred.normals = target.normals;
    reconstruct::write_fit_inputs((dir / "fit_inputs").string(), preprocessed_of(target, name), pred);
    io::write_ply((dir / "gt_posed.ply").string(), mesh(sc.target.vertices[0]));
    io::write_ply((dir / "gt_neutral.ply").string(), mesh(sc.target.canonical[0]));
    io::json params = io::json::object();
    for (const auto& [key, t] : sc.truth.named()) params[key] = io::tensor_to_json(t.reshape({t.size(0), -1}));
    io::write_json((dir / "truth.json").string(),
                   {{"seed", sc.seed}, {"camera_distance", sc.camera_distance}, {"params", params}});
    BenchmarkCase c;
    c.name = name;
    c.gt_posed = name + "/gt_posed.ply";
    c.gt_neutral = name + "/gt_neutral.ply";
    c.fit_inputs = name + "/fit_inputs";
    c.image = name + "/fit_inputs/crop.png";
    cases.push_back(c);
    if (progress) progress(i + 1, o.cases);
  }
  write_manifest(folder, cases);
  io::write_json((fs::path(folder) / "benchmark.json").string(), {{"generator", "pixel3dmm eval synth"},
                                                                  {"flame", flame_path},
                                                                  {"cases", o.cases},
                                                                  {"seed", o.seed},
                                                                  {"size", o.size},
                                                                  {"yaw_deg", o.yaw_deg},
                                                                  {"pitch_deg", o.pitch_deg},
                                                                  {"roll_deg", o.roll_deg},
                                                                  {"jaw_deg", o.jaw_deg},
                                                                  {"expr_std", o.expr_std},
                                                                  {"shape_std", o.shape_std},
                                                                  {"distance", {o.distance_min, o.distance_max}},
                                                                  {"focal", {o.focal_min, o.focal_max}},
                                                                  {"uv_noise", o.target.uv_noise},
                                                                  {"normal_noise", o.target.normal_noise},
                                                                  {"outlier_fraction", o.target.outlier_fraction},
                                                                  {"landmark_noise", o.target.landmark_noise}});
  return read_benchmark(folder);
}

}  // namespace pixel3dmm::eval
