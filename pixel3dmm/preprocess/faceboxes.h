#pragma once
/// FaceBoxesV2, the face detector of the official Pixel3DMM preprocessing (PIPNet's FaceBoxesV2/, used by
/// pixel3dmm's pipnet_utils.py twice: on every frame for the crop, and on every crop for PIPNet's face box), with
/// the official state-dict names, its anchors, box decoding, 0.6 threshold and the compiled `cpu_nms` it runs
/// (official-preprocessing.md section 3).
///
/// Weights: `FaceBoxesV2.pth` from the PIPNet repository (FaceBoxesV2/weights/), converted once with
/// `python -m pixel3dmm.convert_preprocessing faceboxes FaceBoxesV2.pth` to FaceBoxesV2.safetensors.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace pixel3dmm::preprocess {

/// Conv2d (no bias) -> BatchNorm2d (eps 1e-5) -> ReLU; parameters `conv.weight`, `bn.*`.
class FaceBoxesConvImpl : public torch::nn::Cloneable<FaceBoxesConvImpl> {
 public:
  FaceBoxesConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in, out, kernel, stride, padding;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(FaceBoxesConv);

/// FaceBoxes' Inception block on 128 channels: the concatenation of branch1x1 (32), branch1x1_2 after a 3x3
/// average pool (count_include_pad, 32), branch3x3_reduce -> branch3x3 (32) and branch3x3_reduce_2 ->
/// branch3x3_2 -> branch3x3_3 (32).
class FaceBoxesInceptionImpl : public torch::nn::Cloneable<FaceBoxesInceptionImpl> {
 public:
  FaceBoxesInceptionImpl() { reset(); }
  void reset() override;
  /// x: B x 128 x h x w -> B x 128 x h x w.
  torch::Tensor forward(const torch::Tensor& x);

  FaceBoxesConv branch1x1{nullptr}, branch1x1_2{nullptr}, branch3x3_reduce{nullptr}, branch3x3{nullptr},
      branch3x3_reduce_2{nullptr}, branch3x3_2{nullptr}, branch3x3_3{nullptr};
};
TORCH_MODULE(FaceBoxesInception);

/// FaceBoxesV2(phase='test', num_classes=2). Parameter names as the official state dict without its `module.`
/// prefix: conv1..conv5, inception1..3, conv6_1, conv6_2, conv7_1, conv7_2, loc.{0,1,2}, conf.{0,1,2}.
class FaceBoxesV2Impl : public torch::nn::Cloneable<FaceBoxesV2Impl> {
 public:
  FaceBoxesV2Impl() { reset(); }
  void reset() override;
  /// x: 1 x 3 x H x W float32, BGR minus (104, 117, 123), unscaled (faceboxes_input)
  /// -> (loc: 1 x A x 4 box offsets, conf: A x 2 softmax scores (background, face)), A = faceboxes_anchor_count.
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);

  FaceBoxesConv conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr};
  FaceBoxesInception inception1{nullptr}, inception2{nullptr}, inception3{nullptr};
  FaceBoxesConv conv6_1{nullptr}, conv6_2{nullptr}, conv7_1{nullptr}, conv7_2{nullptr};
  torch::nn::ModuleList loc{nullptr}, conf{nullptr};  ///< 3 x Conv2d 3x3 each, one per source
};
TORCH_MODULE(FaceBoxesV2);

/// The network input: bgr H x W x 3 uint8 (OpenCV order) -> 1 x 3 x H x W float32, (B, G, R) - (104, 117, 123)
/// computed in int32 as the official detector does.
torch::Tensor faceboxes_input(const torch::Tensor& bgr);

/// Anchors (prior boxes) for an H x W input: A x 4 float32 (cx, cy, w, h) as fractions of the image, computed in
/// float64 and rounded to float32 like the official PriorBox. A = 21 per 32-pixel cell + 1 per 64-pixel cell + 1
/// per 128-pixel cell (5456 for 512 x 512).
torch::Tensor faceboxes_priors(int64_t height, int64_t width);
int64_t faceboxes_anchor_count(int64_t height, int64_t width);

/// Decoded boxes: loc (1 x A x 4 or A x 4), priors (A x 4) -> A x 4 float32 (x1, y1, x2, y2) in pixels, with the
/// official float32 operation order (variances 0.1, 0.2).
torch::Tensor faceboxes_decode(const torch::Tensor& loc, const torch::Tensor& priors, int64_t height, int64_t width);

/// The compiled `cpu_nms(dets, thresh)` the official detector runs: dets N x 5 float32 (x1, y1, x2, y2, score)
/// -> kept row indices, best first. Areas and overlaps in float32 with the +1 pixel convention; a box is
/// suppressed when its overlap is >= thresh (compared in double); visiting order = NumPy's argsort of the scores,
/// reversed.
std::vector<int64_t> faceboxes_nms(const torch::Tensor& dets, double thresh = 0.3);

/// One official detection, `['face', score, xmin, ymin, width, height]`: integer box (float32 corners truncated
/// toward zero; width = int(x2) - int(x1), no +1) and the float32 score.
struct FaceBox {
  float score = 0.0f;
  int64_t x = 0, y = 0, width = 0, height = 0;
};

/// The official post-processing of raw network outputs for an H x W image: decode, keep score > threshold
/// (float32 compare), NumPy-order sort (first 5000), NMS 0.3, first 750 -> detections in NMS order, then sorted by
/// score, highest first (Python's stable sort, as pipnet_utils does).
std::vector<FaceBox> faceboxes_detections(const torch::Tensor& loc, const torch::Tensor& conf, int64_t height,
                                          int64_t width, double threshold = 0.6);

/// Builds and loads FaceBoxesV2 from converted weights (.safetensors; metadata `format`, when present, must be
/// `pixel3dmm-faceboxes`). Strict: a missing, unexpected or mis-shaped tensor is a FormatError naming the file and the tensors;
/// `num_batches_tracked` entries are accepted and ignored. FileNotFound for a missing file. Returns it in eval mode.
FaceBoxesV2 load_faceboxes(const std::string& weights);

/// Loaded FaceBoxesV2 + the official post-processing.
class FaceBoxesDetector {
 public:
  explicit FaceBoxesDetector(const std::string& weights);
  explicit FaceBoxesDetector(FaceBoxesV2 net, std::string source = "");

  /// bgr: H x W x 3 uint8 (OpenCV channel order) -> detections, highest score first (empty when none passes).
  std::vector<FaceBox> detect(const torch::Tensor& bgr, double threshold = 0.6) const;

  const FaceBoxesV2& net() const { return net_; }
  const std::string& source() const { return source_; }

 private:
  FaceBoxesV2 net_;
  std::string source_;
};

}  // namespace pixel3dmm::preprocess
