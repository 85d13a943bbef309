#include "pixel3dmm/eval/benchmark.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/eval/nearest_neighbors.h"
#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/tensor_json.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::eval {
namespace {

namespace fs = std::filesystem;

torch::Tensor landmarks_from_json(const io::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return {};
  const auto& a = j[key];
  PIXEL3DMM_CHECK_FORMAT(a.is_array() && a.size() == 7, where, "key '", key, "': expected 7 rows of 3 numbers");
  auto t = torch::empty({7, 3}, torch::kFloat);
  for (int i = 0; i < 7; ++i) {
    PIXEL3DMM_CHECK_FORMAT(a[i].is_array() && a[i].size() == 3, where, "key '", key, "' row ", i,
                           ": expected 3 numbers");
    for (int k = 0; k < 3; ++k) {
      PIXEL3DMM_CHECK_FORMAT(a[i][k].is_number() && std::isfinite(a[i][k].get<double>()), where, "key '", key, "' row ",
                             i, ": expected finite numbers");
      t[i][k] = a[i][k].get<double>();
    }
  }
  return t;
}

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

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}

}  // namespace

// ---------------------------------------------------------------- manifest

std::string Benchmark::resolve(const std::string& path) const {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(folder) / path).string();
}

Benchmark read_benchmark(const std::string& path) {
  const fs::path p(path);
  const fs::path file = fs::is_directory(p) ? p / "cases.jsonl" : p;
  PIXEL3DMM_CHECK_T(FileNotFound, fs::is_regular_file(file), file.string(),
                    ": no such benchmark manifest (expected a folder with cases.jsonl, or a .jsonl file)");
  Benchmark b;
  b.folder = file.parent_path().string();
  if (b.folder.empty()) b.folder = ".";
  const fs::path meta = file.parent_path() / "benchmark.json";
  if (fs::exists(meta)) {
    const io::json m = io::read_json(meta.string());
    b.flame = m.value("flame", std::string());
  }
  std::ifstream in(file);
  PIXEL3DMM_CHECK_T(FileNotFound, in.good(), file.string(), ": cannot open");
  std::string line;
  std::set<std::string> names;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + " line " + std::to_string(number);
    io::json j;
    try {
      j = io::json::parse(line);
    } catch (const std::exception& e) {
      throw FormatError(where + ": not valid JSON (" + e.what() + ")");
    }
    PIXEL3DMM_CHECK_FORMAT(j.is_object(), where, "expected a JSON object per line");
    BenchmarkCase c;
    for (auto [key, field] : {std::pair{"name", &c.name}, {"gt_posed", &c.gt_posed}, {"gt_neutral", &c.gt_neutral}}) {
      PIXEL3DMM_CHECK_FORMAT(j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty(), where,
                             "missing required key '", key, "' (a non-empty string)");
      *field = j[key].get<std::string>();
    }
    for (auto [key, field] : {std::pair{"fit_inputs", &c.fit_inputs}, {"image", &c.image}}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      PIXEL3DMM_CHECK_FORMAT(j[key].is_string(), where, "key '", key, "': expected a string");
      *field = j[key].get<std::string>();
    }
    // The name becomes output file names (meshes/<name>_posed.ply): "../x" would write outside the output folder.
    PIXEL3DMM_CHECK_FORMAT(
        c.name != "." && c.name != ".." && c.name.find_first_of(std::string("/\\\0", 3)) == std::string::npos, where,
        "case name '", c.name, "' must be a plain file name (no '/', '\\', '..')");
    c.landmarks_posed = landmarks_from_json(j, "landmarks_posed", where);
    c.landmarks_neutral = landmarks_from_json(j, "landmarks_neutral", where);
    PIXEL3DMM_CHECK_FORMAT(names.insert(c.name).second, where, "duplicate case name '", c.name, "'");
    b.cases.push_back(std::move(c));
  }
  PIXEL3DMM_CHECK_FORMAT(!b.cases.empty(), file.string(), "the manifest lists no cases");
  return b;
}

void write_manifest(const std::string& folder, const std::vector<BenchmarkCase>& cases) {
  fs::create_directories(folder);
  std::ostringstream out;
  for (const auto& c : cases) {
    io::json j = {{"name", c.name}, {"gt_posed", c.gt_posed}, {"gt_neutral", c.gt_neutral}};
    if (!c.fit_inputs.empty()) j["fit_inputs"] = c.fit_inputs;
    if (!c.image.empty()) j["image"] = c.image;
    if (c.landmarks_posed.defined()) j["landmarks_posed"] = io::tensor_to_json(c.landmarks_posed);
    if (c.landmarks_neutral.defined()) j["landmarks_neutral"] = io::tensor_to_json(c.landmarks_neutral);
    out << j.dump() << "\n";
  }
  const std::string text = out.str();
  write_atomically((fs::path(folder) / "cases.jsonl").string(), [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    PIXEL3DMM_CHECK(f.good(), tmp, ": write failed");
  });
}

// ---------------------------------------------------------------- scoring

Scorer::Scorer(flame::FlameModel model, ScoreOptions options) : model_(std::move(model)), options_(options) {
  in_region_ = torch::zeros({model_.n_vertices()}, torch::kBool);
  in_region_.index_fill_(0, face_region_vertices(model_), true);
}

torch::Tensor Scorer::region_faces(const torch::Tensor& faces, int64_t n_vertices) const {
  const auto f = faces.to(torch::kLong);
  if (n_vertices != model_.n_vertices()) return f;
  const auto keep = in_region_.index_select(0, f.reshape({-1})).reshape({-1, 3}).all(1);
  return f.index_select(0, keep.nonzero().squeeze(1));
}

GeometryScore Scorer::score(const io::Mesh& pred, const io::Mesh& gt, const torch::Tensor& gt_landmarks) const {
  const int64_t v = model_.n_vertices();
  PIXEL3DMM_CHECK_T(ValueError, pred.vertices.defined() && pred.vertices.size(0) == v,
                    "score: the prediction must have FLAME topology (", v,
                    " vertices, to read the NoW landmarks "
                    "off it), found ",
                    pred.vertices.defined() ? pred.vertices.size(0) : 0);
  torch::Tensor gt_lmk = gt_landmarks;
  if (!gt_lmk.defined()) {
    PIXEL3DMM_CHECK_T(ValueError, gt.vertices.size(0) == v, "score: the ground truth has ", gt.vertices.size(0),
                      " vertices, not FLAME's ", v,
                      ": give its 7 NoW landmarks (landmarks_posed / "
                      "landmarks_neutral in the manifest)");
    gt_lmk = now_landmarks(model_, gt.vertices.to(torch::kFloat));
  }
  check_shape(gt_lmk, {7, 3}, "ground-truth NoW landmarks");
  const auto pv = pred.vertices.to(torch::kFloat), gv = gt.vertices.to(torch::kFloat);
  const auto pf = region_faces(pred.faces, pv.size(0)), gf = region_faces(gt.faces, gv.size(0));
  PIXEL3DMM_CHECK_T(ValueError, pf.size(0) > 0 && gf.size(0) > 0, "score: the face region has no triangles");
  GeometryScore s;
  s.alignment = umeyama(now_landmarks(model_, pv), gt_lmk, options_.with_scale);
  if (options_.icp.iterations > 0) {
    const int64_t n = options_.metrics.samples;
    const auto src = sample_surface(pv, pf, n, options_.metrics.seed + 7).points;
    const auto dst = sample_surface(gv, gf, 2 * n, options_.metrics.seed + 8).points;
    IcpOptions icp = options_.icp;
    icp.with_scale = options_.with_scale;
    s.alignment = eval::icp(src, dst, s.alignment, icp).transform;
  }
  const auto aligned = s.alignment.apply(pv);
  s.metrics = compare_surfaces(aligned, pf, gv, gf, options_.metrics);
  const auto d = SurfaceDistance(aligned, pf).query(gv).distances;
  // Scored vertices: those of the region's triangles (a region vertex with no region triangle is not surface).
  auto mask = torch::zeros({gv.size(0)}, torch::kBool);
  mask.index_fill_(0, gf.reshape({-1}), true);
  s.vertex_error = torch::where(mask, d, torch::full_like(d, NAN));
  return s;
}

// ---------------------------------------------------------------- runner

Summary BenchmarkResults::summary() const {
  Summary s;
  std::vector<double> pl1, pl2, pr, pn, nl1, nl2, nr, nn, secs;
  for (const auto& c : cases) {
    if (!c.ok) {
      ++s.failed;
      continue;
    }
    ++s.cases;
    pl1.push_back(c.posed.metrics.chamfer_l1), pl2.push_back(c.posed.metrics.chamfer_l2);
    pr.push_back(c.posed.metrics.r25), pn.push_back(c.posed.metrics.normal_consistency);
    if (c.has_neutral) {
      nl1.push_back(c.neutral.metrics.chamfer_l1), nl2.push_back(c.neutral.metrics.chamfer_l2);
      nr.push_back(c.neutral.metrics.r25), nn.push_back(c.neutral.metrics.normal_consistency);
    }
    secs.push_back(c.fit_seconds);
  }
  s.posed_l1 = mean_of(pl1), s.posed_l2 = mean_of(pl2), s.posed_r25 = mean_of(pr), s.posed_nc = mean_of(pn);
  s.neutral_l1 = mean_of(nl1), s.neutral_l2 = mean_of(nl2), s.neutral_r25 = mean_of(nr), s.neutral_nc = mean_of(nn);
  s.fit_seconds = mean_of(secs);
  return s;
}

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

// ---------------------------------------------------------------- tables

namespace {

std::string fmt(double x, int digits = 3) {
  if (std::isnan(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

void write_text(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    PIXEL3DMM_CHECK(f.good(), tmp, ": write failed");
  });
}

}  // namespace

void write_results(const std::string& folder, const BenchmarkResults& r) {
  fs::create_directories(folder);
  std::ostringstream md, csv;
  md << "# Benchmark results: " << r.method << "\n\n"
     << "Chamfer L1 = mean of both directions (mm); R2.5 = share of ground-truth points within 2.5 mm (%); NC = "
        "normal consistency. Face region, rigid alignment from the 7 NoW landmarks + ICP.\n\n"
     << "| case | posed L1 (mm) | posed R2.5 (%) | posed NC | neutral L1 (mm) | neutral R2.5 (%) | neutral NC | "
        "fit (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
  csv << "case,ok,posed_chamfer_l1_mm,posed_accuracy_l1_mm,posed_completeness_l1_mm,posed_chamfer_l2_mm2,"
         "posed_r25,posed_precision25,posed_normal_consistency,neutral_chamfer_l1_mm,neutral_accuracy_l1_mm,"
         "neutral_completeness_l1_mm,neutral_chamfer_l2_mm2,neutral_r25,neutral_precision25,"
         "neutral_normal_consistency,fit_seconds,error\n";
  for (const auto& c : r.cases) {
    if (!c.ok) {
      md << "| " << c.name << " | failed: " << c.error << " | | | | | | |\n";
      std::string err = c.error;
      for (char& ch : err)
        if (ch == '"' || ch == '\n') ch = '\'';
      csv << c.name << ",0,,,,,,,,,,,,,,,,\"" << err << "\"\n";
      continue;
    }
    const auto& p = c.posed.metrics;
    const auto& n = c.neutral.metrics;
    const double nan = NAN;
    auto nv = [&](double x) { return c.has_neutral ? x : nan; };
    md << "| " << c.name << " | " << fmt(p.chamfer_l1) << " | " << fmt(100 * p.r25, 1) << " | "
       << fmt(p.normal_consistency, 4) << " | " << fmt(nv(n.chamfer_l1)) << " | " << fmt(nv(100 * n.r25), 1) << " | "
       << fmt(nv(n.normal_consistency), 4) << " | " << fmt(c.fit_seconds, 1) << " |\n";
    csv << c.name << ",1," << fmt(p.chamfer_l1, 5) << "," << fmt(p.accuracy_l1, 5) << "," << fmt(p.completeness_l1, 5)
        << "," << fmt(p.chamfer_l2, 5) << "," << fmt(p.r25, 5) << "," << fmt(p.precision25, 5) << ","
        << fmt(p.normal_consistency, 5) << "," << fmt(nv(n.chamfer_l1), 5) << "," << fmt(nv(n.accuracy_l1), 5) << ","
        << fmt(nv(n.completeness_l1), 5) << "," << fmt(nv(n.chamfer_l2), 5) << "," << fmt(nv(n.r25), 5) << ","
        << fmt(nv(n.precision25), 5) << "," << fmt(nv(n.normal_consistency), 5) << "," << fmt(c.fit_seconds, 2)
        << ",\n";
  }
  const Summary s = r.summary();
  md << "| **mean (" << s.cases << " cases" << (s.failed ? ", " + std::to_string(s.failed) + " failed" : "")
     << ")** | **" << fmt(s.posed_l1) << "** | **" << fmt(100 * s.posed_r25, 1) << "** | **" << fmt(s.posed_nc, 4)
     << "** | **" << fmt(s.neutral_l1) << "** | **" << fmt(100 * s.neutral_r25, 1) << "** | **" << fmt(s.neutral_nc, 4)
     << "** | " << fmt(s.fit_seconds, 1) << " |\n";
  write_text((fs::path(folder) / "results.md").string(), md.str());
  write_text((fs::path(folder) / "results.csv").string(), csv.str());
}

std::string comparison_table(const std::vector<BenchmarkResults>& results, const std::string& baseline) {
  const BenchmarkResults* base = nullptr;
  for (const auto& r : results)
    if (r.method == baseline) base = &r;
  std::ostringstream md;
  md << "| method | cases | posed L1 (mm) | posed R2.5 (%) | posed NC | neutral L1 (mm) | neutral R2.5 (%) | "
        "neutral NC | posed L1 vs "
     << baseline << " | neutral L1 vs " << baseline << " | fit (s) |\n"
     << "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& r : results) {
    const Summary s = r.summary();
    std::string dp = "-", dn = "-";
    if (base && &r != base) {
      const Summary b = base->summary();
      dp = fmt(100 * (s.posed_l1 / b.posed_l1 - 1), 1) + " %";
      dn = fmt(100 * (s.neutral_l1 / b.neutral_l1 - 1), 1) + " %";
    }
    md << "| " << r.method << " | " << s.cases << (s.failed ? " (+" + std::to_string(s.failed) + " failed)" : "")
       << " | " << fmt(s.posed_l1) << " | " << fmt(100 * s.posed_r25, 1) << " | " << fmt(s.posed_nc, 4) << " | "
       << fmt(s.neutral_l1) << " | " << fmt(100 * s.neutral_r25, 1) << " | " << fmt(s.neutral_nc, 4) << " | " << dp
       << " | " << dn << " | " << fmt(s.fit_seconds, 1) << " |\n";
  }
  return md.str();
}

// ---------------------------------------------------------------- heat maps

namespace {

// Error in [0, 1] -> RGB: blue, cyan, green, yellow, red.
torch::Tensor colormap(const torch::Tensor& t) {
  const auto x = t.clamp(0, 1) * 4;
  const auto r = (x - 2).clamp(0, 1);
  const auto g = torch::where(x < 1, x, torch::where(x < 3, torch::ones_like(x), 4 - x)).clamp(0, 1);
  const auto b = torch::where(x < 1, torch::ones_like(x), 2 - x).clamp(0, 1);
  return torch::stack({r, g, b}, -1);
}

// One panel: the mesh seen from the default camera (world z = 1 looking down -z), framed on its region.
torch::Tensor render_panel(const torch::Tensor& vertices, const torch::Tensor& faces, const torch::Tensor& error,
                           double max_mm, int64_t size) {
  const auto v = vertices.to(torch::kFloat);
  const auto valid = error.isfinite();
  const auto region = valid.any().item<bool>() ? v.index({valid}) : v;
  const auto centre = (std::get<0>(region.max(0)) + std::get<0>(region.min(0))) / 2;
  const double extent = (std::get<0>(region.max(0)) - std::get<0>(region.min(0))).slice(0, 0, 2).max().item<double>();
  auto placed = v - centre;  // centred at the origin, 1 m from the camera
  render::Camera cam = render::Camera::official(size, 0.85 / std::max(extent, 1e-6));
  const auto clip = cam.to_clip(placed.unsqueeze(0));
  const auto raster = render::rasterize(clip, faces, size, size);
  const auto vn = vertex_normals(v, faces);
  auto colour = torch::where(valid.unsqueeze(-1), colormap(error.nan_to_num(0) * 1e3 / max_mm),
                             torch::full({v.size(0), 3}, 0.75f));
  const auto attr = torch::cat({colour, vn}, -1).unsqueeze(0);
  const auto img = render::interpolate(attr, raster)[0];  // H x W x 6
  const auto shade = (img.slice(-1, 5, 6).abs() * 0.7 + 0.3);
  const auto cover = raster.coverage()[0].unsqueeze(-1).to(torch::kFloat);
  const auto rgb = img.slice(-1, 0, 3) * shade * cover + (1 - cover);
  return rgb.permute({2, 0, 1}).contiguous();  // 3 x H x W
}

}  // namespace

torch::Tensor heatmap_image(const Benchmark& bench, const BenchmarkResults& results, int count, double max_mm,
                            int64_t panel) {
  std::vector<torch::Tensor> rows;
  std::vector<std::string> names;
  for (const auto& c : results.cases) {
    if (static_cast<int>(rows.size()) >= count) break;
    if (!c.ok) continue;
    const BenchmarkCase* bc = nullptr;
    for (const auto& b : bench.cases)
      if (b.name == c.name) bc = &b;
    if (!bc) continue;
    const io::Mesh posed = io::read_mesh(bench.resolve(bc->gt_posed));
    std::vector<torch::Tensor> panels;
    panels.push_back(render_panel(posed.vertices, posed.faces, c.posed.vertex_error, max_mm, panel));
    if (c.has_neutral) {
      const io::Mesh neutral = io::read_mesh(bench.resolve(bc->gt_neutral));
      panels.push_back(render_panel(neutral.vertices, neutral.faces, c.neutral.vertex_error, max_mm, panel));
    } else {
      panels.push_back(torch::ones({3, panel, panel}));
    }
    rows.push_back(torch::cat(panels, 2));
    names.push_back(c.name);
  }
  if (rows.empty()) return {};
  auto image = torch::cat(rows, 1);  // 3 x (n panel) x (2 panel)
  // Colour bar with labels under the panels.
  const int64_t w = image.size(2), bar_h = 48;
  auto bar = torch::ones({3, bar_h, w});
  const auto ramp = colormap(torch::linspace(0, 1, w - 40)).t();  // 3 x (w - 40)
  bar.slice(1, 6, 22).slice(2, 20, w - 20).copy_(ramp.unsqueeze(1).expand({3, 16, w - 40}));
  image = torch::cat({image, bar}, 1);
  auto hwc = (image.permute({1, 2, 0}) * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  cv::Mat mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  const int y = static_cast<int>(image.size(1)) - 10;
  auto text = [&](const std::string& s, int x) {
    cv::putText(mat, s, {x, y}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  };
  text("0 mm", 20);
  text(fmt(max_mm / 2, 1) + " mm", static_cast<int>(w / 2) - 16);
  text(">= " + fmt(max_mm, 1) + " mm", static_cast<int>(w) - 80);
  for (int64_t i = 0; i < static_cast<int64_t>(rows.size()); ++i) {
    const int top = static_cast<int>(i * panel) + 14;
    cv::putText(mat, names[static_cast<size_t>(i)] + " posed", {4, top}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1,
                cv::LINE_AA);
    cv::putText(mat, names[static_cast<size_t>(i)] + " neutral", {static_cast<int>(panel) + 4, top},
                cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  return hwc.to(torch::kFloat).permute({2, 0, 1}) / 255.0;
}

}  // namespace pixel3dmm::eval
