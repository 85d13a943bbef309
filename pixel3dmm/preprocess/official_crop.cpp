#include "pixel3dmm/preprocess/official_crop.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

namespace {
/// `int(n * (scale - 1) / 2)` as Python evaluates it: float64, left to right, truncated toward zero.
int64_t pad(int64_t n, double scale) { return static_cast<int64_t>(static_cast<double>(n) * (scale - 1.0) / 2.0); }

/// Python's floor division (the official operands are non-negative, but keep the meaning).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/// numpy's slice bounds for [start:stop] on an axis of length n: (begin, end) with end >= begin.
std::pair<int64_t, int64_t> slice_bounds(int64_t start, int64_t stop, int64_t n) {
  auto norm = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
  const int64_t b = norm(start), e = norm(stop);
  return {b, std::max(b, e)};
}
}  // namespace

OfficialCrop official_crop_from_boxes(const FaceBox& mean_box, const FaceBox& union_box, int64_t height,
                                      int64_t width) {
  OfficialCrop c;
  c.mean_box = mean_box;
  c.union_box = union_box;
  // get_cstm_crop: `w*1.42 * h*1.42 < uw*1.1 * uh*1.1`, float64, left to right.
  const double mean_area = static_cast<double>(mean_box.width) * 1.42 * static_cast<double>(mean_box.height) * 1.42;
  const double union_area = static_cast<double>(union_box.width) * 1.1 * static_cast<double>(union_box.height) * 1.1;
  c.used_union = mean_area < union_area;
  c.scale = c.used_union ? 1.1 : 1.42;
  const FaceBox& b = c.used_union ? union_box : mean_box;
  int64_t x = b.x, y = b.y, w = b.width, h = b.height;
  if (w > h) {
    y -= floor_div(w - h, 2);
    h = w;
  }
  if (w < h) {
    x -= floor_div(h - w, 2);
    w = h;
  }
  int64_t xmax = x + w - 1, ymax = y + h - 1;
  const int64_t px = pad(w, c.scale), py = pad(h, c.scale);
  x -= px;
  y -= py;
  xmax += px;
  ymax += py;
  if (x < 0 || y < 0) {  // official: the near corner moves in, the far one stays (the box shrinks)
    const int64_t m = std::min(x, y);
    x -= m;
    y -= m;
  }
  if (xmax > width - 1 || ymax > height - 1) {  // official sign error: `- 1` where `+ 1` was meant
    const int64_t m = std::max(xmax - width - 1, ymax - height - 1);
    xmax -= m;
    ymax -= m;
  }
  c.xmin = x;
  c.ymin = y;
  c.xmax = xmax;
  c.ymax = ymax;
  return c;
}

OfficialCrop official_crop(const std::vector<FaceBox>& best, int64_t height, int64_t width) {
  PIXEL3DMM_CHECK_T(NoFaceFound, !best.empty(), "official crop: no frame has a face detection");
  int64_t sx = 0, sy = 0, sw = 0, sh = 0;
  FaceBox u;
  u.x = best.front().x;
  u.y = best.front().y;
  u.width = u.height = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < best.size(); ++i) {
    const auto& b = best[i];
    PIXEL3DMM_CHECK_T(NoFaceFound, static_cast<double>(b.score) >= kOfficialCropMinScore, "official crop: frame ", i,
                      ": the best face detection scores ", b.score, " < ", kOfficialCropMinScore,
                      " (the official preprocessing stops here)");
    sx += b.x;
    sy += b.y;
    sw += b.width;
    sh += b.height;
    u.x = std::min(u.x, b.x);
    u.y = std::min(u.y, b.y);
  }
  for (const auto& b : best) {
    u.width = std::max(u.width, b.width + b.x - u.x);
    u.height = std::max(u.height, b.height + b.y - u.y);
  }
  // np.mean in float64 (the integer sums are exact), then astype(np.int32): truncation toward zero.
  const double n = static_cast<double>(best.size());
  FaceBox m;
  m.x = static_cast<int32_t>(static_cast<double>(sx) / n);
  m.y = static_cast<int32_t>(static_cast<double>(sy) / n);
  m.width = static_cast<int32_t>(static_cast<double>(sw) / n);
  m.height = static_cast<int32_t>(static_cast<double>(sh) / n);
  return official_crop_from_boxes(m, u, height, width);
}

torch::Tensor official_crop_region(const torch::Tensor& image, const OfficialCrop& crop) {
  PIXEL3DMM_CHECK(image.dim() == 3 && image.scalar_type() == torch::kUInt8,
                  "official_crop_region: expected an H x W x C uint8 image, found ", shape_string(image.sizes()), " ",
                  c10::toString(image.scalar_type()));
  const auto [r0, r1] = slice_bounds(crop.ymin, crop.ymax, image.size(0));
  const auto [c0, c1] = slice_bounds(crop.xmin, crop.xmax, image.size(1));
  PIXEL3DMM_CHECK_T(NoFaceFound, r1 > r0 && c1 > c0, "official crop: the crop rows ", crop.ymin, ":", crop.ymax,
                    ", columns ", crop.xmin, ":", crop.xmax, " are empty in a ", image.size(0), " x ", image.size(1),
                    " image");
  return image.slice(0, r0, r1).slice(1, c0, c1).contiguous();
}

torch::Tensor official_crop_image(const torch::Tensor& image, const OfficialCrop& crop, int64_t size) {
  PIXEL3DMM_CHECK(size > 0, "official_crop_image: size must be positive, found ", size);
  const auto region = official_crop_region(image, crop);
  const int channels = static_cast<int>(region.size(2));
  PIXEL3DMM_CHECK(channels >= 1 && channels <= 4, "official_crop_image: expected 1 to 4 channels, found ", channels);
  cv::Mat src(static_cast<int>(region.size(0)), static_cast<int>(region.size(1)), CV_8UC(channels),
              region.data_ptr<uint8_t>());
  auto out = torch::empty({size, size, region.size(2)}, torch::kUInt8);
  cv::Mat dst(static_cast<int>(size), static_cast<int>(size), CV_8UC(channels), out.data_ptr<uint8_t>());
  cv::resize(src, dst, cv::Size(static_cast<int>(size), static_cast<int>(size)), 0, 0, cv::INTER_LINEAR);
  return out;
}

std::optional<PipnetBox> pipnet_face_box(const std::vector<FaceBox>& detections, int64_t height, int64_t width) {
  if (detections.empty() || static_cast<double>(detections.front().score) < kPipnetMinScore) return std::nullopt;
  const auto& d = detections.front();
  PipnetBox b;
  b.score = d.score;
  b.x = d.x;
  b.y = d.y;
  b.xmax = d.x + d.width - 1;
  b.ymax = d.y + d.height - 1;
  constexpr double kScale = 1.2;
  b.x -= pad(d.width, kScale);
  b.y += pad(d.height, kScale);  // official: the top moves down ("remove a part of top area, see paper")
  b.xmax += pad(d.width, kScale);
  b.ymax += pad(d.height, kScale);
  b.x = std::max<int64_t>(b.x, 0);
  b.y = std::max<int64_t>(b.y, 0);
  b.xmax = std::min<int64_t>(b.xmax, width - 1);
  b.ymax = std::min<int64_t>(b.ymax, height - 1);
  return b;
}

}  // namespace pixel3dmm::preprocess
