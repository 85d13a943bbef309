#pragma once
/// The official static crop (pixel3dmm's pipnet_utils.demo_image with static_crop and get_cstm_crop, PU:175-247) and
/// PIPNet's face box on that crop (PU:257-300), bug for bug (official-preprocessing.md sections 4 and 5.1):
///
/// - over all frames of a sequence, the mean box (float64 mean of the per-frame integer boxes, truncated to int32)
///   and the union box; scale 1.42 with the mean box unless the union box grown by 1.1 is larger (then that);
/// - square about the centre with floor division, pads `int(w * (scale - 1) / 2)` in float64 (1.42 - 1 =
///   0.41999999999999993, so w = 100 pads 20, not 21);
/// - a box reaching above or left of the image shrinks (both corners move by the same amount, the far ones stay);
///   one reaching beyond the right or bottom edge is moved by max(xmax - W - 1, ymax - H - 1) (the official sign
///   error: it can stay up to 2 px outside, and a negative amount grows the box);
/// - the crop is `image[ymin:ymax, xmin:xmax]` with numpy slice semantics (last row and column excluded, negative
///   ends counted from the end, ends clamped), then cv::resize INTER_LINEAR to 512 x 512;
/// - on the crop, the best FaceBoxes detection with score >= 0.99 gives PIPNet's box: grown by 1.2 on the left,
///   right and bottom, its top moved *down* by the same pad, clamped to the image.
///
/// Boxes are (x, y, width, height) integers as FaceBoxes returns them (FaceBox, faceboxes.h).

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "pixel3dmm/preprocess/faceboxes.h"

namespace pixel3dmm::preprocess {

/// The official static crop of a sequence: the two candidate boxes, the one used, and the crop rectangle as saved in
/// `crop_ymin_ymax_xmin_xmax.npy` (rows ymin .. ymax - 1, columns xmin .. xmax - 1 after numpy's slice rules).
struct OfficialCrop {
  FaceBox mean_box;   ///< int32-truncated mean of the per-frame boxes (score unused)
  FaceBox union_box;  ///< min x, min y, max right/bottom extent
  bool used_union = false;
  double scale = 1.42;  ///< 1.42 with the mean box, 1.1 with the union box
  int64_t ymin = 0, ymax = 0, xmin = 0, xmax = 0;
};

/// Minimum best-detection score per frame; the official stage raises below it (PU:190).
constexpr double kOfficialCropMinScore = 0.75;

/// The crop of one box pair for an image of height x width (get_cstm_crop without the cutting).
OfficialCrop official_crop_from_boxes(const FaceBox& mean_box, const FaceBox& union_box, int64_t height,
                                      int64_t width);

/// The static crop of a sequence from each frame's best detection (all frames the same height x width). Throws
/// NoFaceFound naming the frame when `best` is empty or a score is below 0.75 (compared in float64).
OfficialCrop official_crop(const std::vector<FaceBox>& best, int64_t height, int64_t width);

/// `image[ymin:ymax, xmin:xmax]` with numpy's slice semantics: bgr H x W x C uint8 -> h x w x C uint8 (a copy).
/// Throws NoFaceFound when the region is empty (the official cv2.resize would fail on it).
torch::Tensor official_crop_region(const torch::Tensor& image, const OfficialCrop& crop);

/// official_crop_region resized with cv::resize INTER_LINEAR to size x size: H x W x C uint8 -> size x size x C.
torch::Tensor official_crop_image(const torch::Tensor& image, const OfficialCrop& crop, int64_t size = 512);

/// PIPNet's face box on a crop, after clamping: columns x .. xmax, rows y .. ymax (inclusive corners, as drawn by
/// the official debug rectangle); the landmark crop is rows y .. ymax - 1, columns x .. xmax - 1.
struct PipnetBox {
  float score = 0.0f;
  int64_t x = 0, y = 0, xmax = 0, ymax = 0;
  int64_t width() const { return xmax - x + 1; }   ///< bw: the official landmark scale
  int64_t height() const { return ymax - y + 1; }  ///< bh
};

/// Minimum score of the crop's best detection for PIPNet to run on the frame (PU:277).
constexpr double kPipnetMinScore = 0.99;

/// detections (highest score first, as FaceBoxesDetector::detect returns them) on a height x width crop -> PIPNet's
/// box, or nothing when there is no detection or the best scores below 0.99 (compared in float64).
std::optional<PipnetBox> pipnet_face_box(const std::vector<FaceBox>& detections, int64_t height, int64_t width);

}  // namespace pixel3dmm::preprocess
