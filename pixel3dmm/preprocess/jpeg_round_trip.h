#pragma once
/// The official pipeline stores every image it passes on as a JPEG file and reads it back: the input frames
/// (stage 0, `rgb/{i:05d}.jpg`, Pillow, quality 95) and the 512 x 512 crops (`cropped/{i:05d}.jpg`, OpenCV's
/// `imwrite`, quality 95), which FaceBoxes, PIPNet, the face parser and the networks then read. The compression is
/// therefore part of its numbers. Both encoders are libjpeg-turbo with the same defaults (baseline, 4:2:0 chroma,
/// standard tables, islow DCT) and give the same bytes (docs/preprocessing.md), so one OpenCV round trip in memory
/// reproduces either file.

#include <torch/types.h>

namespace pixel3dmm::preprocess {

/// image: H x W x 3 uint8 (BGR, OpenCV's order; the encoder's colour conversion is the same either way as long as
/// the channels keep their order) -> H x W x 3 uint8: `cv::imencode(".jpg", quality)` then `cv::imdecode`.
/// Throws ValueError for another shape or dtype or a quality outside [1, 100].
torch::Tensor jpeg_round_trip(const torch::Tensor& image, int quality = 95);

}  // namespace pixel3dmm::preprocess
