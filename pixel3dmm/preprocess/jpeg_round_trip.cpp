#include "pixel3dmm/preprocess/jpeg_round_trip.h"

#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

torch::Tensor jpeg_round_trip(const torch::Tensor& image, int quality) {
  check_shape(image, {-1, -1, 3}, "jpeg_round_trip: image");
  check_dtype(image, torch::kUInt8, "jpeg_round_trip: image");
  PIXEL3DMM_CHECK(quality >= 1 && quality <= 100, "jpeg_round_trip: quality must lie in [1, 100], found ", quality);
  const torch::Tensor src = image.contiguous();
  const cv::Mat mat(static_cast<int>(src.size(0)), static_cast<int>(src.size(1)), CV_8UC3, src.data_ptr());
  std::vector<uchar> bytes;
  PIXEL3DMM_CHECK_T(Error, cv::imencode(".jpg", mat, bytes, {cv::IMWRITE_JPEG_QUALITY, quality}),
                    "jpeg_round_trip: OpenCV could not encode a ", src.size(1), " x ", src.size(0), " image as JPEG");
  const cv::Mat back = cv::imdecode(bytes, cv::IMREAD_COLOR);
  PIXEL3DMM_CHECK_T(Error, !back.empty() && back.rows == mat.rows && back.cols == mat.cols && back.isContinuous(),
                    "jpeg_round_trip: OpenCV could not decode its own JPEG");
  torch::Tensor out = torch::empty_like(src);
  std::memcpy(out.data_ptr(), back.data, static_cast<size_t>(out.numel()));
  return out;
}

}  // namespace pixel3dmm::preprocess
