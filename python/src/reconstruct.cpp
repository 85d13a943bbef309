// Bindings of pixel3dmm/reconstruct: the photo -> mesh Reconstructor and the fit-inputs folders.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/reconstruct/fit_inputs.h"
#include "pixel3dmm/reconstruct/reconstructor.h"

namespace pixel3dmm::python {

void bind_reconstruct(py::module_& m) {
  using reconstruct::Reconstruction;
  using reconstruct::Reconstructor;

  py::class_<Reconstruction>(m, "Reconstruction",
                             "One photo's reconstruction: input (preprocess.Preprocessed), predictions "
                             "(predict.Predictions), target (fit.FitTarget), result (fit.FitResult; for an image "
                             "set the joint fit, this photo being row `index`).")
      .def_readonly("input", &Reconstruction::input)
      .def_readonly("predictions", &Reconstruction::predictions)
      .def_readonly("target", &Reconstruction::target)
      .def_readonly("result", &Reconstruction::result)
      .def_readonly("index", &Reconstruction::index)
      .def("__repr__", [](const Reconstruction& r) {
        return "Reconstruction(source='" + r.input.source + "', index=" + std::to_string(r.index) +
               ", iterations=" + std::to_string(r.result.iterations) + ")";
      });

  py::class_<Reconstructor>(
      m, "Reconstructor",
      "Photo -> mesh: preprocess (dlib face, landmarks, crop, masks) -> predict (UV and normal maps) -> fit (FLAME\n"
      "and camera). Loads FLAME, both networks and the face detector once.\n"
      "flame: FLAME file (None = the synthetic FLAME-layout model); uv_weights / normal_weights: converted\n"
      "networks (.safetensors, .json beside); preprocess: preprocess.PreprocessOptions or a dict of its fields\n"
      "(None = defaults), e.g. dict(faceboxes=..., pipnet=..., face_parser=..., retinaface=...): the official\n"
      "preprocessing files, as the CLI's --faceboxes / --pipnet / --face-parser / --retinaface;\n"
      "config: fit settings as a dict of configs/fit.json keys (None = official defaults);\n"
      "mica: converted MICA weights (each crop's code is the identity prior, as the official fit; scrfd: the\n"
      "SCRFD-10G .onnx for its keypoints, else from the landmarks) or identity: an\n"
      "identity .npy to use as the prior (None: no prior).")
      .def(py::init([](const py::object& flame, const std::string& uv_weights, const std::string& normal_weights,
                       const py::object& preprocess, const py::object& config, const py::object& mica,
                       const py::object& scrfd, const py::object& identity) {
             reconstruct::ReconstructorOptions o;
             if (!flame.is_none()) o.flame = py::str(flame).cast<std::string>();
             o.uv_weights = uv_weights;
             o.normal_weights = normal_weights;
             o.preprocess = preprocess_options_from(preprocess);
             o.fit = fit_config_from(config);
             if (!mica.is_none()) o.identity.mica = py::str(mica).cast<std::string>();
             if (!scrfd.is_none()) o.identity.scrfd = py::str(scrfd).cast<std::string>();
             if (!identity.is_none()) o.identity.code = py::str(identity).cast<std::string>();
             py::gil_scoped_release release;
             return Reconstructor(std::move(o));
           }),
           py::arg("flame") = py::none(), py::kw_only(), py::arg("uv_weights"), py::arg("normal_weights"),
           py::arg("preprocess") = py::none(), py::arg("config") = py::none(), py::arg("mica") = py::none(),
           py::arg("scrfd") = py::none(), py::arg("identity") = py::none())
      .def(
          "reconstruct",
          [](const Reconstructor& r, const py::object& image, const py::object& on_step) {
            const auto cb = fit_callback_from(on_step);
            if (py::isinstance<py::str>(image) || py::hasattr(image, "__fspath__")) {
              const std::string path = py::str(image).cast<std::string>();
              py::gil_scoped_release release;
              return r.reconstruct(path, cb);
            }
            const torch::Tensor t = to_tensor(image);
            py::gil_scoped_release release;
            return r.reconstruct(t, "image", cb);
          },
          py::arg("image"), py::arg("on_step") = py::none(),
          "The largest face of a photo: a path, or an image tensor / NumPy array (H x W [x C], C x H x W or\n"
          "1 x C x H x W; uint8 or float in [0, 1]). Raises ValueError 'no face found in ...' when there is none.")
      .def(
          "reconstruct_all",
          [](const Reconstructor& r, const py::object& path, const py::object& on_step) {
            const auto cb = fit_callback_from(on_step);
            const std::string p = py::str(path).cast<std::string>();
            py::gil_scoped_release release;
            return r.reconstruct_all(p, cb);
          },
          py::arg("path"), py::arg("on_step") = py::none(),
          "Every face of a photo file, largest first, each fitted on its own -> list (empty: no face).")
      .def(
          "reconstruct_set",
          [](const Reconstructor& r, const std::vector<std::string>& paths, const py::object& on_step) {
            const auto cb = fit_callback_from(on_step);
            py::gil_scoped_release release;
            return r.reconstruct_set(paths, cb);
          },
          py::arg("paths"), py::arg("on_step") = py::none(),
          "Several photos of one person: one identity, per-photo expression and pose -> a list of Reconstruction.")
      .def("preprocess", &Reconstructor::preprocess, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
           "Only the preprocessing of a photo file -> preprocess.Preprocessed.")
      .def("predict", &Reconstructor::predict, py::arg("input"), py::call_guard<py::gil_scoped_release>(),
           "Only the predictions for a preprocessed photo -> predict.Predictions (1 x 2 / 3 x 512 x 512).")
      .def(
          "write",
          [](const Reconstructor& r, const py::object& folder, const Reconstruction& rec) {
            const std::string f = py::str(folder).cast<std::string>();
            py::gil_scoped_release release;
            r.write(f, rec);
          },
          py::arg("folder"), py::arg("reconstruction"),
          "Writes meshes, parameters, pictures, the fit inputs and report.json into folder.")
      .def_property_readonly("fitter", &Reconstructor::fitter, py::return_value_policy::reference_internal)
      .def_property_readonly("identity_prior", &Reconstructor::identity_prior,
                             py::return_value_policy::reference_internal)
      .def_property_readonly("config", [](const Reconstructor& r) { return from_json(io::json(r.options().fit)); })
      .def("__repr__", [](const Reconstructor& r) {
        const auto& o = r.options();
        return "Reconstructor(flame='" + (o.flame.empty() ? std::string("<synthetic>") : o.flame) +
               "', uv_weights='" + o.uv_weights + "', normal_weights='" + o.normal_weights + "', masks='" +
               o.preprocess.mask_method + "', image_size=" + std::to_string(o.fit.image_size) +
               ", iters=" + std::to_string(o.fit.camera.steps) + "+" + std::to_string(o.fit.iters) + ")";
      });

  m.def("make_target", &reconstruct::make_target, py::arg("input"), py::arg("predictions"),
        "preprocess.Preprocessed + predict.Predictions -> fit.FitTarget (masks resized to the maps).");
  m.def(
      "write_fit_inputs",
      [](const py::object& folder, const preprocess::Preprocessed& in, const predict::Predictions& p) {
        reconstruct::write_fit_inputs(py::str(folder).cast<std::string>(), in, p);
      },
      py::arg("folder"), py::arg("input"), py::arg("predictions"),
      "Writes a fit-inputs folder (what `pixel3dmm predict` writes; see docs/reconstruction.md).");
  m.def(
      "read_fit_inputs",
      [](const py::object& folder) {
        const auto r = reconstruct::read_fit_inputs(py::str(folder).cast<std::string>());
        return py::make_tuple(r.input, r.predictions);
      },
      py::arg("folder"), "Reads a fit-inputs folder -> (preprocess.Preprocessed, predict.Predictions).");
}

}  // namespace pixel3dmm::python
