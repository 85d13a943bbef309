#pragma once
/// The four masks the official fitter reads (official-fitting.md section 0), either from a face-parsing label
/// image in the official layout (facer farl/celebm/448) or estimated from the 68 landmarks and the image.
///
/// Official meaning, by facer/celebm label (0 background, 1 neck, 2 skin, 3 cloth, 4/5 ears, 6/7 brows, 8/9 eyes,
/// 10 nose, 11 mouth interior, 12/13 lips, 14 hair, 15 glasses, 16-18 misc, 20 unparsed):
///   uv_mask     {1, 2, 4, 5, 6, 7, 10, 12, 13}  face skin, brows, nose, lips, neck, ears (no eyes, no mouth)
///   normal_mask {2, 6, 7, 10, 11, 12, 13}       (+ {1, 4, 5} with big_normal_mask)
///   fg_mask     {2, 6, 7, 8, 9, 10, 12, 13}     the face the silhouette term matches (no ears, neck, hair)
///   valid_bg    label <= 1                       where the rendered face must not be (background, neck)
/// Label 20 (the parser's "outside the aligned face", and here also "outside the photo") is in none of them.

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace pixel3dmm::preprocess {

/// The label of pixels no parser saw (official: outside the parser's aligned region); in none of the masks.
constexpr int64_t kUnparsedLabel = 20;

/// Each 1 x H x W float32 in {0, 1}.
struct FaceMasks {
  torch::Tensor uv_mask;
  torch::Tensor normal_mask;
  torch::Tensor fg_mask;
  torch::Tensor valid_bg;
};

/// labels: H x W, 1 x H x W or H x W x 3 (channel 0 used, as the official reader) integer or integral-valued
/// float label image -> the masks by the official rules, at the label image's resolution.
FaceMasks masks_from_segmentation(const torch::Tensor& labels, bool big_normal_mask = false);

/// Reads a label PNG (8-bit, values = labels; 3 channels: channel 0, as the official reader) as H x W int64.
/// Throws FileNotFound / FormatError naming the path.
torch::Tensor read_segmentation(const std::string& path);

/// A label image in a crop's frame, nearest label. labels: H x W integer. When H x W is the photo's size
/// (image_height x image_width) it is warped by `affine` (2 x 3 float64, photo pixels -> crop pixels, as
/// Preprocessed::affine) and crop pixels outside the photo get kUnparsedLabel; otherwise a square label image is
/// taken as the crop itself (the official `seg_og` layout, 512 x 512 on the official crop) and resized with
/// Pillow's NEAREST sample positions (source pixel floor((i + 0.5) * H / size)), as the official tracker resizes.
/// -> size x size int64. `what` names the label image in errors (ValueError when neither case fits).
torch::Tensor labels_in_crop(const torch::Tensor& labels, const torch::Tensor& affine, int64_t image_height,
                             int64_t image_width, int64_t size, const std::string& what = "labels");

struct LandmarkMaskOptions {
  /// Forehead: the brow points lifted along the face's upward axis by this fraction of the brow-to-chin
  /// distance (a forehead is about half that tall, hair often hides its top).
  double forehead = 0.4;
  /// Refine with OpenCV GrabCut (person vs background) initialised from the landmark region; false = landmarks
  /// only.
  bool grabcut = true;
  /// GrabCut iterations and the working resolution (long side, pixels) it runs at.
  int grabcut_iterations = 4;
  int64_t grabcut_size = 192;
  /// valid_bg keeps this margin (fraction of the face size: brow-to-chin distance) away from the face region.
  double bg_margin = 0.08;
  /// Seeds GrabCut's colour-model initialisation (k-means).
  uint64_t seed = 0;
};

/// The face region from landmarks: convex hull of the jaw line and the lifted brows (see
/// LandmarkMaskOptions::forehead) -> 1 x height x width float32 {0, 1}. landmarks: 68 x 2 in those pixels.
torch::Tensor face_region(const torch::Tensor& landmarks, int64_t height, int64_t width, double forehead = 0.4);

/// Masks estimated without a face parser. image: 1 x 3 x H x W float [0, 1] (a crop); landmarks: 68 x 2 in its
/// pixels. uv_mask = face region - eye polygons - inner-lip polygon; normal_mask = region - eyes; fg_mask =
/// region - inner lips. With GrabCut the region is cut to the pixels GrabCut keeps as person (the landmark hull
/// always stays) and valid_bg is GrabCut's background, eroded, kept bg_margin away from the region; without,
/// valid_bg is everything outside the region grown by bg_margin. See docs/preprocessing.md.
FaceMasks masks_from_landmarks(const torch::Tensor& image, const torch::Tensor& landmarks,
                               const LandmarkMaskOptions& options = {});

}  // namespace pixel3dmm::preprocess
