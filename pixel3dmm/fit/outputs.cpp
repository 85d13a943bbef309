#include "pixel3dmm/fit/outputs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <set>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "pixel3dmm/io/plot.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::fit {
namespace F = torch::nn::functional;

namespace {

FitParams select_image(const FitParams& p, int64_t i) {
  FitParams q = p.clone();
  for (auto* t : {&q.expression, &q.jaw, &q.neck, &q.eyes, &q.eyelids, &q.rotation, &q.translation})
    *t = t->slice(0, i, i + 1);
  return q;
}

FitParams padded(const Fitter& fitter, FitParams q) {
  auto pad = [](const torch::Tensor& x, int64_t n) {
    return x.size(1) == n ? x : torch::cat({x, torch::zeros({x.size(0), n - x.size(1)})}, 1);
  };
  q.shape = pad(q.shape, fitter.flame()->n_shape());
  q.expression = pad(q.expression, fitter.flame()->n_expr());
  return q;
}

torch::Tensor resized(const torch::Tensor& img, int64_t s) {
  if (img.size(2) == s && img.size(3) == s) return img;
  return F::interpolate(img, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{s, s})
                                 .mode(torch::kBilinear)
                                 .align_corners(false)
                                 .antialias(true));
}

struct Rendered {
  render::RenderOutput out;
  torch::Tensor normals_flame;  // 1 x 3 x S x S
};

Rendered render_image(const Fitter& fitter, const FitResult& result, int64_t index) {
  torch::NoGradGuard no_grad;
  const FitParams q = padded(fitter, select_image(result.params, index));
  const Fitter::Evaluation ev = fitter.evaluate(q);
  render::RenderRequest req;
  req.normal_vertices = ev.flame.vertices_noneck;  // FLAME-frame normals, as Fitter::run renders them
  Rendered r{fitter.renderer().render(ev.vertices, fitter.camera(q), req), {}};
  r.normals_flame = r.out.normals;
  return r;
}

io::Mesh make_mesh(const Fitter& fitter, const torch::Tensor& vertices) {
  const auto& model = fitter.flame()->model();
  io::Mesh m;
  m.vertices = vertices.to(torch::kFloat).contiguous();
  m.faces = model.faces.to(torch::kLong);
  if (model.uv_coords.defined() && model.uv_faces.defined()) {
    m.uvs = model.uv_coords.to(torch::kFloat);
    m.uv_faces = model.uv_faces.to(torch::kLong);
  } else if (model.vertex_uv.defined()) {
    m.uvs = model.vertex_uv.to(torch::kFloat);
  }
  return m;
}

io::json tensor_json(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kDouble).contiguous();
  io::json values = std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  return {{"shape", t.sizes().vec()}, {"values", values}};
}

}  // namespace

torch::Tensor fit_overlay_image(const Fitter& fitter, const FitResult& result, const FitTarget& target,
                                int64_t index) {
  const Rendered r = render_image(fitter, result, index);
  const int64_t s = fitter.config().image_size;
  const auto input = target.image.defined() ? resized(target.image.to(torch::kFloat), s) : torch::full({1, 3, s, s}, 0.5);
  const auto coverage = r.out.raster.coverage().to(torch::kFloat).unsqueeze(1);
  // Official result.mp4 middle panel: 30% RGB + 70% normal shading inside the rendered mask.
  const auto shading = io::normals_png_image(r.normals_flame);
  const auto blend = input * (1 - coverage) + (0.3 * input + 0.7 * shading) * coverage;
  return torch::cat({input, blend, shading * coverage}, 3).clamp(0, 1);
}

torch::Tensor fit_maps_image(const Fitter& fitter, const FitResult& result, const FitTarget& target, int64_t index) {
  const Rendered r = render_image(fitter, result, index);
  const int64_t s = fitter.config().image_size;
  const auto coverage = r.out.raster.coverage().to(torch::kFloat).unsqueeze(1);
  const auto pred_uv = io::uv_png_image(resized(target.uv.to(torch::kFloat), s));
  const auto pred_n = io::normals_png_image(resized(target.normals.to(torch::kFloat), s));
  const auto top = torch::cat({pred_uv, io::uv_png_image(r.out.uv) * coverage}, 3);
  const auto bottom = torch::cat({pred_n, io::normals_png_image(r.normals_flame) * coverage}, 3);
  return torch::cat({top, bottom}, 2);
}

torch::Tensor loss_curve_image(const std::vector<FitLogEntry>& log, int64_t width, int64_t height) {
  // Top: the total, one series per stage, so the camera stage (blue) and the full stage (red) read apart.
  io::PlotSeries camera{"", {}, {}, {0, 120, 200}}, full{"", {}, {}, {220, 60, 0}};
  for (size_t i = 0; i < log.size(); ++i) {
    auto& s = log[i].stage == "camera" ? camera : full;
    s.x.push_back(static_cast<double>(i));
    s.y.push_back(std::max(log[i].total, 1e-12));
  }
  io::PlotOptions options;
  options.title = "total loss per step (blue: camera stage, red: full stage)";
  options.width = width;
  options.height = height;
  const auto total = io::line_plot({camera, full}, options);

  // Bottom: the full stage's main terms, each divided by its value at the stage's first step. The total mixes terms
  // of very different scales (uv_pixel alone is most of it); normalised, a falling term reads as converging and a
  // rising one as drifting, whatever its weight.
  std::map<std::string, double> first, peak;
  double peak_total = 0;
  for (const auto& e : log) {
    if (e.stage != "full") continue;
    peak_total = std::max(peak_total, e.total);
    for (const auto& [name, v] : e.terms) {
      if (!std::isfinite(v) || v <= 0) continue;
      if (!first.count(name)) first[name] = v;
      peak[name] = std::max(peak[name], v);
    }
  }
  std::vector<std::pair<double, std::string>> ranked;  // terms that reach 1% of the total, largest first
  for (const auto& [name, v] : peak)
    if (v >= 0.01 * peak_total) ranked.emplace_back(-v, name);
  std::sort(ranked.begin(), ranked.end());
  static const std::array<std::array<int, 3>, 8> colours{{{220, 60, 0},
                                                          {0, 120, 200},
                                                          {0, 150, 60},
                                                          {150, 0, 170},
                                                          {200, 150, 0},
                                                          {0, 170, 170},
                                                          {120, 120, 120},
                                                          {240, 0, 120}}};
  std::vector<io::PlotSeries> terms;
  for (size_t k = 0; k < ranked.size() && k < colours.size(); ++k) {
    const std::string& name = ranked[k].second;
    io::PlotSeries series{name, {}, {}, colours[k]};
    int step = 0;
    for (const auto& e : log) {
      if (e.stage != "full") continue;
      const auto it = e.terms.find(name);
      if (it != e.terms.end()) {
        series.x.push_back(step);
        series.y.push_back(it->second / first[name]);
      }
      ++step;
    }
    terms.push_back(std::move(series));
  }
  options.title = "full stage: each term / its value at the stage's first step";
  options.x_label = "full-stage step";
  if (terms.empty()) return total;
  return torch::cat({total, io::line_plot(terms, options)}, 2);
}

void write_fit_outputs(const std::string& folder, const Fitter& fitter, const FitResult& result,
                       const FitTarget& target, int64_t index, const FitOutputOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(folder, ec);
  PIXEL3DMM_CHECK_T(Error, fs::is_directory(folder), folder, ": cannot create the output folder");
  const auto path = [&](const char* name) { return (fs::path(folder) / name).string(); };
  const int64_t i = index;
  if (options.meshes) {
    io::write_ply(path("mesh.ply"), make_mesh(fitter, result.vertices_flame[i]));
    io::write_obj(path("mesh.obj"), make_mesh(fitter, result.vertices_flame[i]));
    io::write_ply(path("mesh_world.ply"), make_mesh(fitter, result.vertices[i]));
    io::write_ply(path("canonical.ply"), make_mesh(fitter, result.canonical[0]));
  }
  if (options.params) {
    const FitParams p = select_image(result.params, i);
    const auto R = flame::rotation_6d_to_matrix(p.rotation);
    io::TensorMap t{{"flame.exp", p.expression},
                    {"flame.shape", p.shape},
                    {"flame.eyes", p.eyes},
                    {"flame.eyelids", p.eyelids},
                    {"flame.jaw", p.jaw},
                    {"flame.neck", p.neck},
                    {"flame.R", p.rotation},
                    {"flame.R_rotation_matrix", R},
                    {"flame.t", p.translation},
                    {"camera.R_base_0", result.camera.rotation},
                    {"camera.t_base_0", result.camera.translation},
                    {"camera.fl", p.focal},
                    {"camera.pp", p.principal_point}};
    for (auto& [k, v] : t) v = v.detach().to(torch::kFloat).contiguous();
    const int64_t s = fitter.config().image_size;
    io::write_safetensors(path("params.safetensors"), t,
                          {{"img_size", std::to_string(s)}, {"format", "pixel3dmm fit parameters"}});
    io::json j;
    for (const auto& [k, v] : t) j[k] = tensor_json(v);
    j["img_size"] = {s, s};
    // The identity prior the fit pulled toward (MICA's or a given code); null: none (the official ignore_mica).
    j["identity_prior"] = result.identity_prior.defined() ? tensor_json(result.identity_prior) : io::json(nullptr);
    j["iterations"] = result.iterations;
    j["seconds"] = result.seconds;
    io::write_json(path("params.json"), j);
  }
  if (options.pictures) {
    io::write_image(path("overlay.png"), fit_overlay_image(fitter, result, target, i));
    io::write_image(path("maps.png"), fit_maps_image(fitter, result, target, i));
    io::write_image(path("loss.png"), loss_curve_image(result.log));
  }
  if (options.log) {
    std::set<std::string> names;
    for (const auto& e : result.log)
      for (const auto& [k, v] : e.terms) names.insert(k);
    std::ostringstream csv;
    csv << "stage,step,total";
    for (const auto& n : names) csv << "," << n;
    csv << "\n";
    for (const auto& e : result.log) {
      csv << e.stage << "," << e.step << "," << e.total;
      for (const auto& n : names) {
        const auto it = e.terms.find(n);
        csv << ",";
        if (it != e.terms.end()) csv << it->second;
      }
      csv << "\n";
    }
    write_file_atomically(path("loss.csv"), csv.str());
  }
}

}  // namespace pixel3dmm::fit
