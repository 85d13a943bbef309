#pragma once
/// Pupil centres from the image inside dlib's eye contours: the official iris term uses WFLW points 96/97 (the
/// pupils), which the iBUG 68 lack.

#include <torch/types.h>

namespace pixel3dmm::preprocess {

struct PupilOptions {
  /// The darkest this fraction of the pixels inside the (slightly shrunk) eye contour vote for the pupil.
  double dark_fraction = 0.2;
  /// Below this spread of brightness inside the eye (90th - 10th percentile, image in [0, 1]) the eye shows no
  /// usable iris (closed, blurred, overexposed) and the contour's centroid is returned.
  double min_contrast = 0.04;
};

/// How each pupil was found.
enum class PupilMethod { DarkCentroid, ContourCentroid };

/// image: 1 x 3 x H x W (or 1 x 1 x H x W) float in [0, 1]; landmarks: 68 x 2 iBUG (same pixels) -> 2 x 2 float32
/// (x, y) pupil centres, the image-left eye first (WFLW 96 then 97, as the official fitter). Each is the
/// darkness-weighted centroid of the darkest pixels inside the eye's 6-point contour after smoothing, or the
/// contour's centroid when the eye shows no contrast; always inside the contour. `methods` (optional) receives
/// how each was found.
torch::Tensor locate_pupils(const torch::Tensor& image, const torch::Tensor& landmarks,
                            const PupilOptions& options = {}, PupilMethod* methods = nullptr);

}  // namespace pixel3dmm::preprocess
