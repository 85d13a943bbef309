// The benchmark's pieces on shapes with known answers: k-d tree vs brute force, point-to-surface distances,
// Chamfer / R2.5 / normal consistency on spheres, Umeyama and ICP recovering known transforms, the NoW landmarks,
// the scorer on a rigidly moved mesh, manifest errors, and the synthetic benchmark scored against itself.
#include <ATen/Parallel.h>

#include <cmath>
#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/eval/alignment.h"
#include "pixel3dmm/eval/benchmark.h"
#include "pixel3dmm/eval/synthetic_benchmark.h"
#include "pixel3dmm/eval/metrics.h"
#include "pixel3dmm/eval/nearest_neighbors.h"
#include "pixel3dmm/eval/vertex_error.h"
#include "pixel3dmm/flame/flame.h"
#include "pixel3dmm/flame/rotation.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/render/primitives.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

torch::Tensor rotation(double ax, double ay, double az) {
  return flame::axis_angle_to_matrix(torch::tensor({ax, ay, az}, torch::kDouble).reshape({1, 3}))[0];
}

eval::Similarity known_transform() {
  return {rotation(0.15, -0.3, 0.1), torch::tensor({0.01, -0.02, 0.03}, torch::kDouble), 1.0};
}

const flame::FlameModel& small_model() {
  static const flame::FlameModel m = synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(1500).n_shape(10).n_expr(5));
  return m;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

}  // namespace

TEST_CASE("k-d tree nearest neighbours equal brute force on random points", "[eval]") {
  torch::manual_seed(0);
  for (int64_t n : {1, 7, 1000, 5000}) {
    auto points = torch::rand({n, 3});
    if (n > 10) points.slice(0, 0, 10).copy_(points.slice(0, 10, 20));  // duplicates: ties go to the lower index
    const auto queries = torch::randn({2000, 3}) * 0.7 + 0.5;
    for (int leaf : {1, 8, 32}) {
      const auto kd = eval::KdTree(points, leaf).query(queries);
      const auto bf = eval::nearest_neighbors_brute_force(points, queries);
      INFO("n = " << n << ", leaf = " << leaf);
      require_close(kd.distances, bf.distances, 1e-6);
      REQUIRE(torch::equal(kd.indices, bf.indices));
    }
  }
  // The answer does not depend on the thread count.
  const auto points = torch::rand({3000, 3}), queries = torch::rand({3000, 3});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = eval::nearest_neighbors(points, queries);
  at::set_num_threads(std::max(2, threads));
  const auto many = eval::nearest_neighbors(points, queries);
  at::set_num_threads(threads);
  REQUIRE(torch::equal(one.indices, many.indices));
}

TEST_CASE("nearest-neighbour inputs are checked", "[eval]") {
  require_throws_with<ValueError>([] { eval::KdTree(torch::rand({5, 2})); }, {"KdTree points", "[5, 2]"});
  require_throws_with<ValueError>([] { eval::KdTree(torch::zeros({0, 3})); }, {"at least one point"});
  auto bad = torch::rand({4, 3});
  bad[1][1] = NAN;
  require_throws_with<ValueError>([&] { eval::KdTree tree(bad); }, {"KdTree points"});
  require_throws_with<ValueError>([] { eval::SurfaceDistance(torch::rand({3, 3}), torch::tensor({{0, 1, 5}})); },
                                  {"out of range"});
}

TEST_CASE("point-to-surface distance is exact on a triangle and a sphere", "[eval]") {
  const auto v = torch::tensor({{0.0f, 0.0f, 0.0f}, {1.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f}});
  const auto f = torch::tensor({{0, 1, 2}}, torch::kLong);
  // Above the interior, beyond an edge, beyond a corner.
  const auto q = torch::tensor({{0.2f, 0.2f, 0.5f}, {0.5f, -0.3f, 0.0f}, {-0.3f, -0.4f, 0.0f}});
  const auto r = eval::SurfaceDistance(v, f).query(q);
  require_close(r.distances, torch::tensor({0.5f, 0.3f, 0.5f}), 1e-6);
  require_close(r.points, torch::tensor({{0.2f, 0.2f, 0.0f}, {0.5f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f}}), 1e-6);
  // Points at radius 2 around a finely tessellated unit sphere are 1 away from it (chord error ~1e-4).
  const auto s = render::uv_sphere(101, 200);
  const auto dirs = torch::nn::functional::normalize(torch::randn({500, 3}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto d = eval::SurfaceDistance(s.vertices, s.faces).query(dirs * 2).distances;
  require_close(d, torch::ones({500}), 1e-3);
}

TEST_CASE("Chamfer, R2.5 and normal consistency: a unit sphere vs a sphere of radius r", "[eval]") {
  const auto unit = render::uv_sphere(101, 200, 1.0);
  eval::MetricOptions o;
  o.samples = 20000;
  o.threshold = 0.0025;
  for (double r : {1.1, 0.95, 1.002}) {
    const auto other = render::uv_sphere(101, 200, r);
    const auto m = eval::compare_surfaces(other.vertices, other.faces, unit.vertices, unit.faces, o);
    const double mm = std::abs(r - 1) * 1000;  // metres in, millimetres out
    INFO("r = " << r << ": " << eval::repr(m));
    // Both directions: every point of one sphere is |r - 1| from the other (up to the tessellation's chord error).
    REQUIRE(m.accuracy_l1 == Approx(mm).epsilon(0.01).margin(0.2));
    REQUIRE(m.completeness_l1 == Approx(mm).epsilon(0.01).margin(0.2));
    REQUIRE(m.chamfer_l1 == Approx(mm).epsilon(0.01).margin(0.2));
    REQUIRE(m.chamfer_l2 == Approx(mm * mm).epsilon(0.03).margin(0.5));
    REQUIRE(m.r25 == (mm < 2.5 ? 1.0 : 0.0));
    REQUIRE(m.normal_consistency > 0.999);
  }
  // The point-set version on the same spheres' dense samples agrees to within the sample spacing.
  const auto a = eval::sample_surface(unit.vertices, unit.faces, 20000, 1);
  const auto big = render::uv_sphere(101, 200, 1.1);
  const auto b = eval::sample_surface(big.vertices, big.faces, 20000, 2);
  const auto pm = eval::chamfer(b.points, a.points, b.normals, a.normals, o);
  REQUIRE(pm.chamfer_l1 == Approx(100.0).margin(3.0));
  REQUIRE(pm.normal_consistency > 0.99);
  // A flipped sphere has the same geometry: consistency uses |cos|, distances are unchanged.
  const auto flipped = unit.faces.index_select(1, torch::tensor({0, 2, 1}));
  const auto same = eval::compare_surfaces(unit.vertices, flipped, unit.vertices, unit.faces, o);
  REQUIRE(same.chamfer_l1 < 1e-3);
  REQUIRE(same.normal_consistency > 0.999);
}

TEST_CASE("sample_surface is uniform over area and deterministic", "[eval]") {
  // Two unit squares, one scaled by 3 in x: three times the area gets three times the samples.
  const auto v = torch::tensor({{0.f, 0.f, 0.f}, {1.f, 0.f, 0.f}, {1.f, 1.f, 0.f}, {0.f, 1.f, 0.f},
                                {10.f, 0.f, 0.f}, {13.f, 0.f, 0.f}, {13.f, 1.f, 0.f}, {10.f, 1.f, 0.f}});
  const auto f = torch::tensor({{0, 1, 2}, {0, 2, 3}, {4, 5, 6}, {4, 6, 7}}, torch::kLong);
  const auto s = eval::sample_surface(v, f, 40000, 5);
  const double share = (s.points.select(1, 0) > 5).to(torch::kDouble).mean().item<double>();
  REQUIRE(share == Approx(0.75).margin(0.01));
  require_close(s.normals, torch::tensor({0.f, 0.f, 1.f}).expand({40000, 3}), 1e-5);
  REQUIRE(torch::equal(s.points, eval::sample_surface(v, f, 40000, 5).points));
  REQUIRE_FALSE(torch::equal(s.points, eval::sample_surface(v, f, 40000, 6).points));
}

TEST_CASE("Umeyama recovers a similarity; ICP recovers a rigid transform from identity", "[eval]") {
  torch::manual_seed(1);
  const auto src = torch::randn({50, 3}, torch::kDouble);
  const eval::Similarity t{rotation(0.4, 1.0, -0.2), torch::tensor({0.5, -1.0, 2.0}, torch::kDouble), 1.7};
  const auto dst = t.apply(src);
  const auto s = eval::umeyama(src, dst, true);
  require_close(s.rotation, t.rotation, 1e-9);
  require_close(s.translation, t.translation, 1e-9);
  REQUIRE(s.scale == Approx(1.7).epsilon(1e-9));
  // Without scale: the best rigid motion; with reflected data the rotation stays proper.
  const auto rigid = eval::umeyama(src, dst, false);
  REQUIRE(rigid.scale == 1.0);
  REQUIRE(torch::det(rigid.rotation).item<double>() == Approx(1.0));
  require_throws_with<ValueError>([&] { eval::umeyama(src.slice(0, 0, 2), dst.slice(0, 0, 2)); }, {"at least 3"});

  // ICP: a face-sized surface moved by a few degrees and centimetres, started from the identity.
  const auto& model = small_model();
  const auto pts = eval::sample_surface(model.v_template, model.faces, 8000, 3).points;
  const eval::Similarity move = known_transform();
  const auto target = move.apply(pts);
  eval::IcpOptions o;
  o.iterations = 200;
  o.max_distance = 0.0;  // keep every pair: the start is several centimetres off
  o.tolerance = 1e-14;
  const auto r = eval::icp(pts, target, eval::Similarity::identity(), o);
  require_close(r.transform.rotation, move.rotation, 2e-3);
  require_close(r.transform.translation, move.translation, 2e-4);
  REQUIRE(r.rms < 1e-4);
}

TEST_CASE("NoW landmarks come from the static embedding (iBUG 36, 39, 42, 45, 33, 48, 54)", "[eval]") {
  const auto& model = small_model();
  flame::Flame flame(model, flame::FlameOptions());
  const auto out = flame->forward(flame::FlameParams{});
  const auto expected = out.landmarks[0].index_select(0, torch::tensor({36, 39, 42, 45, 33, 48, 54}));
  require_close(eval::now_landmarks(model, out.vertices[0]), expected, 1e-6);
  require_throws_with<ValueError>([&] { eval::now_landmarks(model, torch::zeros({10, 3})); }, {"vertex count"});
  flame::FlameModel no_lmk = model;
  no_lmk.static_lmk_faces_idx = torch::Tensor();
  require_throws_with<ValueError>([&] { eval::now_landmarks(no_lmk, model.v_template); }, {"51-point"});
}

TEST_CASE("a mesh vs itself moved by a known rigid transform scores zero after alignment", "[eval]") {
  const auto& model = small_model();
  eval::ScoreOptions so;
  so.metrics.samples = 5000;
  const eval::Scorer scorer(model, so);
  io::Mesh gt;
  gt.vertices = model.v_template;
  gt.faces = model.faces;
  io::Mesh pred = gt;
  const eval::Similarity move = known_transform();
  pred.vertices = move.apply(gt.vertices);
  const auto s = scorer.score(pred, gt);
  INFO(eval::repr(s.metrics));
  REQUIRE(s.metrics.chamfer_l1 < 0.02);  // mm
  REQUIRE(s.metrics.r25 == 1.0);
  REQUIRE(s.metrics.normal_consistency > 0.999);
  // The alignment is the inverse motion.
  const auto back = s.alignment.compose(move);
  require_close(back.rotation, torch::eye(3, torch::kDouble), 1e-3);
  require_close(back.translation, torch::zeros({3}, torch::kDouble), 1e-4);
  // Per-vertex errors: ~0 inside the face region, NaN outside.
  const auto inside = s.vertex_error.isfinite();
  REQUIRE(inside.sum().item<int64_t>() > eval::face_region_vertices(model).numel() / 2);
  REQUIRE(inside.sum().item<int64_t>() <= eval::face_region_vertices(model).numel());
  REQUIRE(s.vertex_error.index({inside}).max().item<double>() < 5e-5);
  // Without ICP the landmark alignment alone is exact too here (same mesh, exact landmarks).
  eval::ScoreOptions lo = so;
  lo.icp.iterations = 0;
  REQUIRE(eval::Scorer(model, lo).score(pred, gt).metrics.chamfer_l1 < 0.02);
  // A change no rigid motion undoes is measured: the nose pushed 3 mm out along its normals.
  io::Mesh bumped = gt;
  const auto nose = model.masks.at("nose").to(torch::kLong);
  bumped.vertices = gt.vertices.clone();
  bumped.vertices.index_add_(0, nose, 0.003 * eval::vertex_normals(gt.vertices, gt.faces).index_select(0, nose).to(gt.vertices.scalar_type()));
  const auto b = scorer.score(bumped, gt);
  INFO(eval::repr(b.metrics));
  REQUIRE(b.metrics.chamfer_l1 > 20 * s.metrics.chamfer_l1);
  REQUIRE(b.metrics.accuracy_l1 > 0.05);
  REQUIRE(b.metrics.r25 < 1.0);  // the nose tip's truth is 3 mm from the bumped surface
  // A prediction without FLAME topology is refused with the reason.
  io::Mesh other;
  other.vertices = torch::rand({10, 3});
  other.faces = torch::tensor({{0, 1, 2}}, torch::kLong);
  require_throws_with<ValueError>([&] { scorer.score(other, gt); }, {"FLAME topology"});
}

TEST_CASE("benchmark manifests: errors name the file, line and key", "[eval]") {
  TempDir dir;
  require_throws_with<FileNotFound>([&] { eval::read_benchmark(dir.file("nothing")); }, {"nothing", "manifest"});
  write_text(dir.file("cases.jsonl"), "{\"name\": \"a\", \"gt_posed\": \"a.ply\", \"gt_neutral\": \"b.ply\"}\n"
                                      "{not json\n");
  require_throws_with<FormatError>([&] { eval::read_benchmark(dir.path.string()); }, {"cases.jsonl", "line 2", "JSON"});
  write_text(dir.file("cases.jsonl"), "{\"name\": \"a\", \"gt_neutral\": \"b.ply\"}\n");
  require_throws_with<FormatError>([&] { eval::read_benchmark(dir.path.string()); }, {"line 1", "gt_posed"});
  write_text(dir.file("cases.jsonl"), "{\"name\": \"a\", \"gt_posed\": \"a.ply\", \"gt_neutral\": \"b.ply\"}\n"
                                      "{\"name\": \"a\", \"gt_posed\": \"c.ply\", \"gt_neutral\": \"d.ply\"}\n");
  require_throws_with<FormatError>([&] { eval::read_benchmark(dir.path.string()); }, {"line 2", "duplicate", "'a'"});
  write_text(dir.file("cases.jsonl"),
             "{\"name\": \"a\", \"gt_posed\": \"a.ply\", \"gt_neutral\": \"b.ply\", \"landmarks_posed\": [[1, 2]]}\n");
  require_throws_with<FormatError>([&] { eval::read_benchmark(dir.path.string()); }, {"landmarks_posed", "7 rows"});
  write_text(dir.file("cases.jsonl"), "\n");
  require_throws_with<FormatError>([&] { eval::read_benchmark(dir.file("cases.jsonl")); }, {"no cases"});
  // A good manifest round-trips; paths resolve against its folder.
  eval::BenchmarkCase c;
  c.name = "x", c.gt_posed = "x/p.ply", c.gt_neutral = "x/n.ply";
  c.landmarks_posed = torch::rand({7, 3});
  eval::write_manifest(dir.path.string(), {c});
  const auto b = eval::read_benchmark(dir.path.string());
  REQUIRE(b.cases.size() == 1);
  REQUIRE(b.resolve(b.cases[0].gt_posed) == (dir.path / "x/p.ply").string());
  require_close(b.cases[0].landmarks_posed, c.landmarks_posed, 1e-6);
  REQUIRE_FALSE(b.cases[0].landmarks_neutral.defined());
  require_throws_with<ValueError>([] { eval::method_config("magic", {}); }, {"unknown benchmark method", "magic"});
  // The ablation rows switch off exactly one kind of dense term.
  const fit::FitConfig full;
  REQUIRE(eval::method_config("uv", full).loss.normal == 0.0);
  REQUIRE(eval::method_config("uv", full).loss.uv == full.loss.uv);
  REQUIRE(eval::method_config("normals", full).loss.uv == 0.0);
  REQUIRE(eval::method_config("normals", full).loss.normal == full.loss.normal);
}

TEST_CASE("synthetic benchmark: deterministic, readable by the fit, ground truth scores zero against itself",
          "[eval]") {
  TempDir dir;
  flame::Flame flame(small_model(), flame::FlameOptions());
  synth::SyntheticBenchmarkOptions o;
  o.cases = 2;
  o.size = 96;
  o.seed = 4;
  const auto bench = eval::make_synthetic_benchmark(dir.file("a"), flame, o);
  REQUIRE(bench.cases.size() == 2);
  const auto again = eval::make_synthetic_benchmark(dir.file("b"), flame, o);
  const auto pa = io::read_mesh(bench.resolve(bench.cases[1].gt_posed));
  const auto pb = io::read_mesh(again.resolve(again.cases[1].gt_posed));
  REQUIRE(torch::equal(pa.vertices, pb.vertices));
  const auto p0 = io::read_mesh(bench.resolve(bench.cases[0].gt_posed));
  REQUIRE_FALSE(torch::equal(p0.vertices, pa.vertices));
  // Each case's image is a photo-like render (coloured face on a varied background, as the networks are trained
  // on), not the grey-background map render: the corners differ from each other and from that render's 0.3 grey.
  const auto photo = io::read_image(bench.resolve(bench.cases[0].image))[0];
  REQUIRE(photo.size(-1) == 96);
  const auto corners = torch::stack({photo.select(1, 0).select(1, 0), photo.select(1, 0).select(1, 95),
                                     photo.select(1, 95).select(1, 0), photo.select(1, 95).select(1, 95)});
  CHECK((corners - 0.3).abs().max().item<double>() > 0.05);
  CHECK((corners - corners[0]).abs().max().item<double>() > 0.01);
  require_close(photo, io::read_image(again.resolve(again.cases[0].image))[0], 0.0);
  // The ground truth itself, given as another tool's meshes, scores ~0 and fills the tables and the heat maps.
  std::filesystem::create_directories(dir.file("meshes"));
  for (const auto& c : bench.cases) {
    std::filesystem::copy_file(bench.resolve(c.gt_posed), dir.file("meshes/" + c.name + "_posed.ply"));
    std::filesystem::copy_file(bench.resolve(c.gt_neutral), dir.file("meshes/" + c.name + "_neutral.ply"));
  }
  eval::ScoreOptions so;
  so.metrics.samples = 4000;
  const auto r = eval::score_benchmark(bench, small_model(), dir.file("meshes"), so, dir.file("out"), "truth", 2);
  const auto s = r.summary();
  REQUIRE(s.cases == 2);
  REQUIRE(s.failed == 0);
  REQUIRE(s.posed_l1 < 0.05);  // what remains is ICP on finite samples
  REQUIRE(s.neutral_l1 < 0.05);
  REQUIRE(s.posed_r25 == 1.0);
  for (const char* f : {"out/results.md", "out/results.csv", "out/heatmaps.png"})
    REQUIRE(std::filesystem::exists(dir.file(f)));
  // A missing mesh fails that case, not the run.
  std::filesystem::remove(dir.file("meshes/case_001_posed.ply"));
  const auto r2 = eval::score_benchmark(bench, small_model(), dir.file("meshes"), so, dir.file("out2"), "truth", 0);
  REQUIRE(r2.summary().failed == 1);
  REQUIRE(r2.cases[1].error.find("case_001_posed") != std::string::npos);
}

TEST_CASE("aligned_vertex_error removes a rigid motion and nothing more", "[eval]") {
  const auto& model = small_model();
  const auto v = model.v_template.to(torch::kFloat).unsqueeze(0);  // 1 x V x 3
  const eval::Similarity move = known_transform();
  const auto moved = move.apply(v[0]).unsqueeze(0);
  REQUIRE(eval::mean_vertex_error(moved, v) > 0.01);
  REQUIRE(eval::aligned_vertex_error(moved, v) < 1e-6);
  // A 10% larger head stays wrong after a rigid alignment: about 10% of the mean distance to the centroid.
  const auto centred = v - v.mean(1, true);
  const double expected = 0.1 * centred.norm(2, -1).mean().item<double>();
  REQUIRE(eval::aligned_vertex_error(centred * 1.1, centred) == Approx(expected).epsilon(1e-3));
  // Two batch items: the mean of the per-item errors; a vertex subset measures only those vertices.
  const auto subset = eval::non_eyeball_vertices(model);
  REQUIRE(subset.numel() < model.n_vertices());
  const auto part = centred.index_select(1, subset);
  const double part_expected = 0.1 * (part - part.mean(1, true)).norm(2, -1).mean().item<double>();
  REQUIRE(eval::aligned_vertex_error(torch::cat({moved, centred * 1.1}), torch::cat({v, centred}), subset) ==
          Approx(0.5 * part_expected).epsilon(1e-3));
  require_throws_with<pixel3dmm::Error>([&] { eval::aligned_vertex_error(v, v[0]); }, {"B x V x 3"});
}
