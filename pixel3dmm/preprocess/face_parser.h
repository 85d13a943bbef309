#pragma once
/// facer's FaRL `celebm/448` face parser as the official pipeline runs it (official-preprocessing.md 7.3, 7.4):
/// the user's TorchScript file `face_parsing.farl.celebm.main_ema_181500_jit.pt` loaded with torch::jit::load,
/// the face aligned from five keypoints by pixel3dmm's replacement of facer's transform
/// (`get_face_align_matrix_celebm`), the logits warped back to the image, and the label map the official
/// `seg_og/{i:05d}.png` holds (labels 0..18, 20 outside the aligned region; see masks.h for what they mean).
///
/// The five keypoints are RetinaFace's (image-left eye, image-right eye, nose tip, left and right mouth corner,
/// (x, y) in image pixels).

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace pixel3dmm::preprocess {

/// The official `get_face_align_matrix_celebm(points, (size, size), bbox_scale_factor)`: the FFHQ-style quad of
/// the five points in float32 (numpy 1.x rules), scaled 1.5 about its centre; factor = bbox_scale_factor +
/// clamp((500 - diagonal) / 150, 0, 1); target square side size / factor, offset by int((size - side) / 2); the
/// least-squares similarity from the quad's corners to the square's. points: N x 5 x 2 (or 5 x 2) float, image
/// pixels -> N x 3 x 3 float32 M mapping image pixels to aligned pixels (rows [a, b, dx], [-b, a, dy], [0, 0, 1]).
torch::Tensor face_align_matrix_celebm(const torch::Tensor& points, double bbox_scale_factor = 1.25,
                                       int64_t size = 448);

/// grid_sample grid of the aligned crop: for every aligned pixel at integer (x, y) (the replacement drops facer's
/// + 0.5), [x, y, 1] @ inv(M)^T, over the third component, then / (image_width, image_height) * 2 - 1.
/// matrix: N x 3 x 3 float32 -> N x size x size x 2 float32, for grid_sample(align_corners = false).
torch::Tensor aligned_grid(const torch::Tensor& matrix, int64_t image_height, int64_t image_width, int64_t size = 448);

/// The inverse: for every image pixel at integer (x, y), [x, y, 1] @ M^T, over the third component, then
/// / (size, size) * 2 - 1. matrix: N x 3 x 3 -> N x image_height x image_width x 2 float32.
torch::Tensor image_grid(const torch::Tensor& matrix, int64_t image_height, int64_t image_width, int64_t size = 448);

/// The official label rule (run_facer_segmentation.py): argmax of softmax(logits) over channels (first maximum),
/// and C + 1 where all C logits are exactly 0 (no bilinear tap inside the aligned crop).
/// logits: N x C x H x W float -> N x H x W uint8.
torch::Tensor labels_from_logits(const torch::Tensor& logits);

struct FaceParserOptions {
  /// Aligned side (pixels) and the official bbox_scale_factor (run_facer_segmentation.py passes 1.25).
  int64_t size = 448;
  double bbox_scale_factor = 1.25;
  /// Channels the parser's logits must have (celebm: 19).
  int64_t classes = 19;
};

/// The parser network, loaded once. Not thread-safe to share while inference runs on another thread with a
/// different number of intra-op threads; one FaceParser per thread is safe.
class FaceParser {
 public:
  /// Loads the TorchScript archive onto the CPU. Throws FileNotFound when it does not exist, FormatError naming the
  /// file when it is not a TorchScript archive LibTorch can read; for an archive of a newer file format than this
  /// LibTorch reads, the message gives both versions.
  explicit FaceParser(const std::string& path, FaceParserOptions options = {});
  ~FaceParser();
  FaceParser(FaceParser&&) noexcept;
  FaceParser& operator=(FaceParser&&) noexcept;

  /// image: 1 x 3 x H x W RGB, uint8 (divided by 255 as the official code does) or float in [0, 1]; points:
  /// N x 5 x 2 (or 5 x 2) keypoints of N faces in image pixels -> N x classes x H x W float32 logits in image
  /// pixels (zero where no tap of the aligned crop reaches). Throws ValueError naming the file when the network's
  /// output is not a tuple whose first element is N x classes x size x size.
  torch::Tensor logits(const torch::Tensor& image, const torch::Tensor& points) const;

  /// labels_from_logits(logits(image, points)): N x H x W uint8, one map per face. The official script saves the
  /// first face's (the detector's highest score) as seg_og.
  torch::Tensor labels(const torch::Tensor& image, const torch::Tensor& points) const;

  const std::string& path() const;
  const FaceParserOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The file format version recorded in a TorchScript / torch.save zip archive (its `<name>/version` record), or -1
/// when the file is not such an archive. LibTorch refuses versions above caffe2::serialize's maximum.
int64_t archive_format_version(const std::string& path);

}  // namespace pixel3dmm::preprocess
