#include "pixel3dmm/synth/synthetic_dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/io/tensor_json.h"
#include "pixel3dmm/render/antialias.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/synth/synthetic_flame.h"

namespace pixel3dmm::synth {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The seed of sample `index` of dataset `seed`: independent streams per sample, no overlap between neighbours.
uint64_t sample_seed(uint64_t seed, int64_t index) {
  return splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ull);
}

using Vec3 = std::array<double, 3>;

/// A stream of uniform and normal numbers drawn once from a seeded generator (plain doubles for the per-vertex loops).
class Draws {
 public:
  Draws(uint64_t seed, int64_t n) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
    u_ = torch::rand({n}, g, torch::TensorOptions().dtype(torch::kDouble));
  }
  double uniform(double lo = 0.0, double hi = 1.0) {
    PIXEL3DMM_CHECK(k_ < u_.size(0), "synthetic albedo: random stream exhausted");
    return lo + (hi - lo) * u_.data_ptr<double>()[k_++];
  }
  double normal() {  // Box-Muller
    const double a = std::max(uniform(), 1e-12), b = uniform();
    return std::sqrt(-2.0 * std::log(a)) * std::cos(2 * kPi * b);
  }

 private:
  torch::Tensor u_;
  int64_t k_ = 0;
};

Vec3 lerp(const Vec3& a, const Vec3& b, double t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}

double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
  const double t = l2 > 0 ? std::clamp(((px - ax) * dx + (py - ay) * dy) / l2, 0.0, 1.0) : 0.0;
  return std::hypot(px - ax - t * dx, py - ay - t * dy);
}

/// Signed distance in the x-y plane to a closed polygon: negative inside (even-odd rule).
double polygon_distance(double px, double py, const std::vector<Vec3>& poly) {
  bool in = false;
  double d = 1e9;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const auto &a = poly[i], &b = poly[j];
    if ((a[1] > py) != (b[1] > py) && px < (b[0] - a[0]) * (py - a[1]) / (b[1] - a[1]) + a[0]) in = !in;
    d = std::min(d, segment_distance(px, py, a[0], a[1], b[0], b[1]));
  }
  return in ? -d : d;
}

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

}  // namespace

torch::Tensor synthetic_albedo(const flame::FlameModel& model, uint64_t seed) {
  const int64_t n = model.n_vertices();
  const auto vt = model.v_template.to(torch::kDouble).contiguous();
  const auto v = vt.accessor<double, 2>();
  Draws r(seed, 96);

  // Skin: a tone between light and dark, a little hue jitter; low-frequency variation over the head.
  const double tone = std::pow(r.uniform(), 1.2);
  Vec3 skin = lerp({0.95, 0.78, 0.67}, {0.36, 0.23, 0.16}, tone);
  for (auto& c : skin) c = std::clamp(c * (1 + 0.04 * r.normal()), 0.0, 1.0);
  struct Wave {
    Vec3 k;
    double phase, amplitude;
    int channel;
  };
  std::vector<Wave> waves;
  for (int i = 0; i < 5; ++i) {
    Vec3 dir{r.normal(), r.normal(), r.normal()};
    const double len = std::max(std::hypot(dir[0], dir[1], dir[2]), 1e-9), freq = r.uniform(20.0, 70.0);
    for (auto& d : dir) d *= freq / len;
    // Waves 0-2 change brightness, 3-4 redness (cheeks, blotches).
    waves.push_back({dir, r.uniform(0, 2 * kPi), i < 3 ? 0.035 : 0.05, i < 3 ? -1 : 0});
  }
  // Hair (brows and scalp).
  const double h = r.uniform();
  Vec3 hair = h < 0.4    ? Vec3{0.18, 0.11, 0.07}
              : h < 0.65 ? Vec3{0.06, 0.05, 0.05}
              : h < 0.85 ? Vec3{0.36, 0.23, 0.13}
                         : Vec3{0.72, 0.58, 0.37};
  const double hair_scale = r.uniform(0.8, 1.2);
  for (auto& c : hair) c = std::clamp(c * hair_scale, 0.0, 1.0);
  const bool bald = r.uniform() < 0.15;
  const double brow_strength = r.uniform(0.6, 0.9);
  // Lips and mouth.
  const Vec3 lip_tint{r.uniform(0.75, 0.9), r.uniform(0.38, 0.5), r.uniform(0.4, 0.52)};
  const double lip_strength = r.uniform(0.5, 0.85);
  // Eyes.
  const double e = r.uniform();
  Vec3 iris = e < 0.5 ? Vec3{0.33, 0.19, 0.09} : e < 0.75 ? Vec3{0.28, 0.42, 0.58} : Vec3{0.3, 0.4, 0.22};
  for (auto& c : iris) c = std::clamp(c * r.uniform(0.8, 1.2), 0.0, 1.0);
  const Vec3 sclera{r.uniform(0.85, 0.95), r.uniform(0.82, 0.9), r.uniform(0.78, 0.86)};
  const double iris_angle = r.uniform(0.45, 0.55), pupil_angle = r.uniform(0.15, 0.25);

  // Regions from the template's landmarks (iBUG order: the 51 static ones are 17..67).
  std::vector<Vec3> lmk;
  if (model.has_landmarks() && model.static_lmk_faces_idx.size(0) == 51) {
    const auto fi = model.static_lmk_faces_idx.to(torch::kLong).contiguous();
    const auto bc = model.static_lmk_bary_coords.to(torch::kDouble).contiguous();
    const auto faces = model.faces.to(torch::kLong).contiguous();
    for (int64_t l = 0; l < 51; ++l) {
      Vec3 p{0, 0, 0};
      const int64_t f = fi.data_ptr<int64_t>()[l];
      for (int k = 0; k < 3; ++k) {
        const int64_t vi = faces.data_ptr<int64_t>()[f * 3 + k];
        const double w = bc.data_ptr<double>()[l * 3 + k];
        for (int c = 0; c < 3; ++c) p[c] += w * v[vi][c];
      }
      lmk.push_back(p);
    }
  }
  auto slice = [&](int a, int b) { return std::vector<Vec3>(lmk.begin() + a, lmk.begin() + b); };
  std::vector<char> eyeball(static_cast<size_t>(n), 0), scalp(static_cast<size_t>(n), 0);
  std::vector<Vec3> eye_centre(static_cast<size_t>(n));
  for (const char* name : {"left_eyeball", "right_eyeball"}) {
    const auto it = model.masks.find(name);
    if (it == model.masks.end() || it->second.numel() == 0) continue;
    const auto idx = it->second.to(torch::kLong).contiguous();
    Vec3 c{0, 0, 0};
    for (int64_t k = 0; k < idx.numel(); ++k)
      for (int d = 0; d < 3; ++d) c[d] += v[idx.data_ptr<int64_t>()[k]][d] / double(idx.numel());
    for (int64_t k = 0; k < idx.numel(); ++k) {
      const int64_t i = idx.data_ptr<int64_t>()[k];
      eyeball[i] = 1;
      eye_centre[i] = c;
    }
  }
  if (const auto it = model.masks.find("scalp"); it != model.masks.end()) {
    const auto idx = it->second.to(torch::kLong).contiguous();
    for (int64_t k = 0; k < idx.numel(); ++k) scalp[idx.data_ptr<int64_t>()[k]] = 1;
  }

  auto out = torch::empty({n, 3}, torch::kFloat);
  auto o = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const Vec3 p{v[i][0], v[i][1], v[i][2]};
    Vec3 c = skin;
    if (eyeball[i]) {
      const Vec3& ec = eye_centre[i];
      const Vec3 d{p[0] - ec[0], p[1] - ec[1], p[2] - ec[2]};
      const double angle = std::acos(std::clamp(d[2] / std::max(std::hypot(d[0], d[1], d[2]), 1e-12), -1.0, 1.0));
      c = lerp(iris, sclera, smoothstep(iris_angle - 0.06, iris_angle + 0.06, angle));
      c = lerp({0.03, 0.03, 0.035}, c, smoothstep(pupil_angle - 0.04, pupil_angle + 0.04, angle));
    } else {
      double lum = 1.0;
      for (const auto& w : waves) {
        const double s = w.amplitude * std::sin(w.k[0] * p[0] + w.k[1] * p[1] + w.k[2] * p[2] + w.phase);
        if (w.channel < 0)
          lum += s;
        else
          c[0] += s, c[1] -= 0.4 * s, c[2] -= 0.4 * s;
      }
      for (auto& x : c) x *= lum;
      if (scalp[i] && !bald) c = hair;
      if (lmk.size() == 51) {
        // Brows: a band around the two brow polylines (iBUG 17-21, 22-26), on the front of the head.
        double brow = 0;
        for (int b = 0; b < 2; ++b) {
          const auto line = slice(5 * b, 5 * b + 5);
          double d = 1e9, z = 0;
          for (size_t k = 0; k + 1 < line.size(); ++k)
            d = std::min(d,
                         segment_distance(p[0], p[1] - 0.0015, line[k][0], line[k][1], line[k + 1][0], line[k + 1][1]));
          for (const auto& q : line) z += q[2] / double(line.size());
          if (p[2] > z - 0.02) brow = std::max(brow, 1 - smoothstep(0.003, 0.006, d));
        }
        c = lerp(c, hair, brow * brow_strength);
        // Lips: inside the outer lip contour (iBUG 48-59); the mouth opening (60-67) darker.
        const auto outer = slice(31, 43), inner = slice(43, 51);
        double zl = 1e9;
        for (const auto& q : outer) zl = std::min(zl, q[2]);
        if (p[2] > zl - 0.015) {
          const double lip = 1 - smoothstep(-0.001, 0.0015, polygon_distance(p[0], p[1], outer));
          c = lerp(c, {c[0] * lip_tint[0] + 0.08, c[1] * lip_tint[1], c[2] * lip_tint[2]}, lip * lip_strength);
          const double mouth = 1 - smoothstep(-0.0005, 0.0005, polygon_distance(p[0], p[1], inner));
          c = lerp(c, {0.25, 0.07, 0.07}, mouth * 0.8);
        }
      }
    }
    for (int d = 0; d < 3; ++d) o[i][d] = static_cast<float>(std::clamp(c[d], 0.0, 1.0));
  }
  return out;
}

SyntheticPhoto render_synthetic_photo(const fit::Fitter& fitter, uint64_t seed, int64_t index,
                                      const SyntheticPhotoOptions& o) {
  PIXEL3DMM_CHECK(index >= 0, "render_synthetic_photo: index must be >= 0, got ", index);
  const uint64_t s = sample_seed(seed, index);
  SyntheticPhoto ph = render_synthetic_photo(
      fitter, random_params(1, fitter.config().n_shape, fitter.config().n_expr, s, o.params), s, o);
  ph.id = std::to_string(index);
  return ph;
}

SyntheticPhoto render_synthetic_photo(const fit::Fitter& fitter, const fit::FitParams& params, uint64_t appearance_seed,
                                      const SyntheticPhotoOptions& o) {
  torch::NoGradGuard no_grad;
  PIXEL3DMM_CHECK(o.size >= 16, "render_synthetic_photo: size must be at least 16, got ", o.size);
  PIXEL3DMM_CHECK_T(ValueError, params.batch_size() == 1, "render_synthetic_photo: expected batch-1 parameters, got ",
                    params.batch_size());
  const uint64_t s = appearance_seed;
  SyntheticPhoto ph;
  ph.params = params.clone();

  // Exact targets: the fitter's own conventions (FLAME-frame normals, (u, 1 - v), coverage).
  SyntheticTargetOptions so;
  so.size = o.size;
  so.uv_noise = so.normal_noise = so.outlier_fraction = so.landmark_noise = 0.0;
  so.seed = s;
  const SyntheticTarget st = render_synthetic_target(fitter, ph.params, 0, so);
  ph.vertices = st.vertices;
  ph.vertices_flame = st.vertices_flame;
  ph.landmarks = st.target.landmarks;
  ph.uv = st.target.uv[0].contiguous();
  ph.mask = st.target.fg_mask.contiguous();  // 1 x S x S binary coverage

  render::Camera cam = fitter.camera(ph.params);
  cam.width = cam.height = o.size;
  ph.camera = cam;
  const auto rot = flame::rotation_6d_to_matrix(ph.params.rotation);  // 1 x 3 x 3 head rotation
  render::Camera mesh_cam = cam;  // FLAME frame -> camera: the head pose folded into the extrinsics
  mesh_cam.rotation = torch::matmul(cam.rotation, rot);
  mesh_cam.translation = torch::matmul(cam.rotation, ph.params.translation.unsqueeze(2)).squeeze(2) + cam.translation;
  ph.opencv = mesh_cam.to_opencv();

  // The photo: the same raster, coloured and lit.
  // Normals of the mesh the photo shows, in the FLAME frame. (The fitter's normal loss, like the official one,
  // renders the mesh without eyelid blendshapes and neck rotation; a training target must match the photo.)
  render::RenderRequest req;
  req.uv = req.mask = req.depth = req.regions = false;
  req.normal_vertices = st.vertices_flame;
  const render::RenderOutput out = fitter.renderer().render(st.vertices, cam, req);
  ph.normals = out.normals[0].contiguous();
  ph.albedo = synthetic_albedo(fitter.flame()->model(), splitmix64(s ^ 0xA1BEDull));
  const auto albedo = render::interpolate(ph.albedo.unsqueeze(0), out.raster);  // 1 x S x S x 3

  auto g = at::make_generator<at::CPUGeneratorImpl>(splitmix64(s ^ 0x11647ull));
  auto u = [&](double lo, double hi) { return lo + (hi - lo) * torch::rand({1}, g).item<double>(); };
  const double az = u(-60, 60) * kPi / 180, el = u(-25, 50) * kPi / 180;
  const auto light = torch::tensor({std::sin(az) * std::cos(el), std::sin(el), std::cos(az) * std::cos(el)});
  const auto half = torch::nn::functional::normalize(light + torch::tensor({0.f, 0.f, 1.f}),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(0));
  const double ambient = u(o.ambient_min, o.ambient_max), diffuse = u(o.diffuse_min, o.diffuse_max);
  const double specular = u(0, o.max_specular), noise = u(0, o.max_noise);
  const auto tint = 1 + torch::randn({3}, g) * 0.05;
  // Shading normals in camera axes (the official camera has R = I): rotate the FLAME-frame target normals.
  auto n = torch::einsum("bck,bkhw->bhwc", {rot, out.normals});
  n = n / n.norm(2, -1, true).clamp_min(1e-6);
  const auto ndl = torch::matmul(n, light).clamp_min(0).unsqueeze(-1);  // 1 x S x S x 1
  const auto ndh = torch::matmul(n, half).clamp_min(0).unsqueeze(-1);
  const auto face = albedo * (ambient + diffuse * ndl) * tint + specular * ndh.pow(20) * (ndl > 0);

  // Background: a colour, a linear gradient and smooth blotches.
  const auto base = torch::rand({3}, g) * 0.9 + 0.05;
  const double gx = u(-0.25, 0.25), gy = u(-0.25, 0.25);
  const auto ramp = torch::linspace(-0.5, 0.5, o.size);
  const auto grad = (ramp.view({1, -1}) * gx + ramp.view({-1, 1}) * gy).view({1, o.size, o.size, 1});
  const auto blotch = torch::nn::functional::interpolate(torch::randn({1, 3, 5, 5}, g) * 0.06,
                                                         torch::nn::functional::InterpolateFuncOptions()
                                                             .size(std::vector<int64_t>{o.size, o.size})
                                                             .mode(torch::kBilinear)
                                                             .align_corners(false))
                          .permute({0, 2, 3, 1});
  const auto background = base + grad + blotch;

  const auto cov = st.target.fg_mask.unsqueeze(-1);  // 1 x S x S x 1
  auto rgba = torch::cat({face * cov + background * (1 - cov), cov}, -1).contiguous();
  rgba = render::antialias(rgba, out.raster, fitter.renderer().topology());
  auto image = rgba.slice(-1, 0, 3) + torch::randn({1, o.size, o.size, 3}, g) * noise;
  ph.image = image.clamp(0, 1)[0].permute({2, 0, 1}).contiguous();
  ph.alpha = rgba.select(-1, 3).clamp(0, 1).contiguous();
  return ph;
}

std::string write_synthetic_dataset(const std::string& folder, const SyntheticDatasetOptions& o,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  PIXEL3DMM_CHECK(o.count >= 1, "write_synthetic_dataset: count must be at least 1, got ", o.count);
  PIXEL3DMM_CHECK(o.photo.size >= 16, "write_synthetic_dataset: size must be at least 16, got ", o.photo.size);
  const flame::Flame model(o.flame.empty() ? synthetic_flame() : flame::FlameModel::load(o.flame),
                           flame::FlameOptions());
  fit::FitConfig config;  // the official component counts, or all a smaller model has
  config.n_shape = static_cast<int>(std::min<int64_t>(config.n_shape, model->n_shape()));
  config.n_expr = static_cast<int>(std::min<int64_t>(config.n_expr, model->n_expr()));
  const fit::Fitter fitter(model, config);
  const int64_t width = std::max<int64_t>(6, static_cast<int64_t>(std::to_string(o.count - 1).size()));
  std::vector<std::string> lines(static_cast<size_t>(o.count)), mesh_lines(static_cast<size_t>(o.count));
  fs::path target = fs::path(folder).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  write_folder_atomically(target.string(), [&](const std::string& tmp) {
    const fs::path root(tmp);
    for (const char* sub : {"rgb", "uv", "normals", "mask", "params"}) fs::create_directories(root / sub);
    if (o.meshes) fs::create_directories(root / "meshes");
    const std::string ext = o.png_targets ? ".png" : ".npy";
    auto write_one = [&](int64_t i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%0*lld", static_cast<int>(width), static_cast<long long>(i));
      const std::string id = buf;
      const SyntheticPhoto ph = render_synthetic_photo(fitter, o.seed, i, o.photo);
      const std::string image = "rgb/" + id + ".png", uv = "uv/" + id + ext, normals = "normals/" + id + ext,
                        mask = "mask/" + id + ".png";
      io::write_image((root / image).string(), ph.image);
      if (o.png_targets) {
        io::write_image((root / uv).string(), io::uv_png_image(ph.uv));
        io::write_image((root / normals).string(), io::normals_png_image(ph.normals));
      } else {
        io::write_npy((root / uv).string(), ph.uv.permute({1, 2, 0}).contiguous());
        io::write_npy((root / normals).string(), ph.normals.permute({1, 2, 0}).contiguous());
      }
      io::write_image((root / mask).string(), ph.mask);
      io::TensorMap params;
      for (const auto& [k, v] : ph.params.named()) params[k] = v.contiguous();
      params["camera_K"] = ph.opencv.K.to(torch::kFloat).contiguous();
      params["camera_R"] = ph.opencv.R.to(torch::kFloat).contiguous();
      params["camera_t"] = ph.opencv.t.to(torch::kFloat).contiguous();
      io::write_safetensors((root / "params" / (id + ".safetensors")).string(), params);
      nlohmann::json j = {{"id", id}, {"image", image}, {"uv", uv}, {"normals", normals}, {"mask", mask}};
      lines[static_cast<size_t>(i)] = j.dump();
      if (o.meshes) {
        const std::string mesh = "meshes/" + id + ".npy";
        io::write_npy((root / mesh).string(), ph.vertices_flame[0].contiguous());
        nlohmann::json cam = {{"K", io::tensor_to_json(ph.opencv.K[0])},
                              {"R", io::tensor_to_json(ph.opencv.R[0])},
                              {"t", io::tensor_to_json(ph.opencv.t[0])}};
        mesh_lines[static_cast<size_t>(i)] =
            nlohmann::json{{"id", id}, {"image", image}, {"mesh", mesh}, {"camera", cam}}.dump();
      }
    };
    // Chunks keep the progress reports on the calling thread (a Python callback needs no locking).
    const int64_t chunk = std::max<int64_t>(1, 4 * at::get_num_threads());
    for (int64_t start = 0; start < o.count; start += chunk) {
      const int64_t end = std::min(o.count, start + chunk);
      at::parallel_for(start, end, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) write_one(i);
      });
      if (progress) progress(end, o.count);
    }
    auto join = [](const std::vector<std::string>& ls) {
      std::string text;
      for (const auto& l : ls) text += l + "\n";
      return text;
    };
    if (o.meshes) write_file_atomically((root / "manifest_meshes.jsonl").string(), join(mesh_lines));
    write_file_atomically((root / "manifest.jsonl").string(), join(lines));
  });
  return (target / "manifest.jsonl").string();
}

}  // namespace pixel3dmm::synth
