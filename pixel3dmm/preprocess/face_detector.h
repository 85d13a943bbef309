#pragma once
/// Face detection and 68 iBUG landmarks with dlib (HOG frontal face detector + the 68-point shape predictor).
/// dlib stays inside face_detector.cpp: no dlib header reaches users of this one.

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace pixel3dmm::preprocess {

/// The landmark model used when none is named: $PIXEL3DMM_DLIB_LANDMARKS if set, else Debian's libdlib-data file
/// /usr/share/dlib/shape_predictor_68_face_landmarks.dat.
std::string default_landmark_model_path();

struct FaceDetectorOptions {
  /// dlib shape_predictor file (68 iBUG points); empty = default_landmark_model_path().
  std::string landmark_model;
  /// Detection runs on a copy whose long side is at most this (pixels); boxes and landmarks are scaled back.
  /// Landmarks are then refined on the full-resolution image. <= 0: never downscale.
  int64_t detect_max_side = 1024;
  /// Times the detector upsamples the (possibly downscaled) image by 2 to find small faces: -1 = automatic (once
  /// when the detection copy's long side is below 800 px, else none), otherwise 0, 1 or 2.
  int upsample = -1;
  /// Minimum detector score (dlib's SVM margin; 0 is dlib's default threshold, negative finds more faces).
  double min_score = 0.0;
};

/// One face: box and landmarks in the input image's pixel coordinates (x right, y down, pixel centres at
/// integers, as dlib).
struct Face {
  /// x0, y0, x1, y1 (x1, y1 exclusive), float32 (4).
  torch::Tensor box;
  /// The detector's score (larger = more confident).
  double score = 0.0;
  /// 68 x 2 float32 (x, y), iBUG order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth).
  torch::Tensor landmarks;
  /// Box area in pixels (the sort key of detect()).
  double area() const;
};

/// dlib's HOG detector and shape predictor. Loading the 100 MB landmark model takes about a second; keep one
/// detector for many images. Not thread-safe (dlib's objects hold scratch state); use one per thread.
class FaceDetector {
 public:
  /// Loads the landmark model. Throws FileNotFound (missing file) or FormatError (not a dlib shape predictor),
  /// both naming the path.
  explicit FaceDetector(const FaceDetectorOptions& options = {});
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  FaceDetector& operator=(FaceDetector&&) noexcept;

  /// image: 1 x 3 x H x W (or 3 x H x W) float in [0, 1] -> every face, largest box first (ties: higher score).
  std::vector<Face> detect(const torch::Tensor& image) const;

  /// Landmarks for a given box (x0, y0, x1, y1 in image pixels): 68 x 2 float32. For boxes from another detector.
  torch::Tensor landmarks(const torch::Tensor& image, const torch::Tensor& box) const;

  const FaceDetectorOptions& options() const;
  /// The landmark model file actually loaded.
  const std::string& landmark_model_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pixel3dmm::preprocess
