// Square crops. The box is computed in whole pixels as the official code does (its crop is an integer slice),
// so the affine between image and crop is a pure scale + translation.
#include "pixel3dmm/preprocess/crop.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

CropBox crop_box_from_landmarks(const torch::Tensor& landmarks, int64_t image_height, int64_t image_width,
                                const CropOptions& options) {
  check_shape(landmarks, {68, 2}, "crop_box_from_landmarks: landmarks");
  check_finite(landmarks, "crop_box_from_landmarks: landmarks");
  PIXEL3DMM_CHECK(image_height > 0 && image_width > 0, "crop_box_from_landmarks: empty image ", image_height, " x ",
                  image_width);
  PIXEL3DMM_CHECK(options.size > 0, "CropOptions.size: expected > 0, found ", options.size);
  PIXEL3DMM_CHECK(options.scale > 0 && std::isfinite(options.scale), "CropOptions.scale: expected > 0, found ",
                  options.scale);
  PIXEL3DMM_CHECK(std::isfinite(options.shift_up), "CropOptions.shift_up: expected a finite number");
  auto l = landmarks.to(torch::kCPU, torch::kDouble);
  const auto lo = std::get<0>(l.min(0)), hi = std::get<0>(l.max(0));
  const double x0 = lo[0].item<double>(), y0 = lo[1].item<double>();
  const double x1 = hi[0].item<double>(), y1 = hi[1].item<double>();
  const double extent = std::max({x1 - x0, y1 - y0, 1.0});
  const double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1) - options.shift_up * extent;
  CropBox box;
  box.side = std::max<int64_t>(1, std::llround(options.scale * extent));
  // Centre of pixels x0 .. x0 + side - 1 is x0 + (side - 1) / 2.
  box.x0 = std::llround(cx - 0.5 * (box.side - 1));
  box.y0 = std::llround(cy - 0.5 * (box.side - 1));
  if (options.keep_inside) {
    // Per axis: move back inside when the square fits that axis; otherwise centre it on the image (the official
    // code would cut a non-square slice and stretch it, distorting the face; we pad instead).
    auto fit = [&](int64_t& start, int64_t length) {
      if (box.side <= length) {
        start = std::clamp<int64_t>(start, 0, length - box.side);
      } else {
        start = -(box.side - length) / 2;
      }
    };
    fit(box.x0, image_width);
    fit(box.y0, image_height);
  }
  return box;
}

torch::Tensor crop_affine(const CropBox& box, int64_t size) {
  PIXEL3DMM_CHECK(box.side > 0 && size > 0, "crop_affine: expected a positive box side and size, found ", box.side,
                  " and ", size);
  const double a = static_cast<double>(size) / static_cast<double>(box.side);
  return torch::tensor({a, 0.0, (0.5 - static_cast<double>(box.x0)) * a - 0.5,  //
                        0.0, a, (0.5 - static_cast<double>(box.y0)) * a - 0.5},
                       torch::kDouble)
      .view({2, 3});
}

torch::Tensor crop_image(const torch::Tensor& image, const CropBox& box, int64_t size) {
  check_shape(image, {1, -1, -1, -1}, "crop_image: image");
  PIXEL3DMM_CHECK(image.is_floating_point(), "crop_image: image: expected a float tensor, found ", image.scalar_type());
  PIXEL3DMM_CHECK(box.side > 0 && size > 0, "crop_image: expected a positive box side and size, found ", box.side,
                  " and ", size);
  const int64_t C = image.size(1), H = image.size(2), W = image.size(3);
  PIXEL3DMM_CHECK(C >= 1 && C <= 4, "crop_image: image: expected 1 to 4 channels, found ", C);
  const int cv_type = CV_32FC(static_cast<int>(C));
  // Only the part of the box inside the image is converted; the rest of the square stays black.
  const int64_t ix0 = std::max<int64_t>(box.x0, 0), iy0 = std::max<int64_t>(box.y0, 0);
  const int64_t ix1 = std::min(box.x0 + box.side, W), iy1 = std::min(box.y0 + box.side, H);
  cv::Mat square = cv::Mat::zeros(static_cast<int>(box.side), static_cast<int>(box.side), cv_type);
  if (ix1 > ix0 && iy1 > iy0) {
    torch::Tensor part =
        image[0].slice(1, iy0, iy1).slice(2, ix0, ix1).to(torch::kCPU, torch::kFloat).permute({1, 2, 0}).contiguous();
    cv::Mat src(static_cast<int>(iy1 - iy0), static_cast<int>(ix1 - ix0), cv_type, part.data_ptr<float>());
    src.copyTo(square(cv::Rect(static_cast<int>(ix0 - box.x0), static_cast<int>(iy0 - box.y0), src.cols, src.rows)));
  }
  auto out = torch::empty({size, size, C}, torch::kFloat);
  cv::Mat dst(static_cast<int>(size), static_cast<int>(size), cv_type, out.data_ptr<float>());
  if (box.side == size) {
    square.copyTo(dst);
  } else {
    cv::resize(square, dst, dst.size(), 0, 0, box.side > size ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  return out.permute({2, 0, 1}).unsqueeze(0).contiguous().to(image.device());
}

torch::Tensor apply_affine(const torch::Tensor& points, const torch::Tensor& affine) {
  check_shape(affine, {2, 3}, "apply_affine: affine");
  PIXEL3DMM_CHECK(points.dim() >= 1 && points.size(-1) == 2, "apply_affine: points: expected ... x 2, found ",
                  shape_string(points.sizes()));
  auto A = affine.to(points.device(), torch::kDouble);
  auto p = points.to(torch::kDouble);
  auto out = torch::matmul(p, A.slice(1, 0, 2).t()) + A.select(1, 2);
  return out.to(points.scalar_type());
}

torch::Tensor invert_affine(const torch::Tensor& affine) {
  check_shape(affine, {2, 3}, "invert_affine: affine");
  auto A = affine.to(torch::kCPU, torch::kDouble).contiguous();
  auto M = A.slice(1, 0, 2);
  const double det = torch::det(M).item<double>();
  PIXEL3DMM_CHECK(std::isfinite(det) && std::abs(det) > 1e-12, "invert_affine: singular affine (determinant ", det,
                  ")");
  auto Mi = torch::inverse(M);
  auto t = -torch::matmul(Mi, A.select(1, 2));
  return torch::cat({Mi, t.unsqueeze(1)}, 1);
}

}  // namespace pixel3dmm::preprocess
