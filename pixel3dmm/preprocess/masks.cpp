// Masks. From labels: the official set rules, exactly. From landmarks: polygons drawn with OpenCV at the crop's
// resolution, and optionally GrabCut (a colour-model graph cut) to separate the person from the background,
// which is what valid_bg needs: the silhouette term pushes the rendered face off valid_bg.
#include "pixel3dmm/preprocess/masks.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

using ::pixel3dmm::detail::concat;

namespace {

torch::Tensor in_set(const torch::Tensor& labels, std::initializer_list<int64_t> set) {
  auto m = torch::zeros(labels.sizes(), torch::kBool);
  for (int64_t v : set) m |= labels == v;
  return m.to(torch::kFloat).unsqueeze(0);
}

using Points = std::vector<cv::Point2d>;

Points points(const torch::Tensor& landmarks) {
  auto l = landmarks.to(torch::kCPU, torch::kDouble).contiguous();
  auto a = l.accessor<double, 2>();
  Points p;
  for (int64_t i = 0; i < l.size(0); ++i) p.emplace_back(a[i][0], a[i][1]);
  return p;
}

// Drawing with 4 fractional bits keeps sub-pixel landmark positions.
constexpr int kShift = 4;
std::vector<cv::Point> fixed(const Points& p, double scale = 1.0) {
  std::vector<cv::Point> out;
  for (const auto& q : p) out.emplace_back(cvRound(q.x * scale * 16.0), cvRound(q.y * scale * 16.0));
  return out;
}

void fill(cv::Mat& mask, const Points& poly, unsigned char value, double scale = 1.0) {
  auto f = fixed(poly, scale);
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{f}, cv::Scalar(value), cv::LINE_8, kShift);
}

void fill_hull(cv::Mat& mask, const Points& pts, unsigned char value, double scale = 1.0) {
  std::vector<cv::Point> f = fixed(pts, scale), hull;
  cv::convexHull(f, hull);
  cv::fillConvexPoly(mask, hull, cv::Scalar(value), cv::LINE_8, kShift);
}

Points range(const Points& p, int from, int to) { return Points(p.begin() + from, p.begin() + to); }

/// Jaw line + brows lifted over the forehead. `d` receives the brow-to-chin distance (the face size unit).
Points region_polygon(const Points& lm, double forehead, double* d = nullptr) {
  cv::Point2d brow(0, 0);
  for (int i = 17; i < 27; ++i) brow += lm[i];
  brow *= 0.1;
  const cv::Point2d chin = lm[8];
  const double dist = cv::norm(brow - chin);
  const cv::Point2d up = dist > 0 ? (brow - chin) * (1.0 / dist) : cv::Point2d(0, -1);
  Points pts = range(lm, 0, 17);
  for (int i = 17; i < 27; ++i) pts.push_back(lm[i] + up * (forehead * dist));
  if (d) *d = dist;
  return pts;
}

cv::Mat ellipse_kernel(int radius) {
  return cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * radius + 1, 2 * radius + 1));
}

torch::Tensor to_mask_tensor(const cv::Mat& m) {
  auto t = torch::empty({1, m.rows, m.cols}, torch::kFloat);
  cv::Mat dst(m.rows, m.cols, CV_32F, t.data_ptr<float>());
  m.convertTo(dst, CV_32F, 1.0 / 255.0);
  return t;
}

void check_landmarks(const torch::Tensor& landmarks, const char* fn) {
  check_shape(landmarks, {68, 2}, std::string(fn) + ": landmarks");
  check_finite(landmarks, std::string(fn) + ": landmarks");
}

}  // namespace

FaceMasks masks_from_segmentation(const torch::Tensor& labels, bool big_normal_mask) {
  PIXEL3DMM_CHECK(labels.defined(), "masks_from_segmentation: labels are undefined");
  torch::Tensor l = labels.to(torch::kCPU);
  if (l.dim() == 3 && l.size(2) == 3 && l.size(0) != 1) l = l.select(2, 0);  // H x W x 3: channel 0
  if (l.dim() == 3 && l.size(0) == 1) l = l[0];
  PIXEL3DMM_CHECK(l.dim() == 2 && l.size(0) > 0 && l.size(1) > 0,
                  "masks_from_segmentation: labels: expected H x W, 1 x H x W or H x W x 3, found ",
                  shape_string(labels.sizes()));
  if (l.is_floating_point()) {
    check_finite(l, "masks_from_segmentation: labels");
    PIXEL3DMM_CHECK(torch::equal(l, l.round()), "masks_from_segmentation: labels: expected whole-number labels");
  } else {
    PIXEL3DMM_CHECK(l.scalar_type() != torch::kBool,
                    "masks_from_segmentation: labels: expected integer labels, "
                    "found bool");
  }
  l = l.to(torch::kLong);
  FaceMasks m;
  m.uv_mask = in_set(l, {2, 6, 7, 10, 12, 13, 1, 4, 5});
  m.normal_mask =
      big_normal_mask ? in_set(l, {2, 6, 7, 10, 12, 13, 11, 1, 4, 5}) : in_set(l, {2, 6, 7, 10, 12, 13, 11});
  m.fg_mask = in_set(l, {2, 6, 7, 8, 9, 10, 12, 13});
  m.valid_bg = (l <= 1).to(torch::kFloat).unsqueeze(0);
  return m;
}

torch::Tensor read_segmentation(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw FileNotFound(concat(path, ": segmentation label image not found"));
  }
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw FormatError(concat(path, ": cannot decode the segmentation image (OpenCV: ", e.err, ")"));
  }
  PIXEL3DMM_CHECK_FORMAT(!m.empty(), path, "not an image OpenCV can decode (expected a label PNG)");
  PIXEL3DMM_CHECK_FORMAT(m.depth() == CV_8U || m.depth() == CV_16U, path,
                         "expected an 8- or 16-bit label image, found OpenCV depth code ", m.depth());
  if (m.channels() >= 3) {
    // The official reader takes channel 0 of the PIL (RGB) image: red, OpenCV's channel 2.
    cv::Mat ch;
    cv::extractChannel(m, ch, 2);
    m = ch;
  } else if (m.channels() == 2) {
    cv::Mat ch;
    cv::extractChannel(m, ch, 0);
    m = ch;
  }
  cv::Mat wide;
  m.convertTo(wide, CV_32S);
  auto t = torch::empty({wide.rows, wide.cols}, torch::kInt);
  std::memcpy(t.data_ptr<int>(), wide.ptr<int>(), sizeof(int) * wide.total());
  return t.to(torch::kLong);
}

torch::Tensor labels_in_crop(const torch::Tensor& labels, const torch::Tensor& affine, int64_t image_height,
                             int64_t image_width, int64_t size, const std::string& what) {
  PIXEL3DMM_CHECK(labels.defined() && labels.dim() == 2 && labels.size(0) > 0 && labels.size(1) > 0, what,
                  ": expected an H x W label image, found ",
                  labels.defined() ? shape_string(labels.sizes()) : std::string("undefined"));
  PIXEL3DMM_CHECK(size > 0, what, ": expected a positive crop size, found ", size);
  const int64_t h = labels.size(0), w = labels.size(1);
  torch::Tensor l = labels.to(torch::kCPU, torch::kLong);
  if (h == image_height && w == image_width) {
    check_shape(affine, {2, 3}, what + ": affine");
    cv::Mat src;
    torch::Tensor lf = l.to(torch::kFloat).contiguous();
    cv::Mat(static_cast<int>(h), static_cast<int>(w), CV_32F, lf.data_ptr<float>()).copyTo(src);
    torch::Tensor A = affine.to(torch::kCPU, torch::kDouble).contiguous();
    cv::Mat M(2, 3, CV_64F, A.data_ptr<double>());
    auto out = torch::empty({size, size}, torch::kFloat);
    cv::Mat dst(static_cast<int>(size), static_cast<int>(size), CV_32F, out.data_ptr<float>());
    cv::warpAffine(src, dst, M, dst.size(), cv::INTER_NEAREST, cv::BORDER_CONSTANT,
                   cv::Scalar(static_cast<double>(kUnparsedLabel)));
    return out.round().to(torch::kLong);
  }
  if (h != w) {
    throw ValueError(concat(what, ": a label image of ", w, " x ", h, " pixels fits neither the photo (",
                            image_width, " x ", image_height, ") nor a square crop"));
  }
  // Pillow's NEAREST (what the official tracker resizes seg_og with): source pixel floor((i + 0.5) * h / size).
  auto idx = ((torch::arange(size, torch::kDouble) + 0.5) * (static_cast<double>(h) / static_cast<double>(size)))
                 .floor()
                 .clamp(0, h - 1)
                 .to(torch::kLong);
  return l.index_select(0, idx).index_select(1, idx).contiguous();
}

torch::Tensor face_region(const torch::Tensor& landmarks, int64_t height, int64_t width, double forehead) {
  check_landmarks(landmarks, "face_region");
  PIXEL3DMM_CHECK(height > 0 && width > 0, "face_region: expected a positive size, found ", height, " x ", width);
  PIXEL3DMM_CHECK(std::isfinite(forehead) && forehead >= 0, "face_region: forehead: expected >= 0, found ", forehead);
  cv::Mat m = cv::Mat::zeros(static_cast<int>(height), static_cast<int>(width), CV_8U);
  fill_hull(m, region_polygon(points(landmarks), forehead), 255);
  return to_mask_tensor(m);
}

FaceMasks masks_from_landmarks(const torch::Tensor& image, const torch::Tensor& landmarks,
                               const LandmarkMaskOptions& options) {
  check_shape(image, {1, 3, -1, -1}, "masks_from_landmarks: image");
  PIXEL3DMM_CHECK(image.is_floating_point(), "masks_from_landmarks: image: expected a float tensor in [0, 1]");
  check_landmarks(landmarks, "masks_from_landmarks");
  PIXEL3DMM_CHECK(std::isfinite(options.forehead) && options.forehead >= 0,
                  "LandmarkMaskOptions.forehead: expected >= 0, found ", options.forehead);
  PIXEL3DMM_CHECK(options.grabcut_iterations >= 1, "LandmarkMaskOptions.grabcut_iterations: expected >= 1, found ",
                  options.grabcut_iterations);
  PIXEL3DMM_CHECK(options.grabcut_size >= 16, "LandmarkMaskOptions.grabcut_size: expected >= 16, found ",
                  options.grabcut_size);
  PIXEL3DMM_CHECK(std::isfinite(options.bg_margin) && options.bg_margin >= 0,
                  "LandmarkMaskOptions.bg_margin: expected >= 0, found ", options.bg_margin);
  const int H = static_cast<int>(image.size(2)), W = static_cast<int>(image.size(3));
  const Points lm = points(landmarks);
  double d = 0;
  const Points region_poly = region_polygon(lm, options.forehead, &d);

  cv::Mat region = cv::Mat::zeros(H, W, CV_8U);
  fill_hull(region, region_poly, 255);
  cv::Mat eyes = cv::Mat::zeros(H, W, CV_8U);
  fill(eyes, range(lm, 36, 42), 255);
  fill(eyes, range(lm, 42, 48), 255);
  cv::Mat mouth = cv::Mat::zeros(H, W, CV_8U);
  fill(mouth, range(lm, 60, 68), 255);
  const int margin = std::max(1, static_cast<int>(std::lround(options.bg_margin * d)));

  cv::Mat face = region, valid_bg;
  if (options.grabcut) {
    // GrabCut at a small working size: its cost grows with the pixel count, the masks need no fine detail.
    const double f = std::min(1.0, static_cast<double>(options.grabcut_size) / std::max(H, W));
    const int h = std::max(8, static_cast<int>(std::lround(H * f))),
              w = std::max(8, static_cast<int>(std::lround(W * f)));
    const double fx = static_cast<double>(w) / W, fy = static_cast<double>(h) / H;
    torch::Tensor hwc = (image[0].to(torch::kCPU, torch::kFloat).clamp(0, 1) * 255.0f)
                            .round()
                            .to(torch::kUInt8)
                            .permute({1, 2, 0})
                            .contiguous();
    cv::Mat rgb(H, W, CV_8UC3, hwc.data_ptr()), small;
    cv::resize(rgb, small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    cv::Mat gc(h, w, CV_8U, cv::Scalar(cv::GC_PR_BGD));
    // Top, left and right borders: background (the crop shows the head with room around it); the bottom edge
    // usually cuts through neck and clothes, so it stays undecided.
    const int band = std::max(1, static_cast<int>(std::lround(0.03 * std::max(h, w))));
    gc.rowRange(0, band).setTo(cv::GC_BGD);
    gc.colRange(0, band).setTo(cv::GC_BGD);
    gc.colRange(w - band, w).setTo(cv::GC_BGD);
    cv::Mat small_region;
    cv::resize(region, small_region, cv::Size(w, h), 0, 0, cv::INTER_NEAREST);
    gc.setTo(cv::GC_PR_FGD, small_region);
    // The landmarks' own hull (brows to chin) is certainly the person.
    cv::Mat core = cv::Mat::zeros(h, w, CV_8U);
    Points lm_small;
    for (const auto& p : lm) lm_small.emplace_back(p.x * fx, p.y * fy);
    fill_hull(core, lm_small, 255);
    cv::erode(core, core, ellipse_kernel(std::max(1, static_cast<int>(std::lround(0.03 * d * fx)))));
    gc.setTo(cv::GC_FGD, core);
    cv::Mat bgd_model, fgd_model;
    const cv::RNG saved = cv::theRNG();
    cv::theRNG() = cv::RNG(options.seed + 0x9E3779B97F4A7C15ull);
    try {
      cv::grabCut(small, gc, cv::Rect(), bgd_model, fgd_model, options.grabcut_iterations, cv::GC_INIT_WITH_MASK);
    } catch (const cv::Exception& e) {
      cv::theRNG() = saved;
      throw Error(concat("masks_from_landmarks: GrabCut failed (OpenCV: ", e.err, ")"));
    }
    cv::theRNG() = saved;
    cv::Mat person_small = (gc == cv::GC_FGD) | (gc == cv::GC_PR_FGD), person;
    cv::resize(person_small, person, cv::Size(W, H), 0, 0, cv::INTER_LINEAR);
    cv::threshold(person, person, 127, 255, cv::THRESH_BINARY);
    // The face: the landmark region where GrabCut sees the person (the hull itself always counts).
    cv::Mat hull = cv::Mat::zeros(H, W, CV_8U);
    fill_hull(hull, lm, 255);
    face = (region & person) | hull;
    cv::Mat bg = ~person;
    cv::erode(bg, bg, ellipse_kernel(std::max(1, margin / 2)));
    cv::Mat grown;
    cv::dilate(region, grown, ellipse_kernel(margin));
    valid_bg = bg & ~grown;
  } else {
    cv::Mat grown;
    cv::dilate(region, grown, ellipse_kernel(margin));
    valid_bg = ~grown;
  }
  FaceMasks m;
  m.uv_mask = to_mask_tensor(face & ~eyes & ~mouth);
  m.normal_mask = to_mask_tensor(face & ~eyes);
  m.fg_mask = to_mask_tensor(face & ~mouth);
  m.valid_bg = to_mask_tensor(valid_bg);
  return m;
}

}  // namespace pixel3dmm::preprocess
