// Bindings of pixel3dmm/identity: MICA (ArcFace IResNet + mapping network), its weights, its input alignment and
// the SCRFD five-keypoint detector.
#include <torch/python.h>

#include "bindings.h"
#include "pixel3dmm/identity/alignment.h"
#include "pixel3dmm/identity/identity_prior.h"
#include "pixel3dmm/identity/mica.h"
#include "pixel3dmm/identity/scrfd.h"

namespace pixel3dmm::python {

namespace {
// Unlike pybind11's std::map caster (whose values must be torch.Tensor), this takes NumPy arrays too, which
// mica_from_state_dict has always accepted.
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
            return identity::mica_state_dict(identity::Mica(mica));
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
  m.def("keypoints_from_landmarks68", &identity::keypoints_from_landmarks68, py::arg("landmarks"),
        "68 x 2 iBUG landmarks -> the five ArcFace keypoints 5 x 2 (eye centres, nose tip 30, mouth corners 48, 54).");
  py::class_<identity::IdentityPrior>(m, "IdentityPrior",
                                      "Where a fit's identity prior comes from: MICA weights (a code per crop), a "
                                      "given code (.npy), or nothing.")
      .def(py::init([](const std::string& mica, const std::string& scrfd, const std::string& code) {
             identity::IdentityPriorOptions o;
             o.mica = mica;
             o.scrfd = scrfd;
             o.code = code;
             return identity::IdentityPrior(o);
           }),
           py::kw_only(), py::arg("mica") = "", py::arg("scrfd") = "", py::arg("code") = "")
      .def_property_readonly("enabled", &identity::IdentityPrior::enabled)
      .def("code", &identity::IdentityPrior::code, py::arg("crop"), py::arg("landmarks"), py::arg("source") = "",
           "crop 1 x 3 x S x S float in [0, 1], landmarks 1 x 68 x 2 crop pixels -> (K,) code, or None without a "
           "prior.")
      .def("describe", &identity::IdentityPrior::describe)
      .def("__repr__", [](const identity::IdentityPrior& p) { return "IdentityPrior(" + p.describe() + ")"; });
  py::class_<identity::ScrfdDetections>(m, "ScrfdDetections",
                                        "Kept SCRFD detections in NMS order, image pixels: boxes N x 4 (x1, y1, x2, "
                                        "y2), scores N, keypoints N x 5 x 2 (float32).")
      .def_readonly("boxes", &identity::ScrfdDetections::boxes)
      .def_readonly("scores", &identity::ScrfdDetections::scores)
      .def_readonly("keypoints", &identity::ScrfdDetections::keypoints)
      .def("__len__", [](const identity::ScrfdDetections& d) { return d.boxes.defined() ? d.boxes.size(0) : 0; });
  py::class_<identity::ScrfdDetector>(m, "ScrfdDetector",
                                      "insightface's SCRFD-10G (scrfd_10g_bnkps.onnx) run by OpenCV's DNN module.")
      .def(py::init<const std::string&>(), py::arg("onnx_path"))
      .def("detect", &identity::ScrfdDetector::detect, py::arg("image_rgb"), py::arg("threshold") = 0.5f,
           py::arg("nms_threshold") = 0.4f, "H x W x 3 uint8 RGB -> ScrfdDetections (official 6.2).")
      .def("forward", &identity::ScrfdDetector::forward, py::arg("blob"),
           "1 x 3 x S x S float32 blob -> the nine raw outputs in the file's order.")
      .def_property_readonly("input_size", &identity::ScrfdDetector::input_size)
      .def_property_readonly("path", &identity::ScrfdDetector::path);
  m.def(
      "scrfd_input",
      [](const torch::Tensor& image_rgb, int64_t input_size) {
        const auto in = identity::scrfd_input(image_rgb, input_size);
        return py::make_tuple(in.blob, in.det_scale);
      },
      py::arg("image_rgb"), py::arg("input_size") = 224,
      "H x W x 3 uint8 RGB -> (1 x 3 x S x S float32 blob, det_scale), as RetinaFace.detect builds them.");
  m.def("decode_scrfd", &identity::decode_scrfd, py::arg("outputs"), py::arg("input_size"), py::arg("det_scale"),
        py::arg("threshold") = 0.5f, py::arg("nms_threshold") = 0.4f,
        "The nine raw outputs -> ScrfdDetections (anchor decode, threshold, / det_scale, NMS; float32).");
  m.def(
      "centre_face",
      [](const identity::ScrfdDetections& d, int64_t height, int64_t width) {
        return identity::centre_face(d, height, width);
      },
      py::arg("detections"), py::arg("height"), py::arg("width"),
      "Index of the detection nearest the image centre (MICA's get_center), -1 when none.");
  m.def(
      "detect_five_keypoints",
      [](identity::ScrfdDetector& detector, const torch::Tensor& image_rgb) -> py::object {
        const auto k = identity::detect_five_keypoints(detector, image_rgb);
        if (!k.defined()) return py::none();
        return py::cast(k);
      },
      py::arg("detector"), py::arg("image_rgb"), "5 x 2 float32 keypoints of the centre face, or None (no face).");
}

}  // namespace pixel3dmm::python
