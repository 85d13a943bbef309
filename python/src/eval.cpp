// Bindings of pixel3dmm/eval: nearest neighbours, surface metrics, alignment, the benchmark runner.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/eval/alignment.h"
#include "pixel3dmm/eval/benchmark.h"
#include "pixel3dmm/eval/synthetic_benchmark.h"
#include "pixel3dmm/eval/metrics.h"
#include "pixel3dmm/eval/nearest_neighbors.h"
#include "pixel3dmm/eval/vertex_error.h"

namespace pixel3dmm::python {
namespace {

using eval::Similarity;
using eval::SurfaceMetrics;

py::dict metrics_dict(const SurfaceMetrics& m) {
  py::dict d;
  d["chamfer_l1"] = m.chamfer_l1, d["accuracy_l1"] = m.accuracy_l1, d["completeness_l1"] = m.completeness_l1;
  d["chamfer_l2"] = m.chamfer_l2, d["accuracy_l2"] = m.accuracy_l2, d["completeness_l2"] = m.completeness_l2;
  d["r25"] = m.r25, d["precision25"] = m.precision25, d["normal_consistency"] = m.normal_consistency;
  d["n_pred"] = m.n_pred, d["n_gt"] = m.n_gt;
  d["pred_distances"] = from_tensor(m.pred_distances), d["gt_distances"] = from_tensor(m.gt_distances);
  return d;
}

eval::MetricOptions metric_options(double threshold, int64_t samples, uint64_t seed) {
  eval::MetricOptions o;
  o.threshold = threshold, o.samples = samples, o.seed = seed;
  return o;
}

py::dict results_dict(const eval::BenchmarkResults& r) {
  const eval::Summary s = r.summary();
  py::dict summary;
  summary["cases"] = s.cases, summary["failed"] = s.failed;
  summary["posed_l1"] = s.posed_l1, summary["posed_l2"] = s.posed_l2, summary["posed_r25"] = s.posed_r25;
  summary["posed_nc"] = s.posed_nc, summary["neutral_l1"] = s.neutral_l1, summary["neutral_l2"] = s.neutral_l2;
  summary["neutral_r25"] = s.neutral_r25, summary["neutral_nc"] = s.neutral_nc;
  summary["fit_seconds"] = s.fit_seconds;
  py::list cases;
  for (const auto& c : r.cases) {
    py::dict d;
    d["name"] = c.name, d["ok"] = c.ok, d["error"] = c.error, d["fit_seconds"] = c.fit_seconds;
    d["posed"] = c.ok ? py::object(metrics_dict(c.posed.metrics)) : py::none();
    d["neutral"] = c.ok && c.has_neutral ? py::object(metrics_dict(c.neutral.metrics)) : py::none();
    cases.append(d);
  }
  py::dict d;
  d["method"] = r.method, d["summary"] = summary, d["cases"] = cases;
  return d;
}

eval::ScoreOptions score_options(int64_t samples, int icp_iterations, bool with_scale, double threshold) {
  eval::ScoreOptions o;
  o.metrics.samples = samples, o.metrics.threshold = threshold;
  o.icp.iterations = icp_iterations;
  o.with_scale = with_scale;
  return o;
}

}  // namespace

void bind_eval(py::module_& m) {
  m.def(
      "aligned_vertex_error",
      [](const torch::Tensor& a, const torch::Tensor& b, const py::object& vertices) {
        return eval::aligned_vertex_error(a, b, to_tensor(vertices));
      },
      py::arg("a"), py::arg("b"), py::arg("vertices") = py::none(),
      "Mean vertex distance (m) after the best rigid alignment of a onto b (B x V x 3), over `vertices` (ids).");
  m.def("non_eyeball_vertices", &eval::non_eyeball_vertices, py::arg("model"),
        "The vertex ids geometry errors are measured over (all but the eyeballs).");
  m.def("face_region_vertices", &eval::face_region_vertices, py::arg("model"),
        "The vertex ids a photo shows (FLAME masks face, forehead, eye_region, nose, lips, ears; no eyeballs).");
  py::class_<eval::KdTree>(m, "KdTree", "A static 3-D k-d tree for nearest-neighbour queries (parallel, exact).")
      .def(py::init([](const py::object& points, int leaf_size) { return eval::KdTree(to_tensor(points), leaf_size); }),
           py::arg("points"), py::arg("leaf_size") = 8, "points: N x 3 float")
      .def(
          "query",
          [](const eval::KdTree& t, const py::object& q) {
            const auto r = t.query(to_tensor(q));
            return py::make_tuple(r.distances, r.indices);
          },
          py::arg("queries"), "queries: M x 3 -> (distances M float32, indices M int64) of the nearest points")
      .def("__len__", &eval::KdTree::size)
      .def("__repr__", [](const eval::KdTree& t) { return "KdTree(points=" + std::to_string(t.size()) + ")"; });

  m.def(
      "nearest_neighbors",
      [](const py::object& points, const py::object& queries) {
        const auto r = eval::nearest_neighbors(to_tensor(points), to_tensor(queries));
        return py::make_tuple(r.distances, r.indices);
      },
      py::arg("points"), py::arg("queries"),
      "points: N x 3, queries: M x 3 -> (distances M float32, indices M int64): each query's nearest point "
      "(k-d tree; ties go to the lower index).");
  m.def(
      "nearest_neighbors_brute_force",
      [](const py::object& points, const py::object& queries) {
        const auto r = eval::nearest_neighbors_brute_force(to_tensor(points), to_tensor(queries));
        return py::make_tuple(r.distances, r.indices);
      },
      py::arg("points"), py::arg("queries"), "The all-pairs reference of nearest_neighbors.");
  m.def(
      "surface_distance",
      [](const py::object& vertices, const py::object& faces, const py::object& queries) {
        const auto r = eval::SurfaceDistance(to_tensor(vertices), to_tensor(faces)).query(to_tensor(queries));
        py::dict d;
        d["distances"] = r.distances, d["points"] = r.points, d["faces"] = r.faces, d["barycentric"] = r.barycentric;
        return d;
      },
      py::arg("vertices"), py::arg("faces"), py::arg("queries"),
      "vertices V x 3, faces F x 3, queries M x 3 -> dict(distances M, points M x 3, faces M, barycentric M x 3): "
      "the exact closest point on the triangle surface.");
  m.def(
      "sample_surface",
      [](const py::object& vertices, const py::object& faces, int64_t n, uint64_t seed) {
        const auto s = eval::sample_surface(to_tensor(vertices), to_tensor(faces), n, seed);
        return py::make_tuple(s.points, s.normals);
      },
      py::arg("vertices"), py::arg("faces"), py::arg("n"), py::arg("seed") = 0,
      "-> (points n x 3, normals n x 3): uniform over the area, deterministic in seed.");
  m.def(
      "chamfer",
      [](const py::object& pred, const py::object& gt, const py::object& pred_normals, const py::object& gt_normals,
         double threshold) {
        return metrics_dict(eval::chamfer(to_tensor(pred), to_tensor(gt), to_tensor(pred_normals),
                                          to_tensor(gt_normals), metric_options(threshold, 0, 0)));
      },
      py::arg("pred"), py::arg("gt"), py::arg("pred_normals") = py::none(), py::arg("gt_normals") = py::none(),
      py::arg("threshold") = 0.0025,
      "Point sets pred N x 3, gt M x 3 (metres) -> dict: chamfer_l1 / accuracy_l1 (pred -> gt) / completeness_l1 "
      "(gt -> pred) in mm, the _l2 means of squares in mm^2, r25 (share of gt within threshold), precision25, "
      "normal_consistency (0 without normals), pred_distances / gt_distances (metres).");
  m.def(
      "compare_surfaces",
      [](const py::object& pv, const py::object& pf, const py::object& gv, const py::object& gf, int64_t samples,
         double threshold, uint64_t seed) {
        return metrics_dict(eval::compare_surfaces(to_tensor(pv), to_tensor(pf), to_tensor(gv), to_tensor(gf),
                                                   metric_options(threshold, samples, seed)));
      },
      py::arg("pred_vertices"), py::arg("pred_faces"), py::arg("gt_vertices"), py::arg("gt_faces"),
      py::arg("samples") = 20000, py::arg("threshold") = 0.0025, py::arg("seed") = 0,
      "Meshes (V x 3 metres, F x 3) -> the chamfer dict, from `samples` points per surface measured to the exact "
      "closest point of the other surface.");

  py::class_<Similarity>(m, "Similarity", "x -> scale * R x + t (float64).")
      .def(py::init([](const py::object& rotation, const py::object& translation, double scale) {
             return Similarity{to_tensor(rotation).to(torch::kDouble), to_tensor(translation).to(torch::kDouble),
                               scale};
           }),
           py::arg("rotation"), py::arg("translation"), py::arg("scale") = 1.0)
      .def_readwrite("rotation", &Similarity::rotation, "3 x 3")
      .def_readwrite("translation", &Similarity::translation, "3")
      .def_readwrite("scale", &Similarity::scale)
      .def("apply", [](const Similarity& s, const py::object& p) { return s.apply(to_tensor(p)); }, py::arg("points"),
           "N x 3 -> N x 3")
      .def("compose", &Similarity::compose, py::arg("other"), "(self after other)")
      .def_static("identity", &Similarity::identity)
      .def("__repr__", &Similarity::repr);
  m.def(
      "umeyama",
      [](const py::object& src, const py::object& dst, bool with_scale) {
        return eval::umeyama(to_tensor(src), to_tensor(dst), with_scale);
      },
      py::arg("src"), py::arg("dst"), py::arg("with_scale") = false,
      "The least-squares rigid motion (or similarity) mapping src N x 3 onto dst N x 3.");
  m.def(
      "icp",
      [](const py::object& source, const py::object& target, const std::optional<Similarity>& initial,
         int iterations, double max_distance, double tolerance, bool with_scale) {
        eval::IcpOptions o;
        o.iterations = iterations, o.max_distance = max_distance, o.tolerance = tolerance, o.with_scale = with_scale;
        const auto r = eval::icp(to_tensor(source), to_tensor(target), initial.value_or(Similarity::identity()), o);
        py::dict d;
        d["transform"] = r.transform, d["rms"] = r.rms, d["iterations"] = r.iterations, d["pairs"] = r.pairs;
        return d;
      },
      py::arg("source"), py::arg("target"), py::arg("initial") = py::none(), py::arg("iterations") = 50,
      py::arg("max_distance") = 0.02, py::arg("tolerance") = 1e-9, py::arg("with_scale") = false,
      "Point-to-point ICP of source N x 3 onto target M x 3 (metres) -> dict(transform, rms, iterations, pairs).");
  m.def(
      "now_landmarks",
      [](const flame::FlameModel& model, const py::object& vertices) {
        return eval::now_landmarks(model, to_tensor(vertices));
      },
      py::arg("model"), py::arg("vertices"),
      "FlameModel, V x 3 vertices -> 7 x 3: the NoW landmarks (iBUG 36, 39, 42, 45, 33, 48, 54) through the "
      "static landmark embedding.");
  m.def(
      "score_mesh",
      [](const flame::FlameModel& model, const py::object& pred_vertices, const py::object& gt_vertices,
         const py::object& gt_landmarks, int64_t samples, int icp_iterations, bool with_scale) {
        const eval::Scorer scorer(model, score_options(samples, icp_iterations, with_scale, 0.0025));
        io::Mesh pred, gt;
        pred.vertices = to_tensor(pred_vertices), pred.faces = model.faces;
        gt.vertices = to_tensor(gt_vertices), gt.faces = model.faces;
        const auto s = scorer.score(pred, gt, to_tensor(gt_landmarks));
        py::dict d = metrics_dict(s.metrics);
        d["alignment"] = s.alignment;
        d["vertex_error"] = s.vertex_error;
        return d;
      },
      py::arg("model"), py::arg("pred_vertices"), py::arg("gt_vertices"), py::arg("gt_landmarks") = py::none(),
      py::arg("samples") = 20000, py::arg("icp_iterations") = 50, py::arg("with_scale") = false,
      "The benchmark's score of one FLAME-topology prediction V x 3 against the truth V x 3: face region, NoW "
      "landmark alignment + ICP, then the chamfer dict plus alignment and vertex_error (V, metres, NaN outside).");

  m.def(
      "make_synthetic_benchmark",
      [](const std::string& folder, const std::shared_ptr<flame::FlameImpl>& flame, int64_t cases, uint64_t seed,
         int64_t size, double yaw_deg) {
        synth::SyntheticBenchmarkOptions o;
        o.cases = cases, o.seed = seed, o.size = size, o.yaw_deg = yaw_deg;
        const auto b = eval::make_synthetic_benchmark(folder, flame::Flame(flame), o);
        return static_cast<int64_t>(b.cases.size());
      },
      py::arg("folder"), py::arg("flame"), py::arg("cases") = 20, py::arg("seed") = 0, py::arg("size") = 512,
      py::arg("yaw_deg") = 75.0,
      "Writes the synthetic benchmark (cases.jsonl, per-case fit inputs and ground-truth meshes) into folder; "
      "returns the number of cases.");
  m.def(
      "run_benchmark",
      [](const std::string& bench, const std::shared_ptr<flame::FlameImpl>& flame, const std::string& method,
         const std::string& out, const py::object& config, int64_t samples, int icp_iterations, int heatmaps) {
        eval::RunOptions o;
        o.method = method;
        o.config = fit_config_from(config);
        o.score = score_options(samples, icp_iterations, false, 0.0025);
        o.heatmaps = heatmaps;
        eval::BenchmarkResults r;
        {
          py::gil_scoped_release release;
          r = eval::run_benchmark(eval::read_benchmark(bench), flame::Flame(flame), o, out);
        }
        return results_dict(r);
      },
      py::arg("bench"), py::arg("flame"), py::arg("method") = "full", py::arg("out") = "eval-results",
      py::arg("config") = py::none(), py::arg("samples") = 20000, py::arg("icp_iterations") = 50,
      py::arg("heatmaps") = 3,
      "Fits every case of a benchmark folder with method landmarks | uv | full | ours (config: a dict of "
      "configs/fit.json keys), scores it and writes out/results.md, results.csv, heatmaps.png, meshes/. Returns "
      "dict(method, summary, cases).");
  m.def(
      "score_benchmark",
      [](const std::string& bench, const flame::FlameModel& model, const std::string& meshes, const std::string& out,
         const std::string& name, int64_t samples, int icp_iterations, int heatmaps) {
        return results_dict(eval::score_benchmark(eval::read_benchmark(bench), model, meshes,
                                                  score_options(samples, icp_iterations, false, 0.0025), out, name,
                                                  heatmaps));
      },
      py::arg("bench"), py::arg("model"), py::arg("meshes"), py::arg("out") = "eval-results",
      py::arg("name") = "meshes", py::arg("samples") = 20000, py::arg("icp_iterations") = 50,
      py::arg("heatmaps") = 3,
      "Scores any tool's meshes (meshes/<case>_posed.ply, optional <case>_neutral.ply) against a benchmark.");
}

}  // namespace pixel3dmm::python
