// Bindings of the official preprocessing's networks in pixel3dmm/preprocess (FaceBoxesV2, PIPNet).
#include <pybind11/stl.h>

#include "bindings.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"
#include "pixel3dmm/preprocess/faceboxes.h"
#include "pixel3dmm/preprocess/jpeg_round_trip.h"
#include "pixel3dmm/preprocess/official_crop.h"
#include "pixel3dmm/preprocess/pipnet.h"
#include "pixel3dmm/preprocess/preprocess.h"

namespace pixel3dmm::python {

namespace {
using preprocess::FaceBox;
using preprocess::Preprocessed;

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

preprocess::PipnetBox pipnet_box_from(const py::sequence& s) {
  PIXEL3DMM_CHECK(s.size() == 4, "PIPNet's box is (x, y, xmax, ymax)");
  preprocess::PipnetBox b;
  b.x = s[0].cast<int64_t>();
  b.y = s[1].cast<int64_t>();
  b.xmax = s[2].cast<int64_t>();
  b.ymax = s[3].cast<int64_t>();
  return b;
}

py::tuple heads_tuple(const preprocess::PipNetHeads& h) { return py::make_tuple(h.cls, h.x, h.y, h.nb_x, h.nb_y); }

preprocess::PipNetHeads heads_from(const py::sequence& s) {
  PIXEL3DMM_CHECK(s.size() == 5, "PIPNet's heads are (cls, x, y, nb_x, nb_y)");
  return {s[0].cast<torch::Tensor>(), s[1].cast<torch::Tensor>(), s[2].cast<torch::Tensor>(),
          s[3].cast<torch::Tensor>(), s[4].cast<torch::Tensor>()};
}

py::dict neighbours_dict(const preprocess::PipNetNeighbours& n) {
  py::dict d;
  d["mean_face"] = n.mean_face;
  d["neighbours"] = n.neighbours;
  d["reverse_landmark"] = n.reverse_landmark;
  d["reverse_neighbour"] = n.reverse_neighbour;
  d["max_len"] = n.max_len;
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

/// (ymin, ymax, xmin, xmax), or the dict official_crop returns (its ymin_ymax_xmin_xmax).
preprocess::OfficialCrop crop_from_object(const py::object& crop) {
  if (py::isinstance<py::dict>(crop)) {
    const auto d = crop.cast<py::dict>();
    PIXEL3DMM_CHECK(d.contains("ymin_ymax_xmin_xmax"),
                    "a crop is (ymin, ymax, xmin, xmax) or the dict official_crop returns (key ymin_ymax_xmin_xmax)");
    return crop_from(d["ymin_ymax_xmin_xmax"].cast<py::sequence>());
  }
  return crop_from(crop.cast<py::sequence>());
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
  m.def("jpeg_round_trip", &preprocess::jpeg_round_trip, py::arg("image"), py::arg("quality") = 95,
        "H x W x 3 uint8 -> the same written as JPEG (OpenCV, libjpeg-turbo) and read back: the official "
        "pipeline's rgb/ and cropped/ files in memory.");
  m.def(
      "pipnet_face_box",
      [](const py::iterable& detections, int64_t height, int64_t width) -> py::object {
        const auto b = preprocess::pipnet_face_box(boxes_from(detections), height, width);
        if (!b) return py::none();
        return py::make_tuple(b->x, b->y, b->xmax, b->ymax);
      },
      py::arg("detections"), py::arg("height"), py::arg("width"),
      "Detections on a crop, highest score first -> PIPNet's box (x, y, xmax, ymax), or None below score 0.99.");

  py::class_<preprocess::PipNetDetector>(m, "PipNetDetector",
                                         "PIPNet ResNet-18 (official epoch59.pth converted by "
                                         "pixel3dmm.convert_preprocessing pipnet) + the official decoding and merge.")
      .def(py::init<const std::string&>(), py::arg("weights"))
      .def(
          "landmarks",
          [](const preprocess::PipNetDetector& d, const torch::Tensor& bgr, const py::sequence& box) {
            return d.landmarks(bgr, pipnet_box_from(box));
          },
          py::arg("bgr"), py::arg("box"),
          "bgr: the 512 crop, H x W x 3 uint8; box (x, y, xmax, ymax) from pipnet_face_box -> 98 x 2 float64 "
          "fractions of the crop (the official export).")
      .def(
          "forward", [](const preprocess::PipNetDetector& d, const torch::Tensor& input) {
            return heads_tuple(d.forward(input));
          },
          py::arg("input"), "1 x 3 x 256 x 256 float32 (pipnet_input) -> (cls, x, y, nb_x, nb_y).")
      .def_property_readonly("neighbours", [](const preprocess::PipNetDetector& d) {
        return neighbours_dict(d.neighbours());
      })
      .def_property_readonly("source", &preprocess::PipNetDetector::source);
  m.def(
      "pipnet_neighbours",
      [](const torch::Tensor& mean_face, int64_t n) { return neighbours_dict(preprocess::pipnet_neighbours(mean_face, n)); },
      py::arg("mean_face"), py::arg("num_neighbours") = 10,
      "L x 2 mean face -> dict mean_face, neighbours (L x N), reverse_landmark, reverse_neighbour (L x max_len), "
      "max_len.");
  m.def(
      "pipnet_input",
      [](const torch::Tensor& bgr, const py::sequence& box, int64_t size) {
        return preprocess::pipnet_input(bgr, pipnet_box_from(box), size);
      },
      py::arg("bgr"), py::arg("box"), py::arg("input_size") = 256,
      "The official network input: red rectangle drawn, box region, INTER_LINEAR resize, RGB, ImageNet "
      "normalisation -> 1 x 3 x S x S float32.");
  m.def(
      "pipnet_decode",
      [](const py::sequence& heads, const torch::Tensor& mean_face, int64_t size) {
        const auto h = heads_from(heads);
        const int64_t L = h.cls.size(1);
        return preprocess::pipnet_decode(h, preprocess::pipnet_neighbours(mean_face, h.nb_x.size(1) / L), size);
      },
      py::arg("heads"), py::arg("mean_face"), py::arg("input_size") = 256,
      "(cls, x, y, nb_x, nb_y) of batch 1, the mean face -> L x 2 float32 merged landmarks (fractions of the input).");
  m.def(
      "pipnet_export",
      [](const torch::Tensor& merged, const py::sequence& box, int64_t height, int64_t width) {
        return preprocess::pipnet_export(merged, pipnet_box_from(box), height, width);
      },
      py::arg("merged"), py::arg("box"), py::arg("height"), py::arg("width"),
      "L x 2 float32 merged landmarks, PIPNet's box on a height x width crop -> L x 2 float64 fractions of the crop.");
  m.def("wflw_to_ibug68", &preprocess::wflw_to_ibug68, "The 68 WFLW indices the official tracker takes, iBUG order.");
  m.def(
      "wflw_landmarks_and_pupils",
      [](const torch::Tensor& wflw) {
        const auto [lm, pupils] = preprocess::wflw_landmarks_and_pupils(wflw);
        return py::make_tuple(lm, pupils);
      },
      py::arg("wflw"), "[P x] 98 x 2 WFLW points -> (68 iBUG landmarks, pupils WFLW 96 and 97).");

  // The official crop's steps on the Preprocessor (bound in preprocess.cpp), for sequences and step-by-step use.
  using preprocess::Preprocessor;
  auto cls = py::reinterpret_borrow<py::class_<Preprocessor>>(m.attr("Preprocessor"));
  cls.def(
         "official_photo",
         [](const Preprocessor& p, const py::object& image, const std::string& source) {
           const torch::Tensor t = to_tensor(image);
           py::gil_scoped_release release;
           return p.official_photo(t, source);
         },
         py::arg("image"), py::arg("source") = "",
         "Stage 0: the image as the official pipeline reads its rgb/ file (8-bit; through quality-95 JPEG when "
         "options.official_jpeg) -> 1 x 3 x H x W float32. The steps below take this photo; run it once per photo.")
      .def(
          "face_boxes",
          [](const Preprocessor& p, const torch::Tensor& photo) {
            std::vector<FaceBox> boxes;
            {
              py::gil_scoped_release release;
              boxes = p.face_boxes(photo);
            }
            return boxes_list(boxes);
          },
          py::arg("photo"),
          "FaceBoxesV2 on the photo from official_photo -> list of dicts score, x, y, width, height, best first.")
      .def(
          "official_crop_of",
          [](const Preprocessor& p, const torch::Tensor& photo, const py::object& crop, const py::handle& face,
             const std::string& source) {
            const auto c = crop_from_object(crop);
            const FaceBox b = box_from(face);
            py::gil_scoped_release release;
            return p.official_crop_of(photo, c, b, source);
          },
          py::arg("photo"), py::arg("crop"), py::arg("face_box"), py::arg("source") = "",
          "The photo cut by crop ((ymin, ymax, xmin, xmax) or the dict official_crop returns) and resized to "
          "crop_size; face_box: this photo's detection from face_boxes (kept as box and score) -> Preprocessed with "
          "crop, affine, crop_box, box and score set (no landmarks, no masks).")
      .def(
          "official_landmarks",
          [](const Preprocessor& p, Preprocessed& face, const torch::Tensor& photo) {
            py::gil_scoped_release release;
            return p.official_landmarks(face, photo);
          },
          py::arg("face"), py::arg("photo"),
          "Sets face's landmarks and iris (PIPNet after the second FaceBoxes pass, or dlib); False, and nothing set, "
          "when no face passes (the official tracker then has no landmarks for the frame).")
      .def(
          "attach_masks",
          [](const Preprocessor& p, Preprocessed& face, const std::string& segmentation) {
            py::gil_scoped_release release;
            p.attach_masks(face, segmentation);
          },
          py::arg("face"), py::arg("segmentation") = "",
          "Sets face's four masks by the options' mask method (face needs crop and landmarks).")
      .def(
          "files_official_sequence",
          [](const Preprocessor& p, const std::vector<std::string>& paths) {
            py::gil_scoped_release release;
            return p.files_official_sequence(paths);
          },
          py::arg("paths"),
          "Photos of one person: one static official crop for all (when they share a size), as "
          "reconstruct --joint --faceboxes -> list of Preprocessed.");
}

}  // namespace pixel3dmm::python
