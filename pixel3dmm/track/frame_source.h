#pragma once
/// Frames in: a video file (OpenCV's reader) or an image folder (files sorted by name), read one at a time; and the
/// front end that turns them into the tracker's per-frame targets (detect -> temporally stable crop -> masks,
/// pupils -> network predictions in batches).

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pixel3dmm/fit/params.h"
#include "pixel3dmm/predict/predictor.h"
#include "pixel3dmm/preprocess/preprocess.h"

namespace pixel3dmm::track {

/// The image files of a folder (png, jpg, jpeg, bmp, tif, tiff, webp; case-insensitive), sorted by name.
std::vector<std::string> list_image_files(const std::string& folder);

class FrameSource {
 public:
  /// path: a folder of images or a video file. every: keep every n-th frame; max_frames: stop after that many kept
  /// frames (< 0: all). Throws FileNotFound for a missing path, ValueError for an empty folder or a file OpenCV
  /// cannot open as a video (naming it).
  explicit FrameSource(const std::string& path, int64_t every = 1, int64_t max_frames = -1);
  ~FrameSource();
  FrameSource(FrameSource&&) noexcept;
  FrameSource& operator=(FrameSource&&) noexcept;

  /// The next frame as 1 x 3 x H x W float32 RGB in [0, 1]; false at the end.
  bool next(torch::Tensor& frame);
  /// Frames returned so far.
  int64_t count() const;
  bool is_video() const;
  /// Frames per second of the video (25 for folders, or when the file does not say).
  double fps() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A crop square per frame made temporally stable: the centre and side of each frame's box replaced by their
/// median over a window of 2 * radius + 1 frames (clamped at the ends), which removes detector jitter and single
/// outlier detections while following real head motion with at most `radius` frames of lag on its start.
std::vector<preprocess::CropBox> smooth_boxes(const std::vector<preprocess::CropBox>& boxes, int radius);

/// FaceBoxes' boxes made temporally stable as smooth_boxes does: centre, width and height replaced by their median
/// over 2 * radius + 1 frames (rounded to integers, as FaceBoxes' boxes are). Scores are kept.
std::vector<preprocess::FaceBox> smooth_face_boxes(const std::vector<preprocess::FaceBox>& boxes, int radius);

struct FrontEndOptions {
  int64_t every = 1;         ///< keep every n-th frame
  int64_t max_frames = -1;   ///< < 0: all frames
  /// "official": one static crop for all frames by the official sequence rule (preprocess::official_crop over every
  /// frame's best FaceBoxes box; needs the preprocessor's crop "official"); "smoothed": a crop per frame, its box
  /// smoothed over smooth_radius frames (FaceBoxes' boxes and the official rule per frame with crop "official",
  /// else dlib's landmark boxes); "auto": official when the preprocessor has FaceBoxes, else smoothed.
  std::string crop = "auto";
  int smooth_radius = 3;     ///< crop smoothing window radius (frames); 0 = per-frame crops
  /// Mask method "parser": write each frame's label map here as <source index>.png (%05d, the official seg_og
  /// layout: 8-bit, crop_size square). Empty: not written.
  std::string label_folder;
  int predict_batch = 8;     ///< frames per network call
  int64_t map_size = 0;      ///< targets' map size (> 0 resizes the predictions once; the fit resizes to its S anyway)
};

/// The targets of every frame, and what was used to make them.
struct VideoTargets {
  std::vector<fit::FitTarget> frames;
  std::vector<preprocess::CropBox> detected_boxes;  ///< per frame, from that frame's landmarks
  std::vector<preprocess::CropBox> boxes;           ///< after smoothing: the crops the network saw
  std::vector<bool> detected;                       ///< false: no face found, the nearest frame's landmarks used
  double fps = 25.0;
  std::string crop_method;      ///< "official-sequence" (one static crop), "official-smoothed" or "landmarks-smoothed"
  std::string landmark_method;  ///< "dlib" or "pipnet"
  std::string mask_method;      ///< resolved mask method
  /// Crop "official": each frame's best FaceBoxes detection on the whole frame, and the static crop (crop
  /// "official" only: official_crop over all of them).
  std::vector<preprocess::FaceBox> face_boxes;
  preprocess::OfficialCrop official_crop;
};

/// Progress of the front end: stage ("detect" or "predict"), frames done.
using FrontEndCallback = std::function<void(const std::string& stage, int64_t done)>;

/// Crop "official" (options.crop): reads the frames three times: FaceBoxesV2 on every frame (a frame without a
/// detection, or a best score below 0.75, throws NoFaceFound naming it, as the official stage raises), then per
/// frame the landmarks in the static crop (PIPNet after the second FaceBoxes pass, or dlib), then crop, masks
/// (PreprocessOptions' mask method; "parser" parses each crop) and predictions. A frame where the second pass finds
/// no face (score < 0.99) gets no landmarks in the fit (all landmarks and pupils masked, as the official tracker
/// reads its missing landmark file as zeros); its masks use the nearest frame's landmarks (same static crop).
/// Crop "smoothed":
/// reads the frames twice: first to detect faces (the largest per frame; dlib landmarks in image pixels), then,
/// after smoothing the crop boxes, to crop, find pupils and masks (landmark masks, PreprocessOptions' mask
/// settings) and predict. Frames where no face is found take the landmarks of the nearest frame with one.
/// Throws NoFaceFound naming the source when no frame shows a face.
VideoTargets load_video_targets(const std::string& path, const preprocess::Preprocessor& preprocessor,
                                const predict::Predictor& predictor, const FrontEndOptions& options = {},
                                const FrontEndCallback& progress = {});

}  // namespace pixel3dmm::track
