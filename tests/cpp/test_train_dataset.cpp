// Training datasets: manifest rules, target encodings, mesh samples, the synthetic generator, check_dataset.
#include <ATen/Parallel.h>

#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/synth/synthetic_dataset.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/train/dataset.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::max_abs_diff;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

/// A small synthetic FLAME-layout model (1200 vertices; fast), saved once per process.
const std::string& small_flame() {
  static TempDir dir;
  static const std::string path = [] {
    const std::string p = dir.file("small_flame.npz");
    synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1200).n_shape(10).n_expr(5)).save(p);
    return p;
  }();
  return path;
}

/// A small synthetic dataset (64 px, the small model) in `dir`/name.
std::string write_dataset(const TempDir& dir, const std::string& name, int64_t count, bool png, bool meshes = false) {
  synth::SyntheticDatasetOptions o;
  o.flame = small_flame();
  o.count = count;
  o.seed = 7;
  o.photo.size = 64;
  o.png_targets = png;
  o.meshes = meshes;
  return synth::write_synthetic_dataset(dir.file(name), o);
}

const fit::Fitter& synthetic_fitter() {
  static const fit::Fitter fitter = [] {
    fit::FitConfig config;
    config.n_shape = 10;
    config.n_expr = 5;
    return fit::Fitter(flame::Flame(flame::FlameModel::load(small_flame()), flame::FlameOptions()), config);
  }();
  return fitter;
}

train::DatasetOptions small_options() {
  train::DatasetOptions o;
  o.flame = small_flame();
  return o;
}

}  // namespace

TEST_CASE("train/dataset: manifest errors name the file and line", "[train]") {
  TempDir dir;
  const std::string m = dir.file("manifest.jsonl");
  auto open_with = [&](const std::string& text, std::initializer_list<std::string> fragments) {
    write_text(m, text);
    require_throws_with<FormatError>([&] { train::Dataset::open(m); }, fragments);
  };
  const std::string ok = R"({"id": "a", "image": "a.png", "uv": "a_uv.npy", "mask": "a_m.png"})";
  open_with(ok + "\n\n{not json\n", {"manifest.jsonl:3", "invalid JSON"});
  open_with(R"({"id": "a", "image": "a.png", "uv": "u.npy", "mask": "m.png", "colour": "x"})",
            {":1", "unknown key \"colour\""});
  open_with(R"({"id": "a", "uv": "u.npy", "mask": "m.png"})", {":1", "missing \"image\""});
  open_with(R"({"image": "a.png", "uv": "u.npy", "mask": "m.png"})", {":1", "missing \"id\""});
  open_with(R"({"id": "a", "image": "a.png", "mask": "m.png"})", {":1", "has no target"});
  open_with(ok + "\n" + ok + "\n", {":2", "duplicate id \"a\""});
  open_with(R"({"id": "a", "image": "../a.png", "uv": "u.npy", "mask": "m.png"})",
            {":1", "leaves the manifest's folder"});
  open_with(R"({"id": "a", "image": "x/../../a.png", "uv": "u.npy", "mask": "m.png"})",
            {"leaves the manifest's folder"});
  open_with(R"({"id": "a", "image": "/etc/passwd", "uv": "u.npy", "mask": "m.png"})", {":1", "absolute path"});
  open_with(R"({"id": "a", "image": "a.png", "mesh": "a.ply"})", {":1", "needs a \"camera\""});
  open_with(
      R"({"id": "a", "image": "a.png", "mesh": "a.ply", "camera": {"K": [[1, 0, 0], [0, 1, 0]], "R": [], "t": []}})",
      {":1", "camera \"K\""});
  // A symbolic link inside the folder that points out of it.
  TempDir outside;
  write_text(outside.file("secret.png"), "x");
  fs::create_symlink(outside.path, dir.path / "link");
  open_with(R"({"id": "a", "image": "link/secret.png", "uv": "u.npy", "mask": "m.png"})",
            {":1", "outside the manifest's folder"});
  // Blank lines are fine; paths resolve against the folder; x/../a.png stays inside.
  write_text(
      m, "\n" + ok + "\n  \n" + R"({"id": "b", "image": "x/../b.png", "normals": "n.png", "mask": "m.png"})" + "\n");
  const auto d = train::Dataset::open(m);
  REQUIRE(d.size() == 2);
  CHECK(d.entry(0).line == 2);
  CHECK(d.entry(1).line == 4);
  CHECK(d.entry(1).image == (dir.path / "b.png").string());
  CHECK(d.entry(1).uv.empty());
  // Missing manifest.
  require_throws_with<FileNotFound>([&] { train::Dataset::open(dir.file("nope.jsonl")); }, {"nope.jsonl"});
}

TEST_CASE("train/dataset: PNG and npy targets give the same values within 8-bit precision", "[train]") {
  TempDir dir;
  const auto npy = train::Dataset::open(write_dataset(dir, "npy", 2, false));
  const auto png = train::Dataset::open(write_dataset(dir, "png", 2, true));
  REQUIRE(npy.size() == 2);
  REQUIRE(png.size() == 2);
  CHECK(fs::path(png.entry(0).uv).extension() == ".png");
  CHECK(fs::path(npy.entry(0).uv).extension() == ".npy");
  for (int64_t i = 0; i < 2; ++i) {
    const auto a = npy.get(i), b = png.get(i);
    CHECK(a.id == b.id);
    REQUIRE(a.image.sizes() == torch::IntArrayRef({3, 64, 64}));
    require_close(a.image, b.image, 0.0);
    require_close(a.mask, b.mask, 0.0);
    REQUIRE(a.mask.sum().item<double>() > 100);
    // Rounded 8-bit: half a step for uv in [0, 1]; normals span [-1, 1], so a whole step.
    require_close(a.uv, b.uv, 0.5 / 255 + 1e-6);
    require_close(a.normals, b.normals, 1.0 / 255 + 1e-6);
    // The exact targets are not quantised (so this comparison could fail).
    CHECK(max_abs_diff(a.uv, b.uv) > 1e-4);
  }
}

TEST_CASE("train/dataset: mesh samples render the targets the generator wrote", "[train]") {
  TempDir dir;
  const std::string manifest = write_dataset(dir, "ds", 2, false, true);
  const auto pre = train::Dataset::open(manifest);
  const auto mesh =
      train::Dataset::open((fs::path(manifest).parent_path() / "manifest_meshes.jsonl").string(), small_options());
  REQUIRE(mesh.size() == 2);
  REQUIRE(!mesh.entry(0).mesh.empty());
  for (int64_t i = 0; i < 2; ++i) {
    const auto a = pre.get(i), b = mesh.get(i);
    const auto both = (a.mask * b.mask);
    const double agree = (a.mask == b.mask).to(torch::kFloat).mean().item<double>();
    INFO("mask agreement " << agree);
    CHECK(agree > 0.995);  // the OpenCV camera round trip may move an edge pixel by rounding
    require_close(a.uv * both, b.uv * both, 1e-3);
    require_close(a.normals * both, b.normals * both, 1e-3);
    // The cache returns the same targets.
    const auto c = mesh.get(i);
    require_close(c.uv, b.uv, 0.0);
  }
  // A mesh with the wrong vertex count is named.
  const auto bad = (fs::path(manifest).parent_path() / "meshes" / "000000.npy").string();
  io::write_npy(bad, torch::zeros({10, 3}));
  const auto fresh =
      train::Dataset::open((fs::path(manifest).parent_path() / "manifest_meshes.jsonl").string(), small_options());
  require_throws_with<FormatError>([&] { fresh.get(0); }, {"000000.npy", "10 vertices", "1200", ":1 (000000)"});
  // The default (synthetic, 5023-vertex) model does not fit these meshes, and says so.
  const auto other = train::Dataset::open((fs::path(manifest).parent_path() / "manifest_meshes.jsonl").string());
  require_throws_with<FormatError>([&] { other.get(1); }, {"000001.npy", "1200 vertices", "5023"});
}

TEST_CASE("train/dataset: the synthetic generator is deterministic by seed and across thread counts", "[train]") {
  const auto& fitter = synthetic_fitter();
  synth::SyntheticPhotoOptions o;
  o.size = 64;
  const auto a = synth::render_synthetic_photo(fitter, 3, 5, o);
  const auto b = synth::render_synthetic_photo(fitter, 3, 5, o);
  const auto c = synth::render_synthetic_photo(fitter, 3, 6, o);
  const auto d = synth::render_synthetic_photo(fitter, 4, 5, o);
  require_close(a.image, b.image, 0.0);
  require_close(a.uv, b.uv, 0.0);
  CHECK(max_abs_diff(a.image, c.image) > 0.05);
  CHECK(max_abs_diff(a.image, d.image) > 0.05);
  // The image shows the face: foreground pixels differ from the background and carry shading variation.
  const auto fg = a.mask[0] > 0;
  REQUIRE(fg.sum().item<int64_t>() > 200);
  const auto lum = a.image.mean(0).masked_select(fg);
  CHECK(lum.std().item<double>() > 0.03);
  // The targets are the fitter's exact conventions: unit-length normals inside, uv in [0, 1].
  const auto len = a.normals.norm(2, 0).masked_select(fg);
  CHECK(len.min().item<double>() > 0.5);
  CHECK(len.max().item<double>() < 1.0 + 1e-4);

  TempDir dir;
  synth::SyntheticDatasetOptions so;
  so.flame = small_flame();
  so.count = 3;
  so.seed = 11;
  so.photo.size = 48;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto m1 = synth::write_synthetic_dataset(dir.file("t1"), so);
  at::set_num_threads(2);
  const auto m2 = synth::write_synthetic_dataset(dir.file("t2"), so);
  at::set_num_threads(threads);
  const auto d1 = train::Dataset::open(m1), d2 = train::Dataset::open(m2);
  for (int64_t i = 0; i < 3; ++i) {
    const auto x = d1.get(i), y = d2.get(i);
    require_close(x.image, y.image, 0.0);
    require_close(x.uv, y.uv, 0.0);
    require_close(x.normals, y.normals, 0.0);
    require_close(x.mask, y.mask, 0.0);
  }
  // Sample i of a dataset is the generator's photo (seed, i), whatever the count.
  const auto p = synth::render_synthetic_photo(fitter, 11, 2, so.photo);
  require_close(d1.get(2).uv, p.uv, 0.0);
  require_close(d1.get(2).image, io::read_image((fs::path(m1).parent_path() / "rgb" / "000002.png").string())[0], 0.0);
}

TEST_CASE("train/dataset: a synthetic photo of given parameters shows exactly that head", "[train]") {
  const auto& fitter = synthetic_fitter();
  synth::SyntheticPhotoOptions o;
  o.size = 64;
  const auto drawn = synth::render_synthetic_photo(fitter, 3, 5, o);
  // Another appearance of the same head: same geometry and targets, another photo.
  const auto a = synth::render_synthetic_photo(fitter, drawn.params, 99, o);
  const auto b = synth::render_synthetic_photo(fitter, drawn.params, 99, o);
  const auto c = synth::render_synthetic_photo(fitter, drawn.params, 100, o);
  require_close(a.params.expression, drawn.params.expression, 0.0);
  require_close(a.vertices, drawn.vertices, 0.0);
  require_close(a.vertices, fitter.evaluate(drawn.params).vertices, 1e-6);
  require_close(a.uv, drawn.uv, 0.0);
  require_close(a.normals, drawn.normals, 0.0);
  require_close(a.image, b.image, 0.0);
  CHECK(max_abs_diff(a.image, c.image) > 0.05);
  CHECK(a.id.empty());
  CHECK(drawn.id == "5");
  require_throws_with<ValueError>(
      [&] { synth::render_synthetic_photo(fitter, fit::FitParams::initial(2, 10, 5, 4.0), 1, o); }, {"batch-1", "2"});
}

TEST_CASE("train/dataset: check_dataset reports every bad sample with its line", "[train]") {
  TempDir dir;
  const std::string manifest = write_dataset(dir, "ds", 4, false);
  CHECK(train::check_dataset(manifest).empty());
  const fs::path root = fs::path(manifest).parent_path();
  fs::remove(root / "rgb" / "000000.png");                                          // line 1: missing image
  io::write_npy((root / "uv" / "000001.npy").string(), torch::zeros({32, 32, 2}));  // line 2: shape mismatch
  auto n = io::read_npy((root / "normals" / "000003.npy").string());
  n[10][10][0] = std::nanf("");
  io::write_npy((root / "normals" / "000003.npy").string(), n);  // line 4: NaN
  int64_t calls = 0;
  const auto problems = train::check_dataset(manifest, {}, [&](int64_t done, int64_t total) {
    CHECK(total == 4);
    calls = done;
  });
  CHECK(calls == 4);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].line == 1);
  CHECK(problems[0].id == "000000");
  CHECK(problems[0].file == (root / "rgb" / "000000.png").string());
  CHECK(problems[0].reason == "missing file");
  CHECK(problems[1].line == 2);
  CHECK(problems[1].index == 1);
  CHECK(problems[1].file == (root / "uv" / "000001.npy").string());
  CHECK(problems[1].reason == "uv is 32 x 32 but the image is 64 x 64");
  CHECK(problems[2].line == 4);
  CHECK(problems[2].reason.find("NaN in normals") == 0);
  // get() throws the same, typed and located.
  const auto d = train::Dataset::open(manifest);
  require_throws_with<FileNotFound>([&] { d.get(0); }, {"manifest.jsonl:1 (000000)", "000000.png", "missing file"});
  require_throws_with<ValueError>([&] { d.get(1); }, {":2 (000001)", "32 x 32"});
  d.get(2);
  // A manifest that does not parse: one problem, index -1, with its line.
  write_text(manifest, R"({"id": "x", "image": "rgb/000002.png"})");
  const auto broken = train::check_dataset(manifest);
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].index == -1);
  CHECK(broken[0].line == 1);
  CHECK(broken[0].reason.find("has no target") != std::string::npos);
}
