#include "pixel3dmm/identity/scrfd.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/identity/detail/onnx_graph.h"
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"

namespace pixel3dmm::identity {
namespace {

constexpr std::array<int64_t, 3> kStrides = {8, 16, 32};
constexpr int64_t kAnchors = 2;                           // anchors per cell (RetinaFace._num_anchors)
constexpr std::array<int64_t, 3> kChannels = {1, 4, 10};  // scores, box distances, keypoint distances
constexpr std::array<const char*, 3> kKinds = {"scores", "box distances", "keypoint distances"};

/// Output `i` as a contiguous float32 rows x C matrix (a leading batch dimension of 1 dropped); ValueError with
/// expected vs found shape otherwise.
torch::Tensor output_matrix(const std::vector<torch::Tensor>& outputs, size_t i, int64_t input_size) {
  const int64_t stride = kStrides[i % 3], channels = kChannels[i / 3];
  const int64_t cells = (input_size / stride) * (input_size / stride);
  torch::Tensor t = outputs[i];
  PIXEL3DMM_CHECK(t.defined(), "SCRFD output ", i, " is undefined");
  if (t.dim() == 3 && t.size(0) == 1) t = t[0];
  PIXEL3DMM_CHECK(t.dim() == 2 && t.size(0) == cells * kAnchors && t.size(1) == channels, "SCRFD output ", i, " (",
                  kKinds[i / 3], ", stride ", stride, ", input ", input_size, "): expected shape [", cells * kAnchors,
                  ", ", channels, "], found ", shape_string(outputs[i].sizes()));
  return t.to(torch::kCPU, torch::kFloat32).contiguous();
}

/// numpy's maximum / minimum: NaN propagates.
float np_max(float a, float b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : (a >= b ? a : b);
}
float np_min(float a, float b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : (a <= b ? a : b);
}

/// numpy's `argsort()[::-1]`.
std::vector<int64_t> descending_order(const std::vector<float>& scores) {
  auto order = preprocess::detail::numpy_argsort(scores.data(), static_cast<int64_t>(scores.size()));
  std::reverse(order.begin(), order.end());
  return order;
}

/// RetinaFace.nms on dets (x1, y1, x2, y2, score rows, float32): indices of the kept rows.
std::vector<int64_t> scrfd_nms(const std::vector<std::array<float, 5>>& dets, float thresh) {
  const size_t n = dets.size();
  std::vector<float> scores(n), areas(n);
  for (size_t i = 0; i < n; ++i) {
    scores[i] = dets[i][4];
    areas[i] = (dets[i][2] - dets[i][0] + 1.0f) * (dets[i][3] - dets[i][1] + 1.0f);
  }
  std::vector<int64_t> order = descending_order(scores), keep;
  // The official loop keeps `order[1:][ovr <= thresh]` each round; removing the others in place is the same.
  while (!order.empty()) {
    const auto i = static_cast<size_t>(order[0]);
    keep.push_back(order[0]);
    std::vector<int64_t> rest;
    for (size_t r = 1; r < order.size(); ++r) {
      const auto j = static_cast<size_t>(order[r]);
      const float xx1 = np_max(dets[i][0], dets[j][0]), yy1 = np_max(dets[i][1], dets[j][1]);
      const float xx2 = np_min(dets[i][2], dets[j][2]), yy2 = np_min(dets[i][3], dets[j][3]);
      const float w = np_max(0.0f, xx2 - xx1 + 1.0f), h = np_max(0.0f, yy2 - yy1 + 1.0f);
      const float inter = w * h;
      const float ovr = inter / (areas[i] + areas[j] - inter);
      if (ovr <= thresh) rest.push_back(order[r]);
    }
    order = std::move(rest);
  }
  return keep;
}

torch::Tensor image_tensor_check(const torch::Tensor& image_rgb) {
  PIXEL3DMM_CHECK(image_rgb.defined() && image_rgb.dim() == 3 && image_rgb.size(2) == 3 &&
                      image_rgb.scalar_type() == torch::kUInt8 && image_rgb.size(0) > 0 && image_rgb.size(1) > 0,
                  "SCRFD: expected an H x W x 3 uint8 RGB image, found ",
                  image_rgb.defined() ? shape_string(image_rgb.sizes()) : std::string("an undefined tensor"), " ",
                  image_rgb.defined() ? std::string(c10::toString(image_rgb.scalar_type())) : std::string());
  return image_rgb.to(torch::kCPU).contiguous();
}

}  // namespace

ScrfdInput scrfd_input(const torch::Tensor& image_rgb, int64_t input_size) {
  PIXEL3DMM_CHECK(input_size > 0, "scrfd_input: input_size must be positive, found ", input_size);
  const auto image = image_tensor_check(image_rgb);
  const int64_t h = image.size(0), w = image.size(1);
  // RetinaFace.detect with a square input size: model_ratio = 1.
  const double im_ratio = static_cast<double>(h) / static_cast<double>(w);
  int64_t new_w = 0, new_h = 0;
  if (im_ratio > 1.0) {
    new_h = input_size;
    new_w = static_cast<int64_t>(static_cast<double>(new_h) / im_ratio);
  } else {
    new_w = input_size;
    new_h = static_cast<int64_t>(static_cast<double>(new_w) * im_ratio);
  }
  PIXEL3DMM_CHECK(new_w > 0 && new_h > 0, "SCRFD: an image of ", h, " x ", w,
                  " pixels is too elongated to resize into the ", input_size, " x ", input_size, " input");
  ScrfdInput out;
  out.det_scale = static_cast<double>(new_h) / static_cast<double>(h);
  const cv::Mat src(static_cast<int>(h), static_cast<int>(w), CV_8UC3, image.data_ptr<uint8_t>());
  cv::Mat resized;
  cv::resize(src, resized, cv::Size(static_cast<int>(new_w), static_cast<int>(new_h)));  // INTER_LINEAR
  cv::Mat canvas = cv::Mat::zeros(static_cast<int>(input_size), static_cast<int>(input_size), CV_8UC3);
  resized.copyTo(canvas(cv::Rect(0, 0, resized.cols, resized.rows)));
  // The official image is BGR with swapRB = true; ours is RGB already, so no swap: the same per-channel values.
  const cv::Mat blob = cv::dnn::blobFromImage(canvas, 1.0 / 128.0, cv::Size(), cv::Scalar(127.5, 127.5, 127.5),
                                              /*swapRB=*/false, /*crop=*/false, CV_32F);
  out.blob =
      torch::from_blob(const_cast<float*>(blob.ptr<float>()), {1, 3, input_size, input_size}, torch::kFloat32).clone();
  return out;
}

ScrfdDetections decode_scrfd(const std::vector<torch::Tensor>& outputs, int64_t input_size, float det_scale,
                             float threshold, float nms_threshold) {
  PIXEL3DMM_CHECK(outputs.size() == 9, "decode_scrfd: expected the 9 raw SCRFD outputs (scores, boxes, keypoints ",
                  "for strides 8, 16, 32), found ", outputs.size());
  PIXEL3DMM_CHECK(input_size >= 32, "decode_scrfd: input_size must be at least 32, found ", input_size);
  PIXEL3DMM_CHECK(std::isfinite(det_scale) && det_scale > 0.0f, "decode_scrfd: det_scale must be positive, found ",
                  det_scale);
  std::vector<float> scores;
  std::vector<std::array<float, 4>> boxes;
  std::vector<std::array<float, 10>> kps;
  for (size_t s = 0; s < kStrides.size(); ++s) {
    const auto sc = output_matrix(outputs, s, input_size), bb = output_matrix(outputs, s + 3, input_size),
               kp = output_matrix(outputs, s + 6, input_size);
    const auto sa = sc.accessor<float, 2>();
    const auto ba = bb.accessor<float, 2>();
    const auto ka = kp.accessor<float, 2>();
    const auto stride = static_cast<float>(kStrides[s]);
    const int64_t grid_w = input_size / kStrides[s];
    for (int64_t r = 0; r < sc.size(0); ++r) {
      if (!(sa[r][0] >= threshold)) continue;  // np.where(scores >= threshold), float32
      const int64_t cell = r / kAnchors;
      const float cx = static_cast<float>(cell % grid_w) * stride, cy = static_cast<float>(cell / grid_w) * stride;
      // distance2bbox / distance2kps on `preds * stride` (float32), then `/ det_scale` (float32).
      boxes.push_back({(cx - ba[r][0] * stride) / det_scale, (cy - ba[r][1] * stride) / det_scale,
                       (cx + ba[r][2] * stride) / det_scale, (cy + ba[r][3] * stride) / det_scale});
      std::array<float, 10> k{};
      for (int64_t c = 0; c < 10; c += 2) {
        k[static_cast<size_t>(c)] = (cx + ka[r][c] * stride) / det_scale;
        k[static_cast<size_t>(c + 1)] = (cy + ka[r][c + 1] * stride) / det_scale;
      }
      kps.push_back(k);
      scores.push_back(sa[r][0]);
    }
  }
  // pre_det = hstack(boxes, scores)[order]; NMS sorts pre_det's scores again.
  const std::vector<int64_t> order = descending_order(scores);
  std::vector<std::array<float, 5>> pre_det(order.size());
  for (size_t r = 0; r < order.size(); ++r) {
    const auto src = static_cast<size_t>(order[r]);
    pre_det[r] = {boxes[src][0], boxes[src][1], boxes[src][2], boxes[src][3], scores[src]};
  }
  const std::vector<int64_t> keep = scrfd_nms(pre_det, nms_threshold);
  const auto n = static_cast<int64_t>(keep.size());
  ScrfdDetections out;
  out.boxes = torch::empty({n, 4}, torch::kFloat32);
  out.scores = torch::empty({n}, torch::kFloat32);
  out.keypoints = torch::empty({n, 5, 2}, torch::kFloat32);
  auto ob = out.boxes.accessor<float, 2>();
  auto os = out.scores.accessor<float, 1>();
  auto ok = out.keypoints.accessor<float, 3>();
  for (int64_t m = 0; m < n; ++m) {
    const auto row = static_cast<size_t>(keep[static_cast<size_t>(m)]);
    for (int64_t c = 0; c < 4; ++c) ob[m][c] = pre_det[row][static_cast<size_t>(c)];
    os[m] = pre_det[row][4];
    const auto& k = kps[static_cast<size_t>(order[row])];
    for (int64_t p = 0; p < 5; ++p)
      for (int64_t c = 0; c < 2; ++c) ok[m][p][c] = k[static_cast<size_t>(2 * p + c)];
  }
  return out;
}

struct ScrfdDetector::Impl {
  std::string path;
  int64_t input_size = 224;
  std::vector<std::string> output_names;
  cv::dnn::Net net;
};

ScrfdDetector::ScrfdDetector(const std::string& onnx_path) : impl_(std::make_shared<Impl>()) {
  impl_->path = onnx_path;
  PIXEL3DMM_CHECK_T(FileNotFound, std::filesystem::is_regular_file(onnx_path), onnx_path,
                    ": SCRFD ONNX file not found (insightface's antelopev2 scrfd_10g_bnkps.onnx)");
  const std::string model = read_file(onnx_path);
  const auto info = detail::read_onnx_graph(model, onnx_path);
  PIXEL3DMM_CHECK_FORMAT(info.outputs.size() == 9, onnx_path,
                         "expected an SCRFD detector with keypoints: 9 outputs (scores, boxes, keypoints for strides "
                         "8, 16, 32), found ",
                         info.outputs.size());
  const auto& shape = info.input_shape;
  PIXEL3DMM_CHECK_FORMAT(shape.size() == 4 && shape[0] <= 1 && (shape[1] < 0 || shape[1] == 3), onnx_path, "input '",
                         info.inputs[0], "': expected shape [1, 3, H, W], found ", shape_string(shape));
  // RetinaFace._init_vars: a static input size overrides the requested 224 (spec 6.2).
  if (shape[2] >= 0 || shape[3] >= 0) {
    PIXEL3DMM_CHECK_FORMAT(shape[2] > 0 && shape[2] == shape[3], onnx_path, "input '", info.inputs[0],
                           "': a static input must be square, found ", shape_string(shape));
    impl_->input_size = shape[2];
  }
  const int64_t s = impl_->input_size;
  const std::string fixed = detail::fix_onnx_input_shape(model, {1, 3, s, s}, onnx_path);
  try {
    impl_->net = cv::dnn::readNetFromONNX(fixed.data(), fixed.size());
  } catch (const cv::Exception& e) {
    throw FormatError(onnx_path + ": OpenCV's DNN module cannot import this ONNX model: " + e.what());
  }
  PIXEL3DMM_CHECK_FORMAT(!impl_->net.empty(), onnx_path, "OpenCV's DNN module imported an empty network");
  impl_->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  impl_->net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  impl_->output_names = info.outputs;
  // One run on a zero blob checks the output shapes now rather than on the first image.
  std::vector<torch::Tensor> outs;
  try {
    outs = forward(torch::zeros({1, 3, s, s}, torch::kFloat32));
    decode_scrfd(outs, s, 1.0f);
  } catch (const FormatError&) {
    throw;
  } catch (const ValueError& e) {
    throw FormatError(onnx_path + ": not an SCRFD detector: " + e.what());
  }
}

std::vector<torch::Tensor> ScrfdDetector::forward(const torch::Tensor& blob) {
  const int64_t s = impl_->input_size;
  check_shape(blob, {1, 3, s, s}, "SCRFD input blob");
  const auto b = blob.to(torch::kCPU, torch::kFloat32).contiguous();
  const int dims[4] = {1, 3, static_cast<int>(s), static_cast<int>(s)};
  const cv::Mat in(4, dims, CV_32F, b.data_ptr<float>());
  std::vector<cv::Mat> mats;
  try {
    impl_->net.setInput(in);
    std::vector<cv::String> names(impl_->output_names.begin(), impl_->output_names.end());
    impl_->net.forward(mats, names);
  } catch (const cv::Exception& e) {
    throw FormatError(impl_->path + ": OpenCV's DNN module failed to run the network: " + e.what());
  }
  std::vector<torch::Tensor> outs;
  for (const auto& m : mats) {
    PIXEL3DMM_CHECK_FORMAT(m.type() == CV_32F && m.isContinuous(), impl_->path,
                           "an output is not a contiguous float32 array");
    std::vector<int64_t> sizes(m.size.p, m.size.p + m.dims);
    auto t = torch::from_blob(const_cast<float*>(m.ptr<float>()), sizes, torch::kFloat32).clone();
    if (t.dim() == 3 && t.size(0) == 1) t = t[0];
    outs.push_back(t);
  }
  return outs;
}

ScrfdDetections ScrfdDetector::detect(const torch::Tensor& image_rgb, float threshold, float nms_threshold) {
  const auto input = scrfd_input(image_rgb, impl_->input_size);
  // numpy 1.x: a float32 array divided by the Python float det_scale computes in float32.
  return decode_scrfd(forward(input.blob), impl_->input_size, static_cast<float>(input.det_scale), threshold,
                      nms_threshold);
}

int64_t ScrfdDetector::input_size() const { return impl_->input_size; }
const std::string& ScrfdDetector::path() const { return impl_->path; }

int64_t centre_face(const ScrfdDetections& detections, int64_t height, int64_t width) {
  if (!detections.boxes.defined() || detections.boxes.size(0) == 0) return -1;
  check_shape(detections.boxes, {-1, 4}, "centre_face: boxes");
  const auto boxes = detections.boxes.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto b = boxes.accessor<float, 2>();
  // MICA's get_center: float32 scalars; abs(x2 - x1) in float32, `/ 2.0` and everything after in float64.
  const auto cx = static_cast<double>(width / 2), cy = static_cast<double>(height / 2);
  double best = std::numeric_limits<double>::infinity();
  int64_t j = 0;
  for (int64_t i = 0; i < boxes.size(0); ++i) {
    const double dx = static_cast<double>(std::fabs(b[i][2] - b[i][0])) / 2.0;
    const double dy = static_cast<double>(std::fabs(b[i][3] - b[i][1])) / 2.0;
    const double ex = static_cast<double>(b[i][0]) + dx - cx, ey = static_cast<double>(b[i][1]) + dy - cy;
    const double d = std::sqrt(ex * ex + ey * ey);
    if (d < best) {
      best = d;
      j = i;
    }
  }
  return j;
}

torch::Tensor detect_five_keypoints(ScrfdDetector& detector, const torch::Tensor& image_rgb) {
  const auto detections = detector.detect(image_rgb);
  const int64_t i = centre_face(detections, image_rgb.size(0), image_rgb.size(1));
  if (i < 0) return {};
  return detections.keypoints[i].clone();
}

}  // namespace pixel3dmm::identity
