#pragma once
/// insightface's SCRFD-10G five-point face detector (antelopev2 `scrfd_10g_bnkps.onnx`) as MICA's preprocessing
/// runs it through insightface's `RetinaFace` class (official-preprocessing.md 6.2): the image resized into the
/// top-left of a 224 x 224 canvas, the network run by OpenCV's DNN module, anchor decoding, the 0.5 score
/// threshold, NMS at 0.4, and the face nearest the image centre (MICA's get_center).
///
/// Arithmetic follows the official numpy 1.x code: decoding, the threshold, the division by det_scale and NMS in
/// float32; both argsorts in NumPy's tie order (preprocess/detail/numpy_argsort.h); the centre distance in float64.
/// The network itself agrees with ONNX Runtime (the official run) to float tolerance only (spec 9.4).

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace pixel3dmm::identity {

/// Kept detections in NMS order (descending score, NumPy's order among ties), in image pixels.
struct ScrfdDetections {
  torch::Tensor boxes;      ///< N x 4 float32: x1, y1, x2, y2
  torch::Tensor scores;     ///< N float32 (sigmoid probabilities)
  torch::Tensor keypoints;  ///< N x 5 x 2 float32: image-left eye, image-right eye, nose, left / right mouth corner
};

/// The network input for an image: `blob` 1 x 3 x S x S float32 = (RGB - 127.5) / 128 of the image resized
/// (cv::resize, bilinear) into the top-left of a zero S x S canvas keeping its aspect ratio, and the scale
/// `det_scale` = resized height / image height (float64, as Python computes it).
struct ScrfdInput {
  torch::Tensor blob;
  double det_scale = 1.0;
};

/// image_rgb: H x W x 3 uint8 RGB -> the blob and scale insightface's RetinaFace.detect builds (input_size S).
ScrfdInput scrfd_input(const torch::Tensor& image_rgb, int64_t input_size = 224);

/// Decodes the nine raw outputs, in the file's order: scores for strides 8, 16, 32 ((S/s)^2 * 2 x 1), box
/// distances (... x 4), keypoint distances (... x 10); each may carry a leading batch dimension of 1. Anchor
/// centres (x s, y s), two per cell, row-major; keep score >= threshold; divide by det_scale (float32); NMS keeps a
/// box while its overlap with every better kept box is <= nms_threshold. ValueError for wrong counts or shapes.
ScrfdDetections decode_scrfd(const std::vector<torch::Tensor>& outputs, int64_t input_size, float det_scale,
                             float threshold = 0.5f, float nms_threshold = 0.4f);

/// The ONNX detector run with OpenCV's DNN module. OpenCV 4.6 cannot import a graph whose input height and width
/// are dynamic (as in scrfd_10g_bnkps.onnx), so the file is read once and its input fixed to 1 x 3 x S x S
/// (S = 224 as the official code runs it, or the file's own static size) before import.
class ScrfdDetector {
 public:
  /// FileNotFound for a missing file; FormatError naming the file when it is not an ONNX model, OpenCV cannot
  /// import it, or it does not have nine outputs of the shapes above (checked by one run on a zero input).
  explicit ScrfdDetector(const std::string& onnx_path);

  /// image_rgb: H x W x 3 uint8 RGB -> the kept detections, in image pixels.
  ScrfdDetections detect(const torch::Tensor& image_rgb, float threshold = 0.5f, float nms_threshold = 0.4f);

  /// blob: 1 x 3 x S x S float32 -> the nine raw outputs, in the file's order, without the batch dimension.
  std::vector<torch::Tensor> forward(const torch::Tensor& blob);

  /// S, the square input size the network runs at.
  int64_t input_size() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// The detection whose box centre (x1 + |x2 - x1| / 2, y1 + |y2 - y1| / 2) is nearest (Euclidean, float64) to
/// (width // 2, height // 2); the first one on ties; -1 when there is none.
int64_t centre_face(const ScrfdDetections& detections, int64_t height, int64_t width);

/// image_rgb: H x W x 3 uint8 RGB -> 5 x 2 float32 keypoints of the centre face; an undefined tensor when no face
/// is detected (the official preprocessing then skips the frame).
torch::Tensor detect_five_keypoints(ScrfdDetector& detector, const torch::Tensor& image_rgb);

}  // namespace pixel3dmm::identity
