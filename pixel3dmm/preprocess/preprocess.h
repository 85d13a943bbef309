#pragma once
/// From a photo to what the fitter consumes: the face crop in the official framing, 68 landmarks, the two
/// pupils and the four masks, all in crop pixels, plus the affine back to the photo.

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pixel3dmm/preprocess/crop.h"
#include "pixel3dmm/preprocess/face_detector.h"
#include "pixel3dmm/preprocess/face_parser.h"
#include "pixel3dmm/preprocess/faceboxes.h"
#include "pixel3dmm/preprocess/masks.h"
#include "pixel3dmm/preprocess/official_crop.h"
#include "pixel3dmm/preprocess/pipnet.h"
#include "pixel3dmm/preprocess/pupils.h"
#include "pixel3dmm/preprocess/retinaface.h"

namespace pixel3dmm::preprocess {

struct PreprocessOptions {
  /// Crop side (pixels), scale and centring: see CropOptions.
  int64_t crop_size = 512;
  double crop_scale = 1.77;
  double crop_shift_up = 0.15;
  bool keep_inside = true;
  /// Crop rule: "landmarks" (default: the square above from dlib's landmark box, no extra weights) or "official"
  /// (FaceBoxesV2's best box and the official get_cstm_crop rule, bug for bug, cv::resize INTER_LINEAR; needs
  /// `faceboxes`; crop_scale, crop_shift_up, keep_inside and max_image_side do not apply to the crop).
  std::string crop = "landmarks";
  /// Crop "official" only (the landmarks crop reads the photo as it is): pass the photo and the 512 crop through
  /// quality-95 JPEG, as the official pipeline's stage-0 `rgb/` and `cropped/` files do (jpeg_round_trip.h), so
  /// detection, landmarks, parser and networks see the official pixels. Off: the decoded pixels as they are.
  bool official_jpeg = true;
  /// Converted FaceBoxesV2 weights (python -m pixel3dmm.convert_preprocessing faceboxes FaceBoxesV2.pth), crop
  /// "official" only (given with crop "landmarks": ValueError rather than silently unused).
  std::string faceboxes;
  /// Converted PIPNet weights (python -m pixel3dmm.convert_preprocessing pipnet epoch59.pth --meanface ...), crop
  /// "official" only: the 68 landmarks and pupils come from PIPNet's 98 on the 512 crop (the official stage 2: a
  /// second FaceBoxes pass with the 0.99 gate) instead of dlib. Empty: dlib's 68 and the pupil finder.
  std::string pipnet;
  /// Images whose long side exceeds this are shrunk to it (area averaging) before anything else: bounds the
  /// memory and time of very large photos; results still map to the original pixels through `affine`.
  /// <= 0: no limit. (io::read_image separately refuses files above io::max_image_pixels().)
  int64_t max_image_side = 4096;
  /// Face detector: landmark model (empty = default_landmark_model_path()), detection size, upsampling, score.
  std::string landmark_model;
  int64_t detect_max_side = 1024;
  int upsample = -1;
  double min_score = 0.0;
  /// "auto" (default): "segmentation" when `segmentation` names a label image, "parser" when `face_parser` names
  /// the parser, else "landmarks+grabcut"; or "landmarks+grabcut", "landmarks", "segmentation" (the official masks
  /// from the labels in `segmentation`), "parser" (the official masks from the labels the parser gives the crop).
  std::string mask_method = "auto";
  /// facer's FaRL celebm parser, the TorchScript file face_parsing.farl.celebm.main_ema_181500_jit.pt (see
  /// face_parser.h): parses every crop, aligned by five keypoints, into the official label map.
  std::string face_parser;
  /// Converted RetinaFace mobilenet0.25 weights (python -m pixel3dmm.convert_preprocessing retinaface
  /// mobilenet0.25_Final.pth): the five keypoints the parser aligns by, found on the crop as the official
  /// pipeline does. Without it (ours, not official): eye centres (means of iBUG 36-41, 42-47), nose tip (30) and
  /// mouth corners (48, 54) of the crop's 68 landmarks.
  std::string retinaface;
  /// Label image in the official facer/celebm layout (8-bit PNG, label values; 20 = not parsed): either of the
  /// source image's size (warped into the crop, nearest label, 20 outside the photo) or square (the official
  /// `seg_og/{i:05d}.png` of the crop, resized with Pillow's NEAREST). See labels_in_crop. For `pixel3dmm track`
  /// a folder holding one such file per frame, named by the frame's index (`00000.png`, ...).
  std::string segmentation;
  /// The official big_normal_mask switch (adds neck and ears to normal_mask), segmentation masks only.
  bool big_normal_mask = false;
  /// LandmarkMaskOptions::forehead, grabcut_iterations, seed.
  double forehead = 0.4;
  int grabcut_iterations = 4;
  uint64_t seed = 0;
  /// See PupilOptions.
  double pupil_dark_fraction = 0.2;
};

/// What options.mask_method means for these options: "auto" resolved, others as they are.
std::string resolved_mask_method(const PreprocessOptions& options);

/// One face, ready for fitting. All pixel coordinates are crop pixels (S = crop_size) unless said otherwise.
struct Preprocessed {
  torch::Tensor crop;         ///< 1 x 3 x S x S float32 RGB in [0, 1]
  torch::Tensor landmarks;    ///< 1 x 68 x 2 float32 (x, y), iBUG order
  torch::Tensor iris;         ///< 1 x 2 x 2 float32 pupils, image-left eye first (WFLW 96, 97)
  torch::Tensor uv_mask;      ///< 1 x S x S float32 {0, 1}
  torch::Tensor normal_mask;  ///< 1 x S x S float32 {0, 1}
  torch::Tensor fg_mask;      ///< 1 x S x S float32 {0, 1}
  torch::Tensor valid_bg;     ///< 1 x S x S float32 {0, 1}
  torch::Tensor affine;       ///< 2 x 3 float64: source image pixels -> crop pixels
  torch::Tensor box;          ///< 4 float32: detector box x0, y0, x1, y1 in source image pixels
  double score = 0.0;         ///< detector score
  CropBox crop_box;           ///< the square in (possibly shrunk) working-image pixels; see `affine` for the map
                              ///< (crop "official": x0, y0 of the region in source pixels, side = its width)
  int64_t image_height = 0;   ///< source image size
  int64_t image_width = 0;
  std::string source;       ///< file path, or empty for an in-memory image
  std::string mask_method;  ///< how the masks were made (resolved: never "auto")
  std::string crop_method;  ///< "landmarks" or "official" (then `box` and `score` are FaceBoxes')
  std::string landmark_method;  ///< "dlib" (68 + pupil finder) or "pipnet" (WFLW 98 -> 68 + pupils 96, 97)
  torch::Tensor wflw;           ///< PIPNet only: 98 x 2 float64 WFLW points as fractions of the crop (official export)
  torch::Tensor labels;     ///< mask method "parser": 1 x S x S uint8 label map of the crop (official seg_og
                            ///< layout: 0..18, 20 outside the aligned region); undefined otherwise
  std::string keypoints;    ///< mask method "parser": where the parser's five keypoints came from
                            ///< ("retinaface" or "landmarks68")
};

/// Any image tensor -> 1 x 3 x H x W float32 in [0, 1]: accepts H x W, H x W x C (channels last when the last side
/// is 1, 3 or 4 and the first is not), C x H x W or 1 x C x H x W with C in {1, 3, 4} (gray replicated, alpha dropped), float (taken as [0, 1]) or uint8 (/ 255). `what` names it in errors.
torch::Tensor normalize_image(const torch::Tensor& image, const std::string& what = "image");

/// Holds the loaded detector: use one for many images (loading the landmark model takes about a second).
class Preprocessor {
 public:
  explicit Preprocessor(const PreprocessOptions& options = {});

  /// The largest face. image: see normalize_image; `source` names the image in errors and results.
  /// Throws ValueError "no face found in <source>" when there is none.
  Preprocessed image(const torch::Tensor& image, const std::string& source = "") const;
  /// Every face, largest first (empty when there is none). Crop "official": the one face of the official rule.
  std::vector<Preprocessed> image_all(const torch::Tensor& image, const std::string& source = "") const;
  /// Reads the file with io::read_image (EXIF orientation, gray / RGBA / 16-bit) and runs image().
  Preprocessed file(const std::string& path) const;
  std::vector<Preprocessed> file_all(const std::string& path) const;

  /// The steps of crop "official", for sequences (pixel3dmm track, reconstruct --joint) that crop every frame with
  /// one static crop (official_crop over all frames' best boxes), as the official preprocessing does. Each takes the
  /// photo as official_photo returns it; run that once per photo (stage 0), the steps do not repeat it.
  ///
  /// Stage 0: the image as the official pipeline reads its `rgb/` file: 8-bit, and through quality-95 JPEG when
  /// options().official_jpeg. image: see normalize_image -> 1 x 3 x H x W float32 in [0, 1] (multiples of 1/255).
  torch::Tensor official_photo(const torch::Tensor& image, const std::string& source = "") const;
  /// FaceBoxesV2's detections on the whole photo (8-bit BGR, as the official code reads it), best first.
  /// photo: from official_photo. Needs crop "official".
  std::vector<FaceBox> face_boxes(const torch::Tensor& photo) const;
  /// The photo cut and resized by `crop` (the official region, cv::resize INTER_LINEAR to crop_size; the 512 crop
  /// through quality-95 JPEG when options().official_jpeg, as the official `cropped/` file): sets crop, affine,
  /// crop_box, image size, source, crop_method "official", and box and score from `face` (this photo's FaceBoxes
  /// detection, from face_boxes); no landmarks, no masks. photo: from official_photo.
  Preprocessed official_crop_of(const torch::Tensor& photo, const OfficialCrop& crop, const FaceBox& face,
                                const std::string& source = "") const;
  /// The landmarks and pupils of a crop from official_crop_of (`photo` the same photo): PIPNet's on the official 512
  /// crop after the second FaceBoxes pass (score >= 0.99), or dlib's face nearest to p.box's centre (p.box: the
  /// frame's FaceBoxes box, x0, y0, x1, y1). Sets landmarks, iris, wflw (PIPNet) and landmark_method; false (and
  /// nothing set) when the gate or dlib finds no face: the official tracker then gets no landmarks for the frame.
  bool official_landmarks(Preprocessed& p, const torch::Tensor& photo) const;
  /// The four masks of p (crop and landmarks set) by the resolved mask method: "parser" runs the loaded parser on
  /// the crop (sets labels, keypoints), "segmentation" reads `segmentation` (default: options().segmentation; a
  /// label image, see PreprocessOptions::segmentation), else from the landmarks. Sets mask_method.
  void attach_masks(Preprocessed& p, const std::string& segmentation = "") const;

  /// Several photos of one person with crop "official" (`reconstruct --joint`): when all have one size, one static
  /// crop for all of them by the official sequence rule (official_crop over every photo's best FaceBoxes box; their
  /// crop_method "official-sequence"), as the official preprocessing crops a sequence's frames; photos of different
  /// sizes each get their own official crop (the sequence rule assumes one frame size). Reads each file twice
  /// (detect, then crop) instead of holding all photos. Throws NoFaceFound naming a photo without a face or
  /// landmarks, ValueError without crop "official".
  std::vector<Preprocessed> files_official_sequence(const std::vector<std::string>& paths) const;

  const PreprocessOptions& options() const { return options_; }
  const FaceDetector& detector() const { return detector_; }

 private:
  std::vector<Preprocessed> run(const torch::Tensor& image, const std::string& source, bool all) const;
  std::vector<Preprocessed> run_official(const torch::Tensor& image, const std::string& source) const;
  PreprocessOptions options_;
  FaceDetector detector_;
  std::shared_ptr<const FaceBoxesDetector> faceboxes_;  ///< loaded when options.crop == "official"
  std::shared_ptr<const PipNetDetector> pipnet_;        ///< loaded when options.pipnet is given
  std::shared_ptr<const RetinaFaceDetector> retinaface_;  ///< loaded when options.retinaface is set
  std::shared_ptr<const FaceParser> face_parser_;         ///< loaded when options.face_parser is set
};

/// One-shot versions (load the detector each call).
Preprocessed preprocess_image(const torch::Tensor& image, const PreprocessOptions& options = {});
Preprocessed preprocess_file(const std::string& path, const PreprocessOptions& options = {});
std::vector<Preprocessed> preprocess_file_all(const std::string& path, const PreprocessOptions& options = {});

/// A picture to check the result by eye: the crop, darkened outside fg_mask's face, with the outlines of uv_mask
/// (yellow), fg_mask (cyan) and valid_bg (blue), the 68 landmarks (green) and the pupils (red crosses).
/// -> 1 x 3 x S x S float32 in [0, 1].
torch::Tensor draw_preprocessed(const Preprocessed& p);

}  // namespace pixel3dmm::preprocess
