// Bindings of pixel3dmm/identity: MICA (ArcFace IResNet + mapping network), its weights and its input alignment.
#include <torch/python.h>

#include "bindings.h"
#include "pixel3dmm/identity/alignment.h"
#include "pixel3dmm/identity/mica.h"

namespace pixel3dmm::python {

namespace {
py::dict tensor_dict(const identity::TensorMap& m) {
  py::dict d;
  for (const auto& [k, v] : m) d[py::str(k)] = v;
  return d;
}

identity::TensorMap tensor_map(const py::dict& d) {
  identity::TensorMap m;
  for (const auto& item : d)
    m[item.first.cast<std::string>()] = to_tensor(py::reinterpret_borrow<py::object>(item.second));
  return m;
}
}  // namespace

void bind_identity(py::module_& m) {
  torch::python::bind_module<identity::MicaImpl>(m, "Mica")
      .def(py::init([](std::vector<int64_t> layers) {
             identity::MicaOptions options;
             options.arcface().layers(layers);
             return std::make_shared<identity::MicaImpl>(options);
           }),
           py::arg("layers") = std::vector<int64_t>{3, 13, 30, 3},
           "A randomly initialised MICA network; `layers` = IResNet blocks per stage (MICA: [3, 13, 30, 3]).")
      .def("identity_features", &identity::MicaImpl::identity_features, py::arg("blob"),
           "B x 3 x 112 x 112 blob -> B x 512 L2-normalised ArcFace features.")
      .def(
          "arcface_features",
          [](identity::MicaImpl& mica, const torch::Tensor& blob) { return mica.arcface->forward(blob); },
          py::arg("blob"), "B x 3 x 112 x 112 blob -> B x 512 raw ArcFace features (before normalisation).")
      .def(
          "official_state_dict",
          [](const std::shared_ptr<identity::MicaImpl>& mica) {
            return tensor_dict(identity::mica_state_dict(identity::Mica(mica)));
          },
          "Parameters and buffers under the official names ('arcface.*', 'regressor.*').")
      .def_property_readonly("layers", [](const identity::MicaImpl& mica) { return mica.options.arcface().layers(); });
  m.def(
      "mica_from_state_dict",
      [](const py::dict& tensors, const std::string& source) {
        const auto map = tensor_map(tensors);
        identity::Mica mica(identity::mica_options_from(map, source));
        identity::load_mica_state_dict(mica, map, source);
        mica->eval();
        return mica.ptr();
      },
      py::arg("tensors"), py::arg("source") = "<state dict>",
      "Builds MICA from official names (architecture read from the names and shapes), strictly; eval mode.");
  m.def(
      "load_mica", [](const std::string& path) { return identity::load_mica(path).ptr(); }, py::arg("path"),
      "Reads a converted mica.safetensors (python -m pixel3dmm.convert_mica); eval mode.");
  m.def(
      "save_mica",
      [](const std::shared_ptr<identity::MicaImpl>& mica, const std::string& path) {
        identity::save_mica(identity::Mica(mica), path);
      },
      py::arg("mica"), py::arg("path"), "Writes the weights under their official names, atomically.");
  m.def("identity_frames", &identity::identity_frames, py::arg("n"),
        "The official MICA frame choice out of n sorted frames: every max(1, n // 10)-th from the first.");
  m.def(
      "identity_code",
      [](const std::shared_ptr<identity::MicaImpl>& mica, const torch::Tensor& image_rgb, const py::object& keypoints) {
        identity::Mica m(mica);
        return identity::identity_code(m, image_rgb, to_tensor(keypoints));
      },
      py::arg("mica"), py::arg("image_rgb"), py::arg("keypoints") = py::none(),
      "H x W x 3 uint8 RGB image + 5 x 2 keypoints (or an aligned 112 x 112 crop and None) -> (300,) code.");
  m.def("arcface_template", &identity::arcface_template, "The ArcFace 112 x 112 five-point template, 5 x 2 float32.");
  m.def("arcface_similarity", &identity::arcface_similarity, py::arg("keypoints"),
        "Five keypoints 5 x 2 -> the 2 x 3 float64 similarity onto the ArcFace template (scikit-image's Umeyama "
        "in float32, as insightface's estimate_norm).");
  m.def("warp_arcface_crop", &identity::warp_arcface_crop, py::arg("image"), py::arg("M"), py::arg("size") = 112,
        "cv2.warpAffine(image, M, (size, size)): H x W x 3 uint8 -> size x size x 3 uint8.");
  m.def("arcface_blob", &identity::arcface_blob, py::arg("crop_rgb"),
        "H x W x 3 uint8 RGB -> 3 x H x W float32 (pixel - 127.5) / 127.5, MICA's network input.");
  m.def("arcface_input", &identity::arcface_input, py::arg("image_rgb"), py::arg("keypoints"),
        "H x W x 3 uint8 RGB image and 5 x 2 keypoints -> 3 x 112 x 112 float32 blob.");
}

}  // namespace pixel3dmm::python
