// Bindings of pixel3dmm/fit: the Fitter, its targets, parameters and results, outputs, synthetic targets.
// Settings cross as dicts with the keys of configs/fit.json (missing keys keep their defaults).
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/outputs.h"
#include "pixel3dmm/synth/synthetic_target.h"

namespace pixel3dmm::python {

namespace {

using fit::FitParams;
using fit::FitResult;
using fit::FitTarget;
using fit::Fitter;

py::dict log_entry_dict(const fit::FitLogEntry& e) {
  py::dict d;
  d["stage"] = e.stage;
  d["step"] = e.step;
  d["total"] = e.total;
  d["terms"] = e.terms;
  return d;
}

std::vector<FitTarget> targets_from(const py::object& targets) {
  if (py::isinstance<FitTarget>(targets)) return {targets.cast<FitTarget>()};
  return targets.cast<std::vector<FitTarget>>();
}

}  // namespace

fit::FitConfig fit_config_from(const py::object& config) {
  return config.is_none() ? fit::FitConfig{} : io::parse_config<fit::FitConfig>(to_json(config), "config");
}

fit::FitCallback fit_callback_from(const py::object& fn) {
  if (fn.is_none()) return {};
  return [fn](const fit::FitLogEntry& e) {
    py::gil_scoped_acquire acquire;
    const py::object r = fn(log_entry_dict(e));
    return r.is_none() ? true : r.cast<bool>();
  };
}

void bind_fit(py::module_& m) {
  m.def(
      "default_config", [] { return from_json(io::json(fit::FitConfig{})); },
      "The default (official) fit settings as a dict: the content of configs/fit.json.");

  // --- targets ---
  py::class_<FitTarget> target(m, "FitTarget",
                               "What one image contributes (see docs/fitting.md). uv: 1 x 2 x H x W (u, 1 - v); "
                               "normals: 1 x 3 x H x W (FLAME frame);\nuv_mask, normal_mask, fg_mask, valid_bg: "
                               "1 x H x W; landmarks: 1 x 68 x 2 pixels; landmark_mask: 1 x 68;\niris: 1 x 2 x 2; "
                               "image: 1 x 3 x H x W (pictures only);\nidentity: 1 x n_shape (or the model's 300) "
                               "identity code of this image, e.g. MICA's: the fit's identity prior\nis the mean of "
                               "its targets' codes. Optional fields may be None.");
  target.def(py::init([](const py::object& uv, const py::object& normals, const py::object& uv_mask,
                         const py::object& normal_mask, const py::object& fg_mask, const py::object& valid_bg,
                         const py::object& landmarks, const py::object& landmark_mask, const py::object& iris,
                         const py::object& image, const py::object& identity) {
               FitTarget t;
               t.uv = to_tensor(uv);
               t.normals = to_tensor(normals);
               t.uv_mask = to_tensor(uv_mask);
               t.normal_mask = to_tensor(normal_mask);
               t.fg_mask = to_tensor(fg_mask);
               t.valid_bg = to_tensor(valid_bg);
               t.landmarks = to_tensor(landmarks);
               t.landmark_mask = to_tensor(landmark_mask);
               t.iris = to_tensor(iris);
               t.image = to_tensor(image);
               t.identity = to_tensor(identity);
               return t;
             }),
             py::arg("uv"), py::arg("normals"), py::arg("uv_mask"), py::arg("normal_mask"),
             py::arg("fg_mask") = py::none(), py::arg("valid_bg") = py::none(), py::arg("landmarks") = py::none(),
             py::arg("landmark_mask") = py::none(), py::arg("iris") = py::none(), py::arg("image") = py::none(),
             py::arg("identity") = py::none());
  def_tensor_field(target, "uv", &FitTarget::uv);
  def_tensor_field(target, "normals", &FitTarget::normals);
  def_tensor_field(target, "uv_mask", &FitTarget::uv_mask);
  def_tensor_field(target, "normal_mask", &FitTarget::normal_mask);
  def_tensor_field(target, "fg_mask", &FitTarget::fg_mask);
  def_tensor_field(target, "valid_bg", &FitTarget::valid_bg);
  def_tensor_field(target, "landmarks", &FitTarget::landmarks);
  def_tensor_field(target, "landmark_mask", &FitTarget::landmark_mask);
  def_tensor_field(target, "iris", &FitTarget::iris);
  def_tensor_field(target, "image", &FitTarget::image);
  def_tensor_field(target, "identity", &FitTarget::identity);

  // --- parameters ---
  py::class_<FitParams> params(m, "FitParams",
                               "Fitted parameters (official names in named()): shape 1 x n_shape, expression, jaw, "
                               "neck (6D), eyes (2 x 6D),\neyelids, rotation (6D), translation (m) per image; focal "
                               "1 x 1 and principal_point 1 x 2 (normalised).");
  params.def_static(
          "initial",
          [](int64_t batch, int64_t n_shape, int64_t n_expr, double focal_init, const py::object& identity) {
            return FitParams::initial(batch, n_shape, n_expr, focal_init, to_tensor(identity));
          },
          py::arg("batch"), py::arg("n_shape"), py::arg("n_expr"), py::arg("focal_init") = 3.90625,
          py::arg("identity") = py::none(),
          "The official neutral start; identity: 1 x n_shape start of the identity (the prior; None: zeros).")
      .def("named", &FitParams::named, "Official name -> tensor (shape, exp, jaw, neck, eyes, eyelids, R, t, fl, pp).")
      .def("clone", &FitParams::clone)
      .def("batch_size", &FitParams::batch_size);
  def_tensor_field(params, "shape", &FitParams::shape);
  def_tensor_field(params, "expression", &FitParams::expression);
  def_tensor_field(params, "jaw", &FitParams::jaw);
  def_tensor_field(params, "neck", &FitParams::neck);
  def_tensor_field(params, "eyes", &FitParams::eyes);
  def_tensor_field(params, "eyelids", &FitParams::eyelids);
  def_tensor_field(params, "rotation", &FitParams::rotation);
  def_tensor_field(params, "translation", &FitParams::translation);
  def_tensor_field(params, "focal", &FitParams::focal);
  def_tensor_field(params, "principal_point", &FitParams::principal_point);

  // --- results ---
  py::class_<FitResult>(m, "FitResult", "The outcome of a fit.")
      .def_readonly("params", &FitResult::params)
      .def_readonly("camera", &FitResult::camera, "The fitted pixel3dmm.render.Camera at the fit resolution.")
      .def_readonly("vertices", &FitResult::vertices, "B x V x 3 world (head pose applied): what the camera sees")
      .def_readonly("vertices_flame", &FitResult::vertices_flame, "B x V x 3 FLAME space, posed, no head R / t")
      .def_readonly("canonical", &FitResult::canonical, "1 x V x 3 template + identity, neutral")
      .def_property_readonly("identity_prior", [](const FitResult& r) { return from_tensor(r.identity_prior); },
                             "1 x n_shape the prior reg/shape pulled toward (None: no prior, i.e. zero)")
      .def_readonly("landmarks2d", &FitResult::landmarks2d, "B x 68 x 2 projected model landmarks (pixels at S)")
      .def_readonly("seconds", &FitResult::seconds)
      .def_readonly("iterations", &FitResult::iterations)
      .def_readonly("fault", &FitResult::fault,
                    "'' or, with config stop_on_numerical_fault, what stopped the fit early (stage, step, what was "
                    "non-finite); params are then the last finite ones.")
      .def_property_readonly(
          "log",
          [](const FitResult& r) {
            py::list l;
            for (const auto& e : r.log) l.append(log_entry_dict(e));
            return l;
          },
          "One dict per step: stage ('camera' / 'full'), step, total, terms (name -> weighted value).")
      .def("__repr__", [](const FitResult& r) {
        return "FitResult(images=" + std::to_string(r.vertices.defined() ? r.vertices.size(0) : 0) +
               ", iterations=" + std::to_string(r.iterations) + ", seconds=" + std::to_string(r.seconds) + ")";
      });

  // --- the fitter ---
  py::class_<Fitter>(m, "Fitter",
                     "Fits FLAME (a pixel3dmm.flame.Flame with 6D rotations, float32) and the camera to targets.\n"
                     "config: a dict with any keys of configs/fit.json (missing keys keep the official defaults).")
      .def(py::init([](const std::shared_ptr<flame::FlameImpl>& flame, const py::object& config) {
             return Fitter(flame::Flame(flame), fit_config_from(config));
           }),
           py::arg("flame"), py::arg("config") = py::none())
      .def_property_readonly("config", [](const Fitter& f) { return from_json(io::json(f.config())); })
      .def("__repr__",
           [](const Fitter& f) {
             const auto& c = f.config();
             return "Fitter(vertices=" + std::to_string(f.flame()->model().n_vertices()) +
                    ", image_size=" + std::to_string(c.image_size) + ", steps=" + std::to_string(c.camera.steps) +
                    "+" + std::to_string(c.iters) + ", n_shape=" + std::to_string(c.n_shape) +
                    ", n_expr=" + std::to_string(c.n_expr) + ", lr_shape=" + std::to_string(c.lr.shape) +
                    ", uv_pixel_gate=" + std::to_string(c.loss.uv_pixel_gate) + "; .config has every setting)";
           })
      .def(
          "fit",
          [](const Fitter& f, const py::object& targets, const py::object& start, const py::object& on_step) {
            const auto t = targets_from(targets);
            const auto cb = fit_callback_from(on_step);
            std::optional<FitParams> s;
            if (!start.is_none()) s = start.cast<FitParams>();
            py::gil_scoped_release release;
            return s ? f.fit_from(t, *s, cb) : f.fit(t, cb);
          },
          py::arg("targets"), py::arg("start") = py::none(), py::arg("on_step") = py::none(),
          "Fits one FitTarget, or a list of them (one person: shared identity). start: FitParams to begin from\n"
          "(default: the official neutral start). on_step(entry: dict) is called after every step; returning\n"
          "False stops the fit.")
      .def(
          "fit_landmarks_only",
          [](const Fitter& f, const py::object& targets) {
            const auto t = targets_from(targets);
            py::gil_scoped_release release;
            return f.fit_landmarks_only(t);
          },
          py::arg("targets"), "The landmark-only baseline with the same schedule (for comparisons).")
      .def(
          "evaluate",
          [](const Fitter& f, const FitParams& p) {
            const auto e = f.evaluate(p);
            py::dict d;
            d["vertices"] = e.vertices;
            d["vertices_noneck_flame"] = e.flame.vertices_noneck;
            d["landmarks"] = e.landmarks;
            d["rotation"] = e.rotation;
            d["vertices_flame"] = e.flame.vertices;
            return d;
          },
          py::arg("params"), "FLAME and the head pose for parameters: world-space vertices and landmarks, FLAME-space vertices and the\n"
          "neck-free FLAME-space mesh whose normals the normal loss compares.")
      .def("camera", &Fitter::camera, py::arg("params"), "The camera of parameters at the fit resolution.");

  // --- outputs ---
  m.def(
      "write_outputs",
      [](const std::string& folder, const Fitter& f, const FitResult& r, const FitTarget& t, int64_t index) {
        py::gil_scoped_release release;
        fit::write_fit_outputs(folder, f, r, t, index);
      },
      py::arg("folder"), py::arg("fitter"), py::arg("result"), py::arg("target"), py::arg("index") = 0,
      "Writes meshes (PLY, OBJ), params (JSON, safetensors), overlay/maps/loss pictures and loss.csv of image "
      "`index`.");
  m.def("overlay_image", &fit::fit_overlay_image, py::arg("fitter"), py::arg("result"), py::arg("target"),
        py::arg("index") = 0, "The overlay picture (1 x 3 x H x W in [0, 1]): input | blend | rendered normals.");
  m.def("maps_image", &fit::fit_maps_image, py::arg("fitter"), py::arg("result"), py::arg("target"),
        py::arg("index") = 0, "Predicted vs rendered UV and normal maps (1 x 3 x H x W in [0, 1]).");

  // --- synthetic ground truth ---
  m.def(
      "random_params",
      [](int64_t batch, int64_t n_shape, int64_t n_expr, uint64_t seed, double shape_std, double expr_std,
         double yaw_deg) {
        synth::RandomParamsOptions o;
        o.shape_std = shape_std;
        o.expr_std = expr_std;
        o.yaw_deg = yaw_deg;
        return synth::random_params(batch, n_shape, n_expr, seed, o);
      },
      py::arg("batch"), py::arg("n_shape"), py::arg("n_expr"), py::arg("seed") = 0, py::arg("shape_std") = 1.0,
      py::arg("expr_std") = 0.8, py::arg("yaw_deg") = 30.0,
      "Random ground-truth parameters of one identity in `batch` images (deterministic in seed).");
  m.def(
      "synthetic_target",
      [](const Fitter& f, const FitParams& truth, int64_t index, int64_t size, double uv_noise, double normal_noise,
         double outlier_fraction, double landmark_noise, uint64_t seed) {
        synth::SyntheticTargetOptions o;
        o.size = size;
        o.uv_noise = uv_noise;
        o.normal_noise = normal_noise;
        o.outlier_fraction = outlier_fraction;
        o.landmark_noise = landmark_noise;
        o.seed = seed;
        const auto st = synth::render_synthetic_target(f, truth, index, o);
        py::dict d;
        d["target"] = st.target;
        d["vertices"] = st.vertices;
        d["vertices_flame"] = st.vertices_flame;
        d["canonical"] = st.canonical;
        return d;
      },
      py::arg("fitter"), py::arg("truth"), py::arg("index") = 0, py::arg("size") = 256, py::arg("uv_noise") = 0.003,
      py::arg("normal_noise") = 0.05, py::arg("outlier_fraction") = 0.1, py::arg("landmark_noise") = 1.0,
      py::arg("seed") = 0,
      "The maps a perfect network would predict for image `index` of `truth`, with noise and outliers:\n"
      "{'target': FitTarget, 'vertices', 'vertices_flame', 'canonical'} (the ground truth).");
}

}  // namespace pixel3dmm::python
