// Bindings of the official preprocessing's networks in pixel3dmm/preprocess (FaceBoxesV2).
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"
#include "pixel3dmm/preprocess/faceboxes.h"
#include "pixel3dmm/preprocess/official_crop.h"

namespace pixel3dmm::python {

namespace {
using preprocess::FaceBox;

py::list boxes_list(const std::vector<FaceBox>& boxes) {
  py::list out;
  for (const auto& b : boxes) {
    py::dict d;
    d["score"] = b.score;
    d["x"] = b.x;
    d["y"] = b.y;
    d["width"] = b.width;
    d["height"] = b.height;
    out.append(d);
  }
  return out;
}
/// A dict (score, x, y, width, height) as detect() returns, or a tuple (score, x, y, width, height).
FaceBox box_from(const py::handle& obj) {
  FaceBox b;
  if (py::isinstance<py::dict>(obj)) {
    const auto d = obj.cast<py::dict>();
    b.score = d.contains("score") ? d["score"].cast<float>() : 1.0f;
    b.x = d["x"].cast<int64_t>();
    b.y = d["y"].cast<int64_t>();
    b.width = d["width"].cast<int64_t>();
    b.height = d["height"].cast<int64_t>();
    return b;
  }
  const auto t = obj.cast<py::sequence>();
  PIXEL3DMM_CHECK(t.size() == 5, "a face box is (score, x, y, width, height), found ", t.size(), " values");
  b.score = t[0].cast<float>();
  b.x = t[1].cast<int64_t>();
  b.y = t[2].cast<int64_t>();
  b.width = t[3].cast<int64_t>();
  b.height = t[4].cast<int64_t>();
  return b;
}

std::vector<FaceBox> boxes_from(const py::iterable& seq) {
  std::vector<FaceBox> out;
  for (const auto& item : seq) out.push_back(box_from(item));
  return out;
}

py::dict crop_dict(const preprocess::OfficialCrop& c) {
  py::dict d;
  d["mean_box"] = py::make_tuple(c.mean_box.x, c.mean_box.y, c.mean_box.width, c.mean_box.height);
  d["union_box"] = py::make_tuple(c.union_box.x, c.union_box.y, c.union_box.width, c.union_box.height);
  d["used_union"] = c.used_union;
  d["scale"] = c.scale;
  d["ymin_ymax_xmin_xmax"] = py::make_tuple(c.ymin, c.ymax, c.xmin, c.xmax);
  return d;
}

preprocess::OfficialCrop crop_from(const py::sequence& ymin_ymax_xmin_xmax) {
  PIXEL3DMM_CHECK(ymin_ymax_xmin_xmax.size() == 4, "a crop is (ymin, ymax, xmin, xmax)");
  preprocess::OfficialCrop c;
  c.ymin = ymin_ymax_xmin_xmax[0].cast<int64_t>();
  c.ymax = ymin_ymax_xmin_xmax[1].cast<int64_t>();
  c.xmin = ymin_ymax_xmin_xmax[2].cast<int64_t>();
  c.xmax = ymin_ymax_xmin_xmax[3].cast<int64_t>();
  return c;
}
}  // namespace

void bind_preprocess_official(py::module_& m) {
  py::class_<preprocess::FaceBoxesDetector>(m, "FaceBoxesDetector",
                                            "FaceBoxesV2 (official weights converted by pixel3dmm.convert_preprocessing) "
                                            "+ the official decoding, 0.6 threshold and NMS.")
      .def(py::init<const std::string&>(), py::arg("weights"))
      .def(
          "detect",
          [](const preprocess::FaceBoxesDetector& d, const torch::Tensor& bgr, double threshold) {
            return boxes_list(d.detect(bgr, threshold));
          },
          py::arg("bgr"), py::arg("threshold") = 0.6,
          "bgr: H x W x 3 uint8 (OpenCV order) -> list of dicts score, x, y, width, height, highest score first.")
      .def(
          "forward",
          [](const preprocess::FaceBoxesDetector& d, const torch::Tensor& input) {
            torch::NoGradGuard no_grad;
            preprocess::FaceBoxesV2 net = d.net();
            return net->forward(input);
          },
          py::arg("input"), "1 x 3 x H x W float32 (faceboxes_input) -> (loc 1 x A x 4, conf A x 2).")
      .def_property_readonly("source", &preprocess::FaceBoxesDetector::source);
  m.def("faceboxes_input", &preprocess::faceboxes_input, py::arg("bgr"),
        "H x W x 3 uint8 BGR -> 1 x 3 x H x W float32, minus (104, 117, 123) in int32.");
  m.def("faceboxes_priors", &preprocess::faceboxes_priors, py::arg("height"), py::arg("width"),
        "A x 4 float32 anchors (cx, cy, w, h) as fractions of the image.");
  m.def("faceboxes_decode", &preprocess::faceboxes_decode, py::arg("loc"), py::arg("priors"), py::arg("height"),
        py::arg("width"), "loc (1 x) A x 4, priors A x 4 -> A x 4 float32 (x1, y1, x2, y2) pixels.");
  m.def("faceboxes_nms", &preprocess::faceboxes_nms, py::arg("dets"), py::arg("thresh") = 0.3,
        "dets N x 5 float32 -> kept rows, as the official compiled cpu_nms.");
  m.def(
      "faceboxes_detections",
      [](const torch::Tensor& loc, const torch::Tensor& conf, int64_t height, int64_t width, double threshold) {
        return boxes_list(preprocess::faceboxes_detections(loc, conf, height, width, threshold));
      },
      py::arg("loc"), py::arg("conf"), py::arg("height"), py::arg("width"), py::arg("threshold") = 0.6,
      "Raw network outputs -> detections (dicts score, x, y, width, height), highest score first.");
  m.def(
      "numpy_argsort",
      [](const torch::Tensor& values) {
        const auto v = values.contiguous();
        PIXEL3DMM_CHECK(v.dim() == 1, "numpy_argsort: expected a 1-D tensor");
        if (v.scalar_type() == torch::kFloat64) return preprocess::detail::numpy_argsort(v.data_ptr<double>(), v.size(0));
        const auto f = v.to(torch::kFloat32);
        return preprocess::detail::numpy_argsort(f.data_ptr<float>(), f.size(0));
      },
      py::arg("values"), "NumPy 1.2x's default argsort (its order among ties), for tests.");

  m.def(
      "official_crop",
      [](const py::iterable& best, int64_t height, int64_t width) {
        return crop_dict(preprocess::official_crop(boxes_from(best), height, width));
      },
      py::arg("best"), py::arg("height"), py::arg("width"),
      "Each frame's best detection (dicts as detect() returns, or (score, x, y, width, height)) -> the official "
      "static crop: dict mean_box, union_box, used_union, scale, ymin_ymax_xmin_xmax.");
  m.def(
      "official_crop_from_boxes",
      [](const py::sequence& mean, const py::sequence& uni, int64_t height, int64_t width) {
        auto as_box = [](const py::sequence& s) {
          PIXEL3DMM_CHECK(s.size() == 4, "a box is (x, y, width, height)");
          FaceBox b;
          b.x = s[0].cast<int64_t>();
          b.y = s[1].cast<int64_t>();
          b.width = s[2].cast<int64_t>();
          b.height = s[3].cast<int64_t>();
          return b;
        };
        return crop_dict(preprocess::official_crop_from_boxes(as_box(mean), as_box(uni), height, width));
      },
      py::arg("mean_box"), py::arg("union_box"), py::arg("height"), py::arg("width"),
      "get_cstm_crop on a (mean, union) box pair, each (x, y, width, height) -> dict as official_crop.");
  m.def(
      "official_crop_region",
      [](const torch::Tensor& image, const py::sequence& crop) {
        return preprocess::official_crop_region(image, crop_from(crop));
      },
      py::arg("image"), py::arg("ymin_ymax_xmin_xmax"),
      "image[ymin:ymax, xmin:xmax] with numpy slice semantics: H x W x C uint8 -> h x w x C uint8.");
  m.def(
      "official_crop_image",
      [](const torch::Tensor& image, const py::sequence& crop, int64_t size) {
        return preprocess::official_crop_image(image, crop_from(crop), size);
      },
      py::arg("image"), py::arg("ymin_ymax_xmin_xmax"), py::arg("size") = 512,
      "The region resized by cv::resize INTER_LINEAR: H x W x C uint8 -> size x size x C uint8.");
  m.def(
      "pipnet_face_box",
      [](const py::iterable& detections, int64_t height, int64_t width) -> py::object {
        const auto b = preprocess::pipnet_face_box(boxes_from(detections), height, width);
        if (!b) return py::none();
        return py::make_tuple(b->x, b->y, b->xmax, b->ymax);
      },
      py::arg("detections"), py::arg("height"), py::arg("width"),
      "Detections on a crop, highest score first -> PIPNet's box (x, y, xmax, ymax), or None below score 0.99.");
}

}  // namespace pixel3dmm::python
