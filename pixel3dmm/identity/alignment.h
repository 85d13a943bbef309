#pragma once
/// MICA's input preprocessing after the face detector (official-preprocessing.md 6.3; insightface
/// utils/face_align.py estimate_norm / norm_crop, MICA datasets/creation/util.py get_arcface_input):
/// five keypoints -> similarity transform onto the ArcFace template -> 112 x 112 warp -> normalised blob.
///
/// The five keypoints, in image pixels: image-left eye, image-right eye, nose tip, image-left and image-right
/// mouth corners (the order of SCRFD's and RetinaFace's outputs).

#include <torch/types.h>

namespace pixel3dmm::identity {

/// insightface's `arcface_dst`: the five keypoints of a 112 x 112 ArcFace crop, 5 x 2 float32.
torch::Tensor arcface_template();

/// The similarity (rotation, uniform scale, translation) that maps `keypoints` onto arcface_template() in the
/// least-squares sense: Umeyama's estimate as scikit-image's SimilarityTransform computes it, in float32 with
/// the float64 scale and translation of numpy 1.x's scalar rules.
/// keypoints: 5 x 2 (any floating dtype; rounded to float32 as the official arrays are) -> 2 x 3 float64 M,
/// mapping an image point p to M[:, :2] p + M[:, 2]. ValueError for a wrong shape, non-finite or degenerate
/// (all equal) keypoints.
torch::Tensor arcface_similarity(const torch::Tensor& keypoints);

/// cv::warpAffine(image, M, (size, size)), bilinear, constant border 0: the aligned face.
/// image: H x W x 3 uint8 (either channel order; it is kept), M: 2 x 3 -> size x size x 3 uint8.
torch::Tensor warp_arcface_crop(const torch::Tensor& image, const torch::Tensor& M, int64_t size = 112);

/// cv::dnn::blobFromImages(crop, 1/127.5, mean 127.5) as MICA calls it: (pixel - 127.5) * float(1/127.5),
/// channels first. crop: H x W x 3 uint8 in RGB order -> 3 x H x W float32 (an official BGR crop goes through
/// swapRB; give this function RGB).
torch::Tensor arcface_blob(const torch::Tensor& crop_rgb);

/// The three steps: image H x W x 3 uint8 RGB and keypoints 5 x 2 -> 3 x 112 x 112 float32 blob.
torch::Tensor arcface_input(const torch::Tensor& image_rgb, const torch::Tensor& keypoints);

}  // namespace pixel3dmm::identity
