// Pupils: the iris and pupil are the darkest part of an open eye (sclera and skin are brighter). Each eye is
// resampled to a fixed width so the smoothing and the contour shrink do not depend on the face size.
#include "pixel3dmm/preprocess/pupils.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

namespace {

constexpr double kEyeWidth = 48.0;  // eye corner to corner after resampling (pixels)

cv::Point2d contour_centroid(const std::vector<cv::Point2d>& poly) {
  std::vector<cv::Point2f> f(poly.begin(), poly.end());
  const cv::Moments m = cv::moments(f);
  if (std::abs(m.m00) > 1e-9) return {m.m10 / m.m00, m.m01 / m.m00};
  cv::Point2d c(0, 0);
  for (const auto& p : poly) c += p;
  return c * (1.0 / static_cast<double>(poly.size()));
}

bool inside(const std::vector<cv::Point2d>& poly, cv::Point2d p) {
  std::vector<cv::Point2f> f(poly.begin(), poly.end());
  return cv::pointPolygonTest(f, cv::Point2f(static_cast<float>(p.x), static_cast<float>(p.y)), false) >= 0;
}

cv::Point2d locate_one(const cv::Mat& gray, const std::vector<cv::Point2d>& poly, const PupilOptions& opt,
                       PupilMethod& method) {
  method = PupilMethod::ContourCentroid;
  const cv::Point2d centroid = contour_centroid(poly);
  const double width = cv::norm(poly[0] - poly[3]);
  if (!(width > 1.0)) return centroid;
  // Eye neighbourhood resampled so the corners are kEyeWidth apart: eye pixel p -> (p - origin) * s.
  const double s = kEyeWidth / width;
  double minx = 1e30, miny = 1e30, maxx = -1e30, maxy = -1e30;
  for (const auto& p : poly) {
    minx = std::min(minx, p.x), maxx = std::max(maxx, p.x), miny = std::min(miny, p.y), maxy = std::max(maxy, p.y);
  }
  const double pad = 0.25 * width;
  const cv::Point2d origin(minx - pad, miny - pad);
  const int w = static_cast<int>(std::ceil((maxx - minx + 2 * pad) * s)) + 1;
  const int h = static_cast<int>(std::ceil((maxy - miny + 2 * pad) * s)) + 1;
  cv::Mat M = (cv::Mat_<double>(2, 3) << s, 0, -origin.x * s, 0, s, -origin.y * s);
  cv::Mat patch;
  cv::warpAffine(gray, patch, M, cv::Size(w, h), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::GaussianBlur(patch, patch, cv::Size(0, 0), 1.5);

  std::vector<cv::Point> local;
  for (const auto& p : poly) local.emplace_back(cvRound((p.x - origin.x) * s), cvRound((p.y - origin.y) * s));
  cv::Mat mask = cv::Mat::zeros(h, w, CV_8U);
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{local}, cv::Scalar(255));
  // Shrink away from the lids: lashes and lid shadows are as dark as the iris.
  cv::Mat shrunk;
  cv::erode(mask, shrunk, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(5, 5)));
  if (cv::countNonZero(shrunk) >= 12) mask = shrunk;
  std::vector<float> values;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (mask.at<unsigned char>(y, x)) values.push_back(patch.at<float>(y, x));
    }
  }
  if (values.size() < 6) return centroid;
  std::vector<float> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double q) { return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1))]; };
  if (pct(0.9) - pct(0.1) < opt.min_contrast) return centroid;
  const float thr = pct(std::clamp(opt.dark_fraction, 0.01, 1.0));
  double sw = 0, sx = 0, sy = 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (!mask.at<unsigned char>(y, x)) continue;
      const double v = patch.at<float>(y, x);
      if (v > thr) continue;
      const double wgt = (thr - v) + 1e-3;
      sw += wgt, sx += wgt * x, sy += wgt * y;
    }
  }
  if (!(sw > 0)) return centroid;
  const cv::Point2d found(sx / sw / s + origin.x, sy / sw / s + origin.y);
  if (!inside(poly, found)) return centroid;
  method = PupilMethod::DarkCentroid;
  return found;
}

}  // namespace

torch::Tensor locate_pupils(const torch::Tensor& image, const torch::Tensor& landmarks, const PupilOptions& options,
                            PupilMethod* methods) {
  check_shape(image, {1, -1, -1, -1}, "locate_pupils: image");
  PIXEL3DMM_CHECK(image.size(1) == 1 || image.size(1) == 3, "locate_pupils: image: expected 1 or 3 channels, found ",
                  image.size(1));
  PIXEL3DMM_CHECK(image.is_floating_point(), "locate_pupils: image: expected a float tensor in [0, 1], found ",
                  image.scalar_type());
  check_shape(landmarks, {68, 2}, "locate_pupils: landmarks");
  check_finite(landmarks, "locate_pupils: landmarks");
  torch::Tensor img = image[0].to(torch::kCPU, torch::kFloat);
  torch::Tensor gray =
      img.size(0) == 3 ? (img * torch::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1})).sum(0) : img[0];
  gray = gray.contiguous();
  const cv::Mat g(static_cast<int>(gray.size(0)), static_cast<int>(gray.size(1)), CV_32F, gray.data_ptr<float>());
  auto l = landmarks.to(torch::kCPU, torch::kDouble).contiguous();
  auto a = l.accessor<double, 2>();
  std::vector<cv::Point2d> eyes[2];
  for (int e = 0; e < 2; ++e) {
    for (int i = 0; i < 6; ++i) eyes[e].emplace_back(a[36 + 6 * e + i][0], a[36 + 6 * e + i][1]);
  }
  // iBUG 36-41 is the subject's right eye, on the image's left in an unmirrored photo; order by x to be sure.
  auto mean_x = [](const std::vector<cv::Point2d>& p) {
    double s = 0;
    for (const auto& q : p) s += q.x;
    return s;
  };
  if (mean_x(eyes[0]) > mean_x(eyes[1])) std::swap(eyes[0], eyes[1]);
  auto out = torch::empty({2, 2}, torch::kFloat);
  for (int e = 0; e < 2; ++e) {
    PupilMethod m;
    const cv::Point2d p = locate_one(g, eyes[e], options, m);
    out[e][0] = static_cast<float>(p.x);
    out[e][1] = static_cast<float>(p.y);
    if (methods) methods[e] = m;
  }
  return out;
}

}  // namespace pixel3dmm::preprocess
