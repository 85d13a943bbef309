// Bindings of pixel3dmm/preprocess: photo -> crop, landmarks, pupils, masks (dlib detection).
#include "pixel3dmm/preprocess/preprocess.h"

#include <pybind11/stl.h>

#include <sstream>

#include "bindings.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/preprocess/face_parser.h"

namespace pixel3dmm::python {

namespace {

using preprocess::Preprocessed;
using preprocess::PreprocessOptions;

py::object faces_or_face(std::vector<Preprocessed> all, bool all_faces) {
  if (all_faces) return py::cast(std::move(all));
  return py::cast(std::move(all.front()));
}

/// Runs `one` (-> Preprocessed) or `all` (-> every face) without the GIL -> faces_or_face of the result.
template <class One, class All>
py::object faces_without_gil(bool all_faces, One&& one, All&& all) {
  std::vector<Preprocessed> r;
  {
    py::gil_scoped_release release;
    r = all_faces ? all() : std::vector<Preprocessed>{one()};
  }
  return faces_or_face(std::move(r), all_faces);
}

py::list faces_list(const std::vector<preprocess::Face>& faces) {
  py::list out;
  for (const auto& f : faces) {
    py::dict d;
    d["box"] = f.box;
    d["score"] = f.score;
    d["landmarks"] = f.landmarks;
    out.append(d);
  }
  return out;
}

}  // namespace

PreprocessOptions preprocess_options_from(const py::object& obj) {
  if (obj.is_none()) return {};
  if (py::isinstance<PreprocessOptions>(obj)) return obj.cast<PreprocessOptions>();
  if (!py::isinstance<py::dict>(obj)) {
    throw py::type_error("PreprocessOptions: expected a PreprocessOptions, a dict of its fields or None, found " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
  PreprocessOptions o;
  py::object target = py::cast(o);
  const auto options = obj.cast<py::dict>();
  for (const auto& item : options) {
    const auto key = item.first.cast<std::string>();
    if (!py::hasattr(target, key.c_str())) {
      throw ValueError("PreprocessOptions: unknown option '" + key + "'");
    }
    target.attr(key.c_str()) = item.second;
  }
  // As the CLI's --faceboxes: FaceBoxesV2 weights choose the official crop unless `crop` is named.
  if (!options.contains("crop") && !target.attr("faceboxes").cast<std::string>().empty()) {
    target.attr("crop") = "official";
  }
  return target.cast<PreprocessOptions>();
}

void bind_preprocess(py::module_& m) {
  py::class_<PreprocessOptions> opt(m, "PreprocessOptions",
                                    "Settings of preprocess_image / preprocess_file (see docs/preprocessing.md).");
  opt.def(py::init([](const py::kwargs& fields) { return preprocess_options_from(fields); }),
          "PreprocessOptions(**fields), e.g. PreprocessOptions(faceboxes='fb.safetensors', pipnet='pip.safetensors'): "
          "unknown names raise ValueError; faceboxes without crop sets crop 'official' (as the CLI's --faceboxes)")
      .def_readwrite("crop_size", &PreprocessOptions::crop_size, "crop side in pixels (512)")
      .def_readwrite("crop_scale", &PreprocessOptions::crop_scale, "crop side / long side of the landmark box")
      .def_readwrite("crop_shift_up", &PreprocessOptions::crop_shift_up,
                     "crop centre above the landmark box centre, in landmark-box sides")
      .def_readwrite("keep_inside", &PreprocessOptions::keep_inside,
                     "move an overflowing crop back inside the photo (official) instead of padding black")
      .def_readwrite("max_image_side", &PreprocessOptions::max_image_side,
                     "photos with a longer side are shrunk to it first (<= 0: no limit)")
      .def_readwrite("landmark_model", &PreprocessOptions::landmark_model,
                     "dlib 68-point model path ('' = $PIXEL3DMM_DLIB_LANDMARKS or Debian's libdlib-data file)")
      .def_readwrite("detect_max_side", &PreprocessOptions::detect_max_side,
                     "detection runs on a copy at most this large")
      .def_readwrite("upsample", &PreprocessOptions::upsample, "detector upsampling: -1 automatic, 0..3")
      .def_readwrite("min_score", &PreprocessOptions::min_score, "detector score threshold (dlib's 0 default)")
      .def_readwrite(
          "crop", &PreprocessOptions::crop,
          "'landmarks' (dlib's landmark box) or 'official' (FaceBoxesV2 + the official rule; needs faceboxes)")
      .def_readwrite("official_jpeg", &PreprocessOptions::official_jpeg,
                     "crop 'official': the photo and the 512 crop through quality-95 JPEG, as the official rgb/ and "
                     "cropped/ files")
      .def_readwrite("faceboxes", &PreprocessOptions::faceboxes,
                     "converted FaceBoxesV2 weights (python -m pixel3dmm.convert_preprocessing faceboxes)")
      .def_readwrite("pipnet", &PreprocessOptions::pipnet,
                     "converted PIPNet weights (python -m pixel3dmm.convert_preprocessing pipnet): the official 98 "
                     "landmarks -> 68 + pupils instead of dlib; crop 'official' only")
      .def_readwrite("mask_method", &PreprocessOptions::mask_method,
                     "'auto' (segmentation when a label image is given, else landmarks+grabcut), "
                     "'landmarks+grabcut', 'landmarks', 'segmentation' or 'parser' ('auto' picks it when "
                     "face_parser is given)")
      .def_readwrite("face_parser", &PreprocessOptions::face_parser,
                     "facer's FaRL celebm TorchScript parser: the crop's official label map and masks")
      .def_readwrite("retinaface", &PreprocessOptions::retinaface,
                     "converted RetinaFace weights: the parser's five keypoints (default: from the 68 landmarks)")
      .def_readwrite("segmentation", &PreprocessOptions::segmentation,
                     "label PNG (facer celebm layout) for mask_method 'segmentation'")
      .def_readwrite("big_normal_mask", &PreprocessOptions::big_normal_mask, "official big_normal_mask")
      .def_readwrite("forehead", &PreprocessOptions::forehead,
                     "brow lift over the forehead, fraction of brow-to-chin distance")
      .def_readwrite("grabcut_iterations", &PreprocessOptions::grabcut_iterations)
      .def_readwrite("seed", &PreprocessOptions::seed, "seeds GrabCut's colour-model initialisation")
      .def_readwrite("pupil_dark_fraction", &PreprocessOptions::pupil_dark_fraction,
                     "fraction of the darkest eye pixels that vote for the pupil")
      .def("__repr__", [](const PreprocessOptions& o) {
        std::ostringstream s;
        s << "PreprocessOptions(crop_size=" << o.crop_size << ", crop_scale=" << o.crop_scale
          << ", crop_shift_up=" << o.crop_shift_up << ", mask_method='" << o.mask_method
          << "', max_image_side=" << o.max_image_side << ")";
        return s.str();
      });

  py::class_<Preprocessed> res(m, "Preprocessed", "One face ready for fitting; pixel coordinates are crop pixels.");
  res.def(py::init<>());
  def_tensor_field(res, "crop", &Preprocessed::crop, "1 x 3 x S x S float32 RGB in [0, 1]");
  def_tensor_field(res, "landmarks", &Preprocessed::landmarks, "1 x 68 x 2 float32 iBUG landmarks (x, y)");
  def_tensor_field(res, "iris", &Preprocessed::iris, "1 x 2 x 2 float32 pupils, image-left eye first");
  def_tensor_field(res, "uv_mask", &Preprocessed::uv_mask, "1 x S x S float32 {0, 1}");
  def_tensor_field(res, "normal_mask", &Preprocessed::normal_mask, "1 x S x S float32 {0, 1}");
  def_tensor_field(res, "fg_mask", &Preprocessed::fg_mask, "1 x S x S float32 {0, 1}");
  def_tensor_field(res, "valid_bg", &Preprocessed::valid_bg, "1 x S x S float32 {0, 1}");
  def_tensor_field(res, "affine", &Preprocessed::affine, "2 x 3 float64: photo pixels -> crop pixels");
  def_tensor_field(res, "wflw", &Preprocessed::wflw,
                   "PIPNet only: 98 x 2 float64 WFLW points, fractions of the crop (the official export)");
  def_tensor_field(res, "labels", &Preprocessed::labels,
                   "mask method 'parser': 1 x S x S uint8 official label map of the crop (else None)");
  def_tensor_field(res, "box", &Preprocessed::box, "4 float32 detector box x0, y0, x1, y1 in photo pixels");
  res.def_readwrite("score", &Preprocessed::score, "detector score")
      .def_readwrite("image_height", &Preprocessed::image_height)
      .def_readwrite("image_width", &Preprocessed::image_width)
      .def_readwrite("source", &Preprocessed::source, "file path ('' for an in-memory image)")
      .def_readwrite("mask_method", &Preprocessed::mask_method)
      .def_readwrite("crop_method", &Preprocessed::crop_method,
                     "'landmarks', 'official' (FaceBoxesV2) or 'official-sequence' (one static crop over a photo set)")
      .def_readwrite("landmark_method", &Preprocessed::landmark_method, "'dlib' or 'pipnet'")
      .def_readwrite("keypoints", &Preprocessed::keypoints,
                     "mask method 'parser': 'retinaface' or 'landmarks68', the parser's keypoints")
      .def("__repr__", [](const Preprocessed& p) {
        std::ostringstream s;
        s << "<Preprocessed source='" << p.source << "' photo=" << p.image_width << "x" << p.image_height
          << " crop=" << (p.crop.defined() ? p.crop.size(3) : 0) << " score=" << p.score << " masks='" << p.mask_method
          << "'>";
        return s.str();
      });

  py::class_<preprocess::Preprocessor>(m, "Preprocessor",
                                       "Holds the loaded dlib detector (about a second to load): reuse it for many "
                                       "photos.")
      .def(py::init(
               [](const py::object& options) { return preprocess::Preprocessor(preprocess_options_from(options)); }),
           py::arg("options") = py::none(), "options: PreprocessOptions or a dict of its fields.")
      .def(
          "image",
          [](const preprocess::Preprocessor& p, const py::object& image, bool all_faces, const std::string& source) {
            const torch::Tensor t = to_tensor(image);
            return faces_without_gil(
                all_faces, [&] { return p.image(t, source); }, [&] { return p.image_all(t, source); });
          },
          py::arg("image"), py::arg("all_faces") = false, py::arg("source") = "",
          "As preprocess_image, with this object's detector and options.")
      .def(
          "file",
          [](const preprocess::Preprocessor& p, const std::string& path, bool all_faces) {
            return faces_without_gil(
                all_faces, [&] { return p.file(path); }, [&] { return p.file_all(path); });
          },
          py::arg("path"), py::arg("all_faces") = false, "As preprocess_file, with this object's detector and options.")
      .def(
          "detect",
          [](const preprocess::Preprocessor& p, const py::object& image) {
            const torch::Tensor t = preprocess::normalize_image(to_tensor(image));
            std::vector<preprocess::Face> faces;
            {
              py::gil_scoped_release release;
              faces = p.detector().detect(t);
            }
            return faces_list(faces);
          },
          py::arg("image"), "dlib faces (as detect_faces) with this object's detector.")
      .def_property_readonly("options", &preprocess::Preprocessor::options)
      .def("__repr__", [](const preprocess::Preprocessor& p) {
        return "<Preprocessor landmark_model='" + p.detector().landmark_model_path() +
               "' crop_size=" + std::to_string(p.options().crop_size) + " mask_method='" + p.options().mask_method +
               "'>";
      });

  m.def(
      "preprocess_image",
      [](const py::object& image, const py::object& options, bool all_faces, const std::string& source) {
        // Check the image before the second it takes to load the landmark model.
        const torch::Tensor t = preprocess::normalize_image(to_tensor(image), source.empty() ? "image" : source);
        const PreprocessOptions o = preprocess_options_from(options);
        return faces_without_gil(
            all_faces, [&] { return preprocess::Preprocessor(o).image(t, source); },
            [&] { return preprocess::Preprocessor(o).image_all(t, source); });
      },
      py::arg("image"), py::arg("options") = py::none(), py::arg("all_faces") = false, py::arg("source") = "",
      "image: H x W, C x H x W or 1 x C x H x W (C in 1, 3, 4), float in [0, 1] or uint8 -> Preprocessed of the "
      "largest face (ValueError 'no face found' when none), or a list of every face (largest first) with "
      "all_faces=True. options: PreprocessOptions or a dict of its fields.");
  m.def(
      "preprocess_file",
      [](const std::string& path, const py::object& options, bool all_faces) {
        const PreprocessOptions o = preprocess_options_from(options);
        return faces_without_gil(
            all_faces, [&] { return preprocess::preprocess_file(path, o); },
            [&] { return preprocess::preprocess_file_all(path, o); });
      },
      py::arg("path"), py::arg("options") = py::none(), py::arg("all_faces") = false,
      "Reads a photo (EXIF orientation, gray / RGBA / 16-bit) and preprocesses it; 'no face found in <path>' "
      "(ValueError) when there is none, unless all_faces=True (then a possibly empty list).");
  m.def(
      "detect_faces",
      [](const py::object& image, const std::string& landmark_model, int64_t detect_max_side, int upsample,
         double min_score) {
        preprocess::FaceDetectorOptions o;
        o.landmark_model = landmark_model;
        o.detect_max_side = detect_max_side;
        o.upsample = upsample;
        o.min_score = min_score;
        const torch::Tensor t = preprocess::normalize_image(to_tensor(image));
        py::gil_scoped_release release;
        auto faces = preprocess::FaceDetector(o).detect(t);
        py::gil_scoped_acquire acquire;
        return faces_list(faces);
      },
      py::arg("image"), py::arg("landmark_model") = "", py::arg("detect_max_side") = 1024, py::arg("upsample") = -1,
      py::arg("min_score") = 0.0,
      "dlib faces in photo pixels, largest first: list of dicts box (4: x0, y0, x1, y1), score, landmarks (68 x 2).");
  m.def(
      "masks_from_segmentation",
      [](const py::object& labels, bool big_normal_mask) {
        const auto mk = preprocess::masks_from_segmentation(to_tensor(labels), big_normal_mask);
        py::dict d;
        d["uv_mask"] = mk.uv_mask;
        d["normal_mask"] = mk.normal_mask;
        d["fg_mask"] = mk.fg_mask;
        d["valid_bg"] = mk.valid_bg;
        return d;
      },
      py::arg("labels"), py::arg("big_normal_mask") = false,
      "labels: H x W (or 1 x H x W, H x W x 3: channel 0) facer celebm labels -> dict of the official uv_mask, "
      "normal_mask, fg_mask, valid_bg (each 1 x H x W float32 {0, 1}).");
  m.def("read_segmentation", &preprocess::read_segmentation, py::arg("path"),
        "A label PNG -> H x W int64 (RGB: the red channel, as the official reader).");
  py::class_<preprocess::FaceParser>(m, "FaceParser",
                                     "facer's FaRL celebm/448 parser from its TorchScript file, run as the official "
                                     "pipeline runs it (alignment from five keypoints, warp, inverse warp).")
      .def(py::init([](const std::string& path, int64_t size, double bbox_scale_factor, int64_t classes) {
             preprocess::FaceParserOptions o;
             o.size = size;
             o.bbox_scale_factor = bbox_scale_factor;
             o.classes = classes;
             return preprocess::FaceParser(path, o);
           }),
           py::arg("path"), py::arg("size") = 448, py::arg("bbox_scale_factor") = 1.25, py::arg("classes") = 19)
      .def(
          "logits",
          [](const preprocess::FaceParser& p, const torch::Tensor& image, const torch::Tensor& points) {
            py::gil_scoped_release release;
            return p.logits(image, points);
          },
          py::arg("image"), py::arg("points"),
          "image 1 x 3 x H x W (uint8, or float in [0, 1]), points N x 5 x 2 -> N x classes x H x W logits.")
      .def(
          "labels",
          [](const preprocess::FaceParser& p, const torch::Tensor& image, const torch::Tensor& points) {
            py::gil_scoped_release release;
            return p.labels(image, points);
          },
          py::arg("image"), py::arg("points"), "-> N x H x W uint8 label maps (20 outside the aligned region).")
      .def_property_readonly("path", &preprocess::FaceParser::path);
  m.def("face_align_matrix_celebm", &preprocess::face_align_matrix_celebm, py::arg("points"),
        py::arg("bbox_scale_factor") = 1.25, py::arg("size") = 448,
        "points N x 5 x 2 -> N x 3 x 3 float32: the official get_face_align_matrix_celebm.");
  m.def("aligned_grid", &preprocess::aligned_grid, py::arg("matrix"), py::arg("image_height"), py::arg("image_width"),
        py::arg("size") = 448, "N x 3 x 3 -> N x size x size x 2 grid_sample grid of the aligned crop.");
  m.def("image_grid", &preprocess::image_grid, py::arg("matrix"), py::arg("image_height"), py::arg("image_width"),
        py::arg("size") = 448, "N x 3 x 3 -> N x H x W x 2 grid_sample grid back to the image.");
  m.def("labels_from_logits", &preprocess::labels_from_logits, py::arg("logits"),
        "N x C x H x W -> N x H x W uint8: argmax of the softmax, C + 1 where all logits are 0.");
  m.def("archive_format_version", &preprocess::archive_format_version, py::arg("path"),
        "The file format version a torch zip archive records, or -1.");
  m.def(
      "labels_in_crop",
      [](const py::object& labels, const torch::Tensor& affine, int64_t image_height, int64_t image_width,
         int64_t size) {
        return preprocess::labels_in_crop(to_tensor(labels), affine, image_height, image_width, size);
      },
      py::arg("labels"), py::arg("affine"), py::arg("image_height"), py::arg("image_width"), py::arg("size"),
      "H x W labels -> size x size int64 in the crop: a photo-sized map warped by affine (2 x 3 float64, photo -> "
      "crop; 20 outside the photo), a square map resized with Pillow's NEAREST (the official seg_og layout).");
  m.def(
      "masks_from_landmarks",
      [](const torch::Tensor& image, const torch::Tensor& landmarks, bool grabcut, double forehead, uint64_t seed) {
        preprocess::LandmarkMaskOptions o;
        o.grabcut = grabcut;
        o.forehead = forehead;
        o.seed = seed;
        const auto mk = preprocess::masks_from_landmarks(image, landmarks, o);
        py::dict d;
        d["uv_mask"] = mk.uv_mask;
        d["normal_mask"] = mk.normal_mask;
        d["fg_mask"] = mk.fg_mask;
        d["valid_bg"] = mk.valid_bg;
        return d;
      },
      py::arg("image"), py::arg("landmarks"), py::arg("grabcut") = true, py::arg("forehead") = 0.4, py::arg("seed") = 0,
      "image: 1 x 3 x H x W in [0, 1], landmarks: 68 x 2 (its pixels) -> dict of the four masks estimated from the "
      "landmarks (and GrabCut).");
  m.def(
      "locate_pupils",
      [](const torch::Tensor& image, const torch::Tensor& landmarks) {
        return preprocess::locate_pupils(image, landmarks);
      },
      py::arg("image"), py::arg("landmarks"),
      "image: 1 x 3 x H x W, landmarks: 68 x 2 -> 2 x 2 pupils, image-left eye first.");
  m.def("apply_affine", &preprocess::apply_affine, py::arg("points"), py::arg("affine"),
        "points: ... x 2, affine: 2 x 3 -> ... x 2");
  m.def("invert_affine", &preprocess::invert_affine, py::arg("affine"), "2 x 3 -> its inverse, 2 x 3 float64");
  m.def("draw_preprocessed", &preprocess::draw_preprocessed, py::arg("result"),
        "The crop with landmarks (green), pupils (red), uv/fg/valid_bg outlines (yellow/cyan/blue): 1 x 3 x S x S.");
  m.def(
      "write_preprocessed_png",
      [](const std::string& path, const Preprocessed& p) { io::write_image(path, preprocess::draw_preprocessed(p)); },
      py::arg("path"), py::arg("result"), "Writes draw_preprocessed(result) as an image file (atomically).");
  m.def("default_landmark_model_path", &preprocess::default_landmark_model_path,
        "$PIXEL3DMM_DLIB_LANDMARKS or /usr/share/dlib/shape_predictor_68_face_landmarks.dat");
}

}  // namespace pixel3dmm::python
