#include "pixel3dmm/train/dataset.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/flame/flame_model.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/mesh_renderer.h"

namespace pixel3dmm::train {

namespace fs = std::filesystem;

namespace {

/// A manifest that does not parse: the line it failed on travels with the message (check_dataset reports it).
class ManifestError : public FormatError {
 public:
  ManifestError(const std::string& manifest, int64_t line, const std::string& reason)
      : FormatError(manifest + ":" + std::to_string(line) + ": " + reason), line(line), reason(reason) {}
  int64_t line;
  std::string reason;
};

const std::set<std::string> kKeys = {"id", "image", "uv", "normals", "mask", "mesh", "camera"};

bool is_blank(const std::string& s) {
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

/// True when `inner` lies inside `outer` (both canonical or lexically normal absolute paths).
bool inside(const fs::path& inner, const fs::path& outer) {
  const fs::path rel = inner.lexically_relative(outer);
  return !rel.empty() && *rel.begin() != "..";
}

/// A 3 x 3 (or, for t, 3-vector) numeric matrix from the camera JSON; throws a message on a bad value.
std::vector<double> camera_numbers(const nlohmann::json& cam, const char* key, bool vector) {
  if (!cam.contains(key)) throw std::runtime_error(std::string("camera: missing \"") + key + "\"");
  const auto& v = cam.at(key);
  std::vector<double> out;
  auto number = [&](const nlohmann::json& x) {
    if (!x.is_number()) throw std::runtime_error(std::string("camera \"") + key + "\": expected numbers");
    const double d = x.get<double>();
    if (!std::isfinite(d)) throw std::runtime_error(std::string("camera \"") + key + "\": non-finite value");
    out.push_back(d);
  };
  const std::string expected = vector ? "a list of 3 numbers" : "a 3 x 3 nested list of numbers";
  if (!v.is_array() || v.size() != 3) throw std::runtime_error(std::string("camera \"") + key + "\": expected " + expected);
  for (const auto& row : v) {
    if (vector && row.is_number()) {
      number(row);
    } else if (row.is_array() && row.size() == (vector ? 1u : 3u)) {
      for (const auto& x : row) number(x);
    } else {
      throw std::runtime_error(std::string("camera \"") + key + "\": expected " + expected);
    }
  }
  return out;
}

void validate_camera(const nlohmann::json& cam) {
  if (!cam.is_object()) throw std::runtime_error("\"camera\" must be an object with K, R and t");
  for (const auto& [k, v] : cam.items())
    if (k != "K" && k != "R" && k != "t" && k != "znear" && k != "zfar")
      throw std::runtime_error("camera: unknown key \"" + k + "\" (expected K, R, t, znear, zfar)");
  const auto K = camera_numbers(cam, "K", false);
  camera_numbers(cam, "R", false);
  camera_numbers(cam, "t", true);
  if (K[1] != 0 || K[3] != 0 || K[6] != 0 || K[7] != 0 || K[8] != 1 || K[0] <= 0 || K[4] <= 0)
    throw std::runtime_error("camera \"K\": expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0");
  for (const char* k : {"znear", "zfar"})
    if (cam.contains(k) && (!cam.at(k).is_number() || !(cam.at(k).get<double>() > 0)))
      throw std::runtime_error(std::string("camera \"") + k + "\": expected a positive number");
}

std::vector<ManifestEntry> parse_manifest(const std::string& manifest, const fs::path& root) {
  const std::string text = read_file(manifest);
  std::vector<ManifestEntry> entries;
  std::set<std::string> ids;
  const fs::path canonical_root = fs::weakly_canonical(root);
  std::istringstream in(text);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (is_blank(line)) continue;
    auto fail = [&](const std::string& reason) { throw ManifestError(manifest, number, reason); };
    nlohmann::json j;
    try {
      // A sample is two levels deep (camera.K rows); deeper nesting is refused before it is built.
      j = nlohmann::json::parse(line, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if (depth > 8 && (event == nlohmann::json::parse_event_t::object_start ||
                          event == nlohmann::json::parse_event_t::array_start))
          fail("JSON nested deeper than 8 levels");
        return true;
      });
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object()) fail("expected a JSON object per line");
    ManifestEntry e;
    e.line = number;
    for (const auto& [k, v] : j.items()) {
      if (!kKeys.count(k))
        fail("unknown key \"" + k + "\" (expected id, image, uv, normals, mask, mesh, camera)");
      if (k != "camera" && !v.is_string()) fail("\"" + k + "\" must be a string");
    }
    if (!j.contains("id")) fail("missing \"id\"");
    e.id = j.at("id").get<std::string>();
    if (e.id.empty()) fail("\"id\" is empty");
    if (!ids.insert(e.id).second) fail("duplicate id \"" + e.id + "\"");
    auto path = [&](const char* key) -> std::string {
      if (!j.contains(key)) return "";
      const std::string rel = j.at(key).get<std::string>();
      if (rel.empty()) fail(std::string("\"") + key + "\" is empty");
      const fs::path p(rel);
      if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
        fail(std::string("\"") + key + "\": absolute path \"" + rel +
             "\" (paths are relative to the manifest's folder)");
      const fs::path normal = p.lexically_normal();
      if (normal.empty() || *normal.begin() == ".." || normal == ".")
        fail(std::string("\"") + key + "\": path \"" + rel + "\" leaves the manifest's folder");
      const fs::path full = root / normal;
      // Symbolic links are followed: a link inside the folder that points out of it is refused too.
      if (!inside(fs::weakly_canonical(full), canonical_root))
        fail(std::string("\"") + key + "\": path \"" + rel + "\" leads outside the manifest's folder (symbolic link)");
      return full.string();
    };
    e.image = path("image");
    if (e.image.empty()) fail("missing \"image\"");
    e.uv = path("uv");
    e.normals = path("normals");
    e.mask = path("mask");
    e.mesh = path("mesh");
    if (j.contains("camera")) e.camera = j.at("camera");
    if (!e.mesh.empty()) {
      if (e.camera.is_null()) fail("a mesh sample needs a \"camera\"");
      if (!e.uv.empty() || !e.normals.empty())
        fail("a sample has either a \"mesh\" or pre-rendered \"uv\" / \"normals\", not both");
      try {
        validate_camera(e.camera);
      } catch (const std::runtime_error& err) {
        fail(err.what());
      }
    } else {
      if (!e.camera.is_null()) fail("\"camera\" without a \"mesh\"");
      if (e.uv.empty() && e.normals.empty()) fail("sample \"" + e.id + "\" has no target (uv, normals or mesh)");
      if (e.mask.empty()) fail("a sample with pre-rendered targets needs a \"mask\"");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

/// One problem while loading a sample; `kind` picks the exception get() throws.
struct Issue {
  enum Kind { kNotFound, kFormat, kValue } kind = kValue;
  std::string file, reason;
};

std::string strip_prefix(const std::string& what, const std::string& file) {
  const std::string prefix = file + ": ";
  return what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what;
}

torch::Tensor mesh_vertices(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  torch::Tensor v;
  if (ext == ".npy") {
    v = io::read_npy(path);
    PIXEL3DMM_CHECK_FORMAT(v.is_floating_point(), path, "expected float vertices, found dtype ", v.scalar_type());
    PIXEL3DMM_CHECK_FORMAT(v.dim() == 2 && v.size(1) == 3, path, "expected V x 3 vertices, found ",
                           shape_string(v.sizes()));
  } else {
    PIXEL3DMM_CHECK_FORMAT(ext == ".ply" || ext == ".obj", path, "unknown mesh format \"", ext,
                           "\" (expected .ply, .obj or .npy)");
    v = io::read_mesh(path).vertices;
  }
  return v.to(torch::kFloat).contiguous();
}

/// A target map from PNG (official encodings) or .npy (H x W x C float): -> C x H x W float32 decoded values.
torch::Tensor read_target(const std::string& path, int64_t channels, bool normals) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".npy") {
    auto a = io::read_npy(path);
    PIXEL3DMM_CHECK_FORMAT(a.is_floating_point(), path, "expected a float32 array, found dtype ", a.scalar_type());
    if (channels == 1 && a.dim() == 2) a = a.unsqueeze(2);
    PIXEL3DMM_CHECK_FORMAT(a.dim() == 3 && a.size(2) == channels, path, "expected H x W x ", channels,
                           channels == 1 ? " (or H x W)" : "", ", found ", shape_string(a.sizes()));
    return a.to(torch::kFloat).permute({2, 0, 1}).contiguous();
  }
  const auto img = io::read_image(path)[0];  // 3 x H x W in [0, 1]
  if (channels == 1) return img.slice(0, 0, 1).contiguous();
  return normals ? io::normals_from_png_image(img) : io::uv_from_png_image(img);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
struct Dataset::State {
  std::string manifest, root;
  DatasetOptions options;
  std::vector<ManifestEntry> entries;
  // Mesh samples only.
  std::shared_ptr<const render::MeshRenderer> renderer;
  int64_t n_vertices = 0;
  mutable std::mutex cache_mutex;
  mutable std::map<int64_t, TrainingSample> cache;  // rendered targets (no image)

  std::vector<Issue> load(int64_t index, TrainingSample& out) const;
  TrainingSample render_mesh(const ManifestEntry& e, int64_t height, int64_t width) const;
};

Dataset Dataset::open(const std::string& manifest, const DatasetOptions& options) {
  PIXEL3DMM_CHECK_T(FileNotFound, fs::is_regular_file(manifest), manifest, ": manifest not found");
  auto s = std::make_shared<State>();
  s->manifest = manifest;
  s->root = fs::absolute(fs::path(manifest)).parent_path().lexically_normal().string();
  s->options = options;
  s->entries = parse_manifest(manifest, s->root);
  bool meshes = false;
  for (const auto& e : s->entries) meshes |= !e.mesh.empty();
  if (meshes) {
    const flame::FlameModel model =
        options.flame.empty() ? synth::synthetic_flame() : flame::FlameModel::load(options.flame);
    const bool per_corner = model.uv_coords.defined() && model.uv_faces.defined();
    PIXEL3DMM_CHECK_T(FormatError, per_corner || model.vertex_uv.defined(), model.source,
                      ": the FLAME model has no UV layout (vt/ft or vertex_uv), needed to render mesh samples");
    s->renderer = std::make_shared<render::MeshRenderer>(
        model.faces, per_corner ? model.uv_coords : model.vertex_uv, per_corner ? model.uv_faces : torch::Tensor(),
        model.n_vertices());
    s->n_vertices = model.n_vertices();
  }
  Dataset d;
  d.state_ = std::move(s);
  return d;
}

int64_t Dataset::size() const { return static_cast<int64_t>(state_->entries.size()); }

const ManifestEntry& Dataset::entry(int64_t index) const {
  PIXEL3DMM_CHECK_T(ValueError, index >= 0 && index < size(), "Dataset: index ", index, " out of range for ", size(),
                    " samples");
  return state_->entries[static_cast<size_t>(index)];
}

const std::string& Dataset::manifest() const { return state_->manifest; }
const std::string& Dataset::root() const { return state_->root; }

TrainingSample Dataset::State::render_mesh(const ManifestEntry& e, int64_t height, int64_t width) const {
  torch::NoGradGuard no_grad;
  const auto v = mesh_vertices(e.mesh);
  PIXEL3DMM_CHECK_FORMAT(v.size(0) == n_vertices, e.mesh, "the mesh has ", v.size(0),
                         " vertices but the FLAME model has ", n_vertices);
  check_finite(v, e.mesh + ": vertices");
  auto mat = [&](const char* key, bool vector) {
    const auto n = camera_numbers(e.camera, key, vector);
    auto t = torch::tensor(n, torch::kDouble).to(torch::kFloat);
    return vector ? t.reshape({1, 3}) : t.reshape({1, 3, 3});
  };
  const double znear = e.camera.value("znear", 0.01), zfar = e.camera.value("zfar", 100.0);
  PIXEL3DMM_CHECK(znear < zfar, "camera: znear must be below zfar");
  const render::Camera cam =
      render::Camera::from_opencv({mat("K", false), mat("R", false), mat("t", true)}, width, height, znear, zfar);
  render::RenderRequest req;
  req.mask = req.depth = req.regions = false;
  const auto out = renderer->render(v.unsqueeze(0), cam, req);
  TrainingSample t;
  t.uv = out.uv[0].contiguous();
  t.normals = out.normals[0].contiguous();
  t.mask = out.raster.coverage().to(torch::kFloat).reshape({1, height, width}).contiguous();
  return t;
}

std::vector<Issue> Dataset::State::load(int64_t index, TrainingSample& s) const {
  const ManifestEntry& e = entries[static_cast<size_t>(index)];
  std::vector<Issue> issues;
  s.id = e.id;
  // Runs one file's step; a pixel3dmm error becomes an issue naming that file.
  auto step = [&](const std::string& file, const std::function<void()>& fn) {
    if (!fs::exists(file)) {
      issues.push_back({Issue::kNotFound, file, "missing file"});
      return false;
    }
    try {
      fn();
      return true;
    } catch (const FileNotFound& err) {
      issues.push_back({Issue::kNotFound, file, strip_prefix(err.what(), file)});
    } catch (const FormatError& err) {
      issues.push_back({Issue::kFormat, file, strip_prefix(err.what(), file)});
    } catch (const Error& err) {
      issues.push_back({Issue::kValue, file, strip_prefix(err.what(), file)});
    } catch (const c10::Error& err) {
      issues.push_back({Issue::kFormat, file, err.what_without_backtrace()});
    }
    return false;
  };
  const bool have_image = step(e.image, [&] { s.image = io::read_image(e.image)[0].contiguous(); });
  if (!e.uv.empty()) step(e.uv, [&] { s.uv = read_target(e.uv, 2, false); });
  if (!e.normals.empty()) step(e.normals, [&] { s.normals = read_target(e.normals, 3, true); });
  torch::Tensor given_mask;
  if (!e.mask.empty()) step(e.mask, [&] { given_mask = (read_target(e.mask, 1, false) > 0).to(torch::kFloat); });
  if (!e.mesh.empty() && have_image) {
    const int64_t h = s.image.size(1), w = s.image.size(2);
    TrainingSample r;
    bool cached = false;
    if (options.cache_renders) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(index);
      if (it != cache.end() && it->second.uv.size(1) == h && it->second.uv.size(2) == w) r = it->second, cached = true;
    }
    if (cached || step(e.mesh, [&] { r = render_mesh(e, h, w); })) {
      if (!cached && options.cache_renders) {
        std::lock_guard<std::mutex> lock(cache_mutex);
        cache[index] = r;
      }
      s.uv = r.uv;
      s.normals = r.normals;
      // A given mask (e.g. face parsing) only selects among the pixels the mesh covers.
      s.mask = r.mask;
    }
  }
  if (given_mask.defined()) s.mask = s.mask.defined() && s.mask.sizes() == given_mask.sizes() ? s.mask * given_mask
                                                                                               : given_mask;
  if (!issues.empty() || !have_image) return issues;

  // Consistency of what loaded.
  const int64_t h = s.image.size(1), w = s.image.size(2);
  auto value_issue = [&](const std::string& file, const std::string& reason) {
    issues.push_back({Issue::kValue, file, reason});
  };
  auto size_ok = [&](const torch::Tensor& t, const std::string& file, const char* what) {
    if (t.size(1) == h && t.size(2) == w) return true;
    value_issue(file, std::string(what) + " is " + std::to_string(t.size(1)) + " x " + std::to_string(t.size(2)) +
                          " but the image is " + std::to_string(h) + " x " + std::to_string(w));
    return false;
  };
  auto finite_ok = [&](const torch::Tensor& t, const std::string& file, const char* what) {
    const auto bad = t.isfinite().logical_not();
    if (!bad.any().item<bool>()) return true;
    const bool nan = t.isnan().any().item<bool>();
    value_issue(file, std::string(nan ? "NaN" : "Inf") + " in " + what + " (" +
                          std::to_string(bad.sum().item<int64_t>()) + " non-finite values)");
    return false;
  };
  const std::string mesh_or = e.mesh.empty() ? "" : e.mesh;
  finite_ok(s.image, e.image, "image");
  const std::string uv_file = e.uv.empty() ? mesh_or : e.uv, n_file = e.normals.empty() ? mesh_or : e.normals;
  const std::string m_file = e.mask.empty() ? mesh_or : e.mask;
  bool uv_ok = !s.uv.defined() || (size_ok(s.uv, uv_file, "uv") && finite_ok(s.uv, uv_file, "uv"));
  bool n_ok = !s.normals.defined() || (size_ok(s.normals, n_file, "normals") && finite_ok(s.normals, n_file, "normals"));
  const bool m_ok = size_ok(s.mask, m_file, "the mask") && finite_ok(s.mask, m_file, "the mask");
  if (!m_ok) return issues;
  const auto fg = s.mask[0] > 0;
  const int64_t count = fg.sum().item<int64_t>();
  if (count == 0) {
    value_issue(m_file, "the mask is empty (no pixel to train on)");
    return issues;
  }
  constexpr double kUvTolerance = 1e-3;
  if (s.uv.defined() && uv_ok) {
    const auto u = s.uv.masked_select(fg.unsqueeze(0).expand_as(s.uv));
    const double lo = u.min().item<double>(), hi = u.max().item<double>();
    if (lo < -kUvTolerance || hi > 1 + kUvTolerance)
      value_issue(uv_file, "uv values outside [0, 1] where masked (range " + std::to_string(lo) + " .. " +
                               std::to_string(hi) + ")");
  }
  // Interpolated unit vertex normals are slightly shorter than 1 inside triangles; anything far from unit length is
  // not a normal map (e.g. an unencoded [0, 1] image).
  constexpr double kNormMin = 0.5, kNormMax = 1.05;
  if (s.normals.defined() && n_ok) {
    const auto len = s.normals.norm(2, 0).masked_select(fg);
    const auto bad = (len < kNormMin).logical_or(len > kNormMax);
    const int64_t n_bad = bad.sum().item<int64_t>();
    // PNG quantisation and antialiased borders leave a few stray pixels; a broken map fails on many.
    if (n_bad > std::max<int64_t>(4, count / 100))
      value_issue(n_file, "normals are not unit vectors at " + std::to_string(n_bad) + " of " + std::to_string(count) +
                              " masked pixels (|n| from " + std::to_string(len.min().item<double>()) + " to " +
                              std::to_string(len.max().item<double>()) + ")");
  }
  return issues;
}

TrainingSample Dataset::get(int64_t index) const {
  const ManifestEntry& e = entry(index);
  TrainingSample s;
  const auto issues = state_->load(index, s);
  if (!issues.empty()) {
    const Issue& i = issues.front();
    const std::string msg = state_->manifest + ":" + std::to_string(e.line) + " (" + e.id + "): " + i.file + ": " +
                            i.reason;
    switch (i.kind) {
      case Issue::kNotFound: throw FileNotFound(msg);
      case Issue::kFormat: throw FormatError(msg);
      default: throw ValueError(msg);
    }
  }
  return s;
}

std::vector<DatasetProblem> check_dataset(const std::string& manifest, const DatasetOptions& options,
                                          const std::function<void(int64_t, int64_t)>& progress) {
  std::vector<DatasetProblem> problems;
  Dataset d;
  DatasetOptions no_cache = options;  // every sample is loaded once: caching would only hold memory
  no_cache.cache_renders = false;
  try {
    d = Dataset::open(manifest, no_cache);
  } catch (const ManifestError& e) {
    problems.push_back({-1, e.line, "", manifest, e.reason});
    return problems;
  } catch (const Error& e) {
    problems.push_back({-1, 0, "", manifest, strip_prefix(e.what(), manifest)});
    return problems;
  }
  const int64_t n = d.size();
  for (int64_t i = 0; i < n; ++i) {
    TrainingSample s;
    const ManifestEntry& e = d.entry(i);
    std::vector<Issue> issues;
    try {
      issues = d.state_->load(i, s);
    } catch (const std::exception& err) {  // a bug or resource failure still names the sample
      issues.push_back({Issue::kValue, e.image, err.what()});
    }
    for (const auto& is : issues) problems.push_back({i, e.line, e.id, is.file, is.reason});
    if (progress) progress(i + 1, n);
  }
  return problems;
}

}  // namespace pixel3dmm::train
