// The only translation unit that includes dlib (its headers are slow to compile and must not leak into the
// public API). dlib sees 8-bit grayscale through a zero-copy cv_image view; the HOG detector needs no colour.
#include "pixel3dmm/preprocess/face_detector.h"

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

using ::pixel3dmm::detail::concat;

namespace {

/// 1 x 3 x H x W / 3 x H x W float [0, 1] -> H x W CV_8U luma (BT.601, as OpenCV's RGB2GRAY).
cv::Mat to_gray8(const torch::Tensor& image) {
  PIXEL3DMM_CHECK(image.defined(), "detect: the image is undefined");
  torch::Tensor chw = image.dim() == 4 ? image : image.unsqueeze(0);
  check_shape(chw, {1, 3, -1, -1}, "detect: image");
  PIXEL3DMM_CHECK(chw.is_floating_point(), "detect: image: expected a float tensor in [0, 1], found ",
                  chw.scalar_type());
  auto w = torch::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1});
  torch::Tensor gray = (chw[0].to(torch::kCPU, torch::kFloat) * w).sum(0);
  gray = (gray.clamp(0, 1) * 255.0f).round().to(torch::kUInt8).contiguous();
  cv::Mat m(static_cast<int>(gray.size(0)), static_cast<int>(gray.size(1)), CV_8U, gray.data_ptr());
  return m.clone();
}

torch::Tensor shape_to_tensor(const dlib::full_object_detection& shape) {
  auto out = torch::empty({68, 2}, torch::kFloat);
  auto a = out.accessor<float, 2>();
  for (unsigned long i = 0; i < 68; ++i) {
    a[i][0] = static_cast<float>(shape.part(i).x());
    a[i][1] = static_cast<float>(shape.part(i).y());
  }
  return out;
}

}  // namespace

std::string default_landmark_model_path() {
  if (const char* env = std::getenv("PIXEL3DMM_DLIB_LANDMARKS"); env && *env) return env;
  return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
}

double Face::area() const {
  if (!box.defined()) return 0.0;
  auto b = box.to(torch::kDouble);
  return (b[2] - b[0]).item<double>() * (b[3] - b[1]).item<double>();
}

struct FaceDetector::Impl {
  FaceDetectorOptions options;
  std::string model_path;
  mutable dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor predictor;
};

FaceDetector::FaceDetector(const FaceDetectorOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  PIXEL3DMM_CHECK(options.upsample >= -1 && options.upsample <= 3,
                  "FaceDetectorOptions.upsample: expected -1 "
                  "(automatic) or 0..3, found ",
                  options.upsample);
  const std::string path = options.landmark_model.empty() ? default_landmark_model_path() : options.landmark_model;
  impl_->model_path = path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw FileNotFound(concat(path,
                              ": dlib landmark model not found (install Debian's libdlib-data, or name a "
                              "shape_predictor_68_face_landmarks.dat with landmark_model / "
                              "PIXEL3DMM_DLIB_LANDMARKS)"));
  }
  try {
    dlib::deserialize(path) >> impl_->predictor;
  } catch (const std::exception& e) {
    throw FormatError(concat(path, ": not a dlib shape predictor (", e.what(), ")"));
  }
  PIXEL3DMM_CHECK_FORMAT(impl_->predictor.num_parts() == 68, path, "expected a 68-point landmark model, found ",
                         impl_->predictor.num_parts(), " points");
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;

const FaceDetectorOptions& FaceDetector::options() const { return impl_->options; }
const std::string& FaceDetector::landmark_model_path() const { return impl_->model_path; }

std::vector<Face> FaceDetector::detect(const torch::Tensor& image) const {
  const cv::Mat gray = to_gray8(image);
  const auto& opt = impl_->options;
  const int long_side = std::max(gray.cols, gray.rows);
  double scale = 1.0;
  cv::Mat small = gray;
  if (opt.detect_max_side > 0 && long_side > opt.detect_max_side) {
    scale = static_cast<double>(opt.detect_max_side) / long_side;
    cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);
    // cv::resize rounds the size: the exact factor per axis is what maps boxes back.
  }
  const double sx = static_cast<double>(small.cols) / gray.cols, sy = static_cast<double>(small.rows) / gray.rows;
  int upsample = opt.upsample;
  if (upsample < 0) upsample = std::max(small.cols, small.rows) < 800 ? 1 : 0;

  dlib::cv_image<unsigned char> view(small);
  std::vector<dlib::rectangle> boxes;
  std::vector<double> scores;
  if (upsample == 0) {
    std::vector<dlib::rect_detection> dets;
    impl_->detector(view, dets, opt.min_score);
    for (const auto& d : dets) {
      boxes.push_back(d.rect);
      scores.push_back(d.detection_confidence);
    }
  } else {
    // dlib's pyramid_up doubles the image per step; boxes come back divided by 2^upsample.
    dlib::array2d<unsigned char> up;
    dlib::assign_image(up, view);
    for (int i = 0; i < upsample; ++i) dlib::pyramid_up(up);
    std::vector<dlib::rect_detection> dets;
    impl_->detector(up, dets, opt.min_score);
    const double f = std::ldexp(1.0, -upsample);
    for (const auto& d : dets) {
      const auto& r = d.rect;
      boxes.push_back(dlib::rectangle(std::lround(r.left() * f), std::lround(r.top() * f), std::lround(r.right() * f),
                                      std::lround(r.bottom() * f)));
      scores.push_back(d.detection_confidence);
    }
  }

  dlib::cv_image<unsigned char> full(gray);
  std::vector<Face> faces;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& r = boxes[i];
    // dlib rectangles are inclusive: right/bottom + 1 is the exclusive edge.
    const double x0 = r.left() / sx, y0 = r.top() / sy, x1 = (r.right() + 1) / sx, y1 = (r.bottom() + 1) / sy;
    const dlib::rectangle full_box(std::lround(x0), std::lround(y0), std::lround(x1) - 1, std::lround(y1) - 1);
    Face f;
    f.box =
        torch::tensor({static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1), static_cast<float>(y1)});
    f.score = scores[i];
    f.landmarks = shape_to_tensor(impl_->predictor(full, full_box));
    faces.push_back(std::move(f));
  }
  std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) {
    const double aa = a.area(), ab = b.area();
    return aa != ab ? aa > ab : a.score > b.score;
  });
  return faces;
}

torch::Tensor FaceDetector::landmarks(const torch::Tensor& image, const torch::Tensor& box) const {
  check_shape(box, {4}, "FaceDetector::landmarks: box");
  const cv::Mat gray = to_gray8(image);
  auto b = box.to(torch::kCPU, torch::kDouble).contiguous();
  const double* p = b.data_ptr<double>();
  PIXEL3DMM_CHECK(std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]) && std::isfinite(p[3]) &&
                      p[2] > p[0] && p[3] > p[1],
                  "FaceDetector::landmarks: box: expected finite x0 < x1, y0 < y1, found ", p[0], ", ", p[1], ", ",
                  p[2], ", ", p[3]);
  dlib::cv_image<unsigned char> full(gray);
  const dlib::rectangle r(std::lround(p[0]), std::lround(p[1]), std::lround(p[2]) - 1, std::lround(p[3]) - 1);
  return shape_to_tensor(impl_->predictor(full, r));
}

}  // namespace pixel3dmm::preprocess
