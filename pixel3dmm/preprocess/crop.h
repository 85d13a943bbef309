#pragma once
/// Square face crops in the framing the official Pixel3DMM network was trained on, and the 2 x 3 affine maps
/// between image and crop pixels.
///
/// The official preprocessing (scripts/run_cropping.py -> pipnet_utils.get_cstm_crop, single image) takes the
/// FaceBoxesV2 box, makes it square by growing its shorter side about the centre, grows it by 1.42, shifts it
/// into the image when it overflows, cuts it out and resizes it to 512 x 512 (cv2.resize, bilinear). We have
/// dlib's 68 landmarks, not FaceBoxes: the square is placed relative to the landmarks' bounding box instead, with
/// a scale and an upward shift measured on the official example crop (see docs/preprocessing.md).
///
/// Pixel convention everywhere: pixel centres at integer coordinates (x right, y down), as dlib and OpenCV.

#include <torch/types.h>

#include <cstdint>

namespace pixel3dmm::preprocess {

struct CropOptions {
  /// Output side in pixels (the official crops are 512).
  int64_t size = 512;
  /// Crop side / long side of the 68 landmarks' bounding box.
  double scale = 1.77;
  /// Crop centre above the landmark box centre, in units of the landmark box's long side.
  double shift_up = 0.15;
  /// Official behaviour: a crop square that overflows the image is moved back inside (when it fits) instead of
  /// being padded. Off: the square stays centred on the face and the outside is padded black.
  bool keep_inside = true;
};

/// A square region of the source image in whole pixels: columns x0 .. x0 + side - 1, rows y0 .. y0 + side - 1;
/// may reach outside the image (that part is padded black).
struct CropBox {
  int64_t x0 = 0;
  int64_t y0 = 0;
  int64_t side = 0;
};

/// The crop square for one face. landmarks: 68 x 2 (image pixels); image_height/width: the source size.
CropBox crop_box_from_landmarks(const torch::Tensor& landmarks, int64_t image_height, int64_t image_width,
                                const CropOptions& options = {});

/// Affine image -> crop pixels for a box resized to size x size: 2 x 3 float64 [[a, 0, tx], [0, a, ty]] with
/// a = size / side and the pixel-centre convention of cv::resize (x' = (x - x0 + 0.5) * a - 0.5).
torch::Tensor crop_affine(const CropBox& box, int64_t size);

/// Cuts the box out of image (1 x C x H x W float) and resizes it to 1 x C x size x size: area averaging when
/// shrinking, bilinear when enlarging; outside the image is 0 (black).
torch::Tensor crop_image(const torch::Tensor& image, const CropBox& box, int64_t size);

/// points: ... x 2 (x, y); affine: 2 x 3 -> ... x 2 (same dtype as points).
torch::Tensor apply_affine(const torch::Tensor& points, const torch::Tensor& affine);

/// The inverse of a 2 x 3 affine (crop -> image pixels): 2 x 3 float64. Throws ValueError for a singular map.
torch::Tensor invert_affine(const torch::Tensor& affine);

}  // namespace pixel3dmm::preprocess
