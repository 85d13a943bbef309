// Bindings of facer's RetinaFace mobilenet0.25 (pixel3dmm/preprocess/retinaface.h).
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/preprocess/retinaface.h"

namespace pixel3dmm::python {

namespace {
/// Faces as facer's batch_detect returns them for one image: rects N x 4, points N x 5 x 2, scores N (float32).
py::dict faces_dict(const std::vector<preprocess::RetinaFaceDetection>& faces) {
  std::vector<torch::Tensor> rects, points;
  std::vector<float> scores;
  for (const auto& f : faces) {
    rects.push_back(f.box);
    points.push_back(f.points);
    scores.push_back(f.score);
  }
  py::dict d;
  d["rects"] = rects.empty() ? torch::zeros({0, 4}) : torch::stack(rects);
  d["points"] = points.empty() ? torch::zeros({0, 5, 2}) : torch::stack(points);
  d["scores"] = torch::tensor(scores, torch::kFloat32);
  return d;
}

preprocess::RetinaFaceOptions options_from(double threshold, double nms_threshold) {
  preprocess::RetinaFaceOptions o;
  o.score_threshold = threshold;
  o.nms_threshold = nms_threshold;
  return o;
}
}  // namespace

void bind_preprocess_retinaface(py::module_& m) {
  py::class_<preprocess::RetinaFaceDetector>(
      m, "RetinaFaceDetector",
      "facer's retinaface/mobilenet (mobilenet0.25_Final.pth converted by pixel3dmm.convert_preprocessing) + its "
      "decoding, 0.8 threshold and NMS.")
      .def(py::init([](const std::string& weights, double threshold, double nms_threshold) {
             return preprocess::RetinaFaceDetector(weights, options_from(threshold, nms_threshold));
           }),
           py::arg("weights"), py::arg("threshold") = 0.8, py::arg("nms_threshold") = 0.4)
      .def(
          "detect",
          [](const preprocess::RetinaFaceDetector& d, const torch::Tensor& image) {
            return faces_dict(d.detect(image));
          },
          py::arg("image"),
          "image: 1 x 3 x H x W RGB uint8 (as facer gets it) -> dict rects N x 4, points N x 5 x 2, scores N, "
          "highest score first.")
      .def(
          "forward",
          [](const preprocess::RetinaFaceDetector& d, const torch::Tensor& image) {
            const auto out = d.raw(image);
            return py::make_tuple(out.loc, out.conf, out.landmarks);
          },
          py::arg("image"),
          "image: 1 x 3 x H x W RGB uint8 -> (loc 1 x A x 4, conf 1 x A x 2 softmax, landmarks 1 x A x 10).")
      .def_property_readonly("source", &preprocess::RetinaFaceDetector::source);
  m.def("retinaface_input", &preprocess::retinaface_input, py::arg("image"),
        "N x 3 x H x W uint8 RGB -> float32 minus (104, 117, 123) per channel in the given order (facer's quirk).");
  m.def("retinaface_anchors", &preprocess::retinaface_anchors, py::arg("height"), py::arg("width"),
        "A x 4 float32 anchors (cx, cy, w, h) as fractions of the image.");
  m.def("retinaface_nms", &preprocess::retinaface_nms, py::arg("dets"), py::arg("threshold") = 0.4,
        "dets K x 5 float32 -> kept rows, as facer's torch nms.");
  m.def(
      "retinaface_detections",
      [](const torch::Tensor& loc, const torch::Tensor& conf, const torch::Tensor& landmarks, int64_t height,
         int64_t width, double threshold, double nms_threshold) {
        return faces_dict(preprocess::decode_retinaface(loc, conf, landmarks, height, width,
                                                        options_from(threshold, nms_threshold)));
      },
      py::arg("loc"), py::arg("conf"), py::arg("landmarks"), py::arg("height"), py::arg("width"),
      py::arg("threshold") = 0.8, py::arg("nms_threshold") = 0.4,
      "Raw outputs of one image (loc A x 4, conf A x 2, landmarks A x 10) -> dict rects, points, scores.");
}

}  // namespace pixel3dmm::python
