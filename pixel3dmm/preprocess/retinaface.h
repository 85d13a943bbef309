#pragma once
/// facer's RetinaFace detector, `retinaface/mobilenet` (weights mobilenet0.25_Final.pth), with the official
/// parameter names (official-preprocessing.md 7.2):
///   body.stage{1,2,3}.*   MobileNetV1 0.25: conv_bn(3, 8, stride 2) then depthwise-separable blocks; strides 8/16/32
///   fpn.output{1,2,3}.*   1x1 conv + BN + LeakyReLU(0.1) to 64 channels; fpn.merge{1,2}.* 3x3 conv_bn after the
///                         nearest-upsampled sum (top-down)
///   ssh{1,2,3}.*          SSH context modules (3x3 | 5x5 | 7x7 as stacked 3x3), ReLU of the concatenation
///   {ClassHead,BboxHead,LandmarkHead}.{0,1,2}.conv1x1.*   per level, 2 anchors per cell
/// Every convolution is followed by BatchNorm2d (eps 1e-5) in eval mode; LeakyReLU slopes are 0.1.
/// Around it: anchors, decoding (boxes and five keypoints), the 0.8 threshold and facer's torch NMS.
///
/// Weights: `mobilenet0.25_Final.pth` (release 0.0.1 of elliottzheng/face-detection, the file facer downloads),
/// converted once with `python -m pixel3dmm.convert_preprocessing retinaface mobilenet0.25_Final.pth` to
/// mobilenet0.25_Final.safetensors.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::preprocess {

/// The MobileNetV1 0.25 body as facer's IntermediateLayerGetter keeps it: stage1..3 only (no pooling, no classifier).
class RetinaFaceBodyImpl : public torch::nn::Cloneable<RetinaFaceBodyImpl> {
 public:
  RetinaFaceBodyImpl();
  void reset() override;
  /// x: N x 3 x H x W -> stage outputs N x 64 x H/8 x W/8, N x 128 x H/16 x W/16, N x 256 x H/32 x W/32 (sizes
  /// rounded up at every stride-2 convolution).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);

  torch::nn::Sequential stage1{nullptr}, stage2{nullptr}, stage3{nullptr};
};
TORCH_MODULE(RetinaFaceBody);

/// The feature pyramid: lateral 1x1 convolutions to 64 channels, then top-down nearest upsampling and 3x3 merges.
class RetinaFaceFPNImpl : public torch::nn::Cloneable<RetinaFaceFPNImpl> {
 public:
  RetinaFaceFPNImpl();
  void reset() override;
  /// The three body outputs -> three N x 64 x h_k x w_k maps (finest first).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& c1, const torch::Tensor& c2,
                                                                  const torch::Tensor& c3);

  torch::nn::Sequential output1{nullptr}, output2{nullptr}, output3{nullptr}, merge1{nullptr}, merge2{nullptr};
};
TORCH_MODULE(RetinaFaceFPN);

/// SSH context module on 64 channels: cat(3x3 -> 32, 5x5 -> 16, 7x7 -> 16), ReLU.
class RetinaFaceSSHImpl : public torch::nn::Cloneable<RetinaFaceSSHImpl> {
 public:
  RetinaFaceSSHImpl();
  void reset() override;
  /// x: N x 64 x h x w -> N x 64 x h x w.
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Sequential conv3X3{nullptr}, conv5X5_1{nullptr}, conv5X5_2{nullptr}, conv7X7_2{nullptr},
      conv7x7_3{nullptr};
};
TORCH_MODULE(RetinaFaceSSH);

/// One level's 1x1 prediction convolution (the official ClassHead / BboxHead / LandmarkHead modules).
class RetinaFaceHeadImpl : public torch::nn::Cloneable<RetinaFaceHeadImpl> {
 public:
  /// values: per anchor (2 class logits, 4 box offsets or 10 keypoint offsets); 2 anchors per cell.
  explicit RetinaFaceHeadImpl(int64_t values = 2);
  void reset() override;
  /// x: N x 64 x h x w -> N x (h * w * 2) x values (cells row-major, the cell's 2 anchors consecutive).
  torch::Tensor forward(const torch::Tensor& x);

  int64_t values;
  torch::nn::Conv2d conv1x1{nullptr};
};
TORCH_MODULE(RetinaFaceHead);

/// The raw outputs over all A anchors (stride 8 level first, see retinaface_anchors).
struct RetinaFaceOutput {
  torch::Tensor loc;        ///< N x A x 4 box offsets
  torch::Tensor conf;       ///< N x A x 2 softmax (background, face)
  torch::Tensor landmarks;  ///< N x A x 10 keypoint offsets
};

class RetinaFaceImpl : public torch::nn::Cloneable<RetinaFaceImpl> {
 public:
  RetinaFaceImpl();
  void reset() override;
  /// x: N x 3 x H x W float32, pixel values (0..255) minus the means (104, 117, 123) -> the outputs of facer's
  /// RetinaFace(phase='test'). See retinaface_input for facer's channel order quirk.
  RetinaFaceOutput forward(const torch::Tensor& x);

  RetinaFaceBody body{nullptr};
  RetinaFaceFPN fpn{nullptr};
  RetinaFaceSSH ssh1{nullptr}, ssh2{nullptr}, ssh3{nullptr};
  torch::nn::ModuleList ClassHead{nullptr}, BboxHead{nullptr}, LandmarkHead{nullptr};
};
TORCH_MODULE(RetinaFace);

/// facer's input: the image as given (RGB from Pillow) minus (104, 117, 123) channel by channel, although the
/// network was trained on OpenCV's BGR with those BGR means; reproduced, not fixed. image: N x 3 x H x W uint8 (or
/// float holding 0..255) -> N x 3 x H x W float32.
torch::Tensor retinaface_input(const torch::Tensor& image);

/// The weights under their official names (no `module.` prefix; BatchNorm's num_batches_tracked left out).
io::TensorMap retinaface_state_dict(const RetinaFace& net);

/// Copies official-name tensors into `net`: strict (every missing, unexpected or mis-shaped tensor is listed in one
/// FormatError naming `source`); `num_batches_tracked` entries are accepted and ignored.
void load_retinaface_state_dict(RetinaFace& net, const io::TensorMap& tensors, const std::string& source);

/// Reads converted weights (.safetensors written by `python -m pixel3dmm.convert_preprocessing retinaface`; metadata
/// `format`, when present, must be `pixel3dmm-retinaface`) into a new network in eval mode. A .pth file gets a
/// FormatError saying how to convert it; FileNotFound for a missing file.
RetinaFace load_retinaface(const std::string& path);

/// facer's defaults for retinaface/mobilenet.
struct RetinaFaceOptions {
  /// Keep anchors whose face probability is > this (compared in float32, so a score of exactly 0.8f is dropped).
  double score_threshold = 0.8;
  /// NMS keeps a box while its IoU with every kept, higher-scoring box is <= this.
  double nms_threshold = 0.4;
  /// Candidates kept before NMS, and faces kept after it.
  int64_t top_k = 5000;
  int64_t keep_top_k = 750;
};

/// One face in image pixels (pixel centres at integers, as facer's decoding).
struct RetinaFaceDetection {
  torch::Tensor box;     ///< 4 float32: x1, y1, x2, y2
  torch::Tensor points;  ///< 5 x 2 float32 (x, y): image-left eye, image-right eye, nose, image-left and
                         ///< image-right mouth corners
  float score = 0.0f;    ///< face probability
};

/// The anchors of an image of height x width: A x 4 float32 (cx, cy, w, h) normalised by the image size, for
/// strides 8, 16, 32 with sizes {16, 32}, {64, 128}, {256, 512}; cells row-major, sizes in order (A = 10752 for
/// 512 x 512). Computed in double and rounded once, as facer's Python floats.
torch::Tensor retinaface_anchors(int64_t height, int64_t width);

/// NMS over dets (K x 5 float32: x1, y1, x2, y2, score): the indices kept, highest score first. facer's loop:
/// order = flip(argsort(score)); areas (x2 - x1 + 1) * (y2 - y1 + 1); drop every later box with IoU > threshold.
std::vector<int64_t> retinaface_nms(const torch::Tensor& dets, double threshold);

/// Decodes one image's raw outputs (loc A x 4, conf A x 2, landmarks A x 10, as RetinaFaceOutput without the batch
/// axis) for an image of height x width -> faces, highest score first (empty when none passes the threshold).
std::vector<RetinaFaceDetection> decode_retinaface(const torch::Tensor& loc, const torch::Tensor& conf,
                                                   const torch::Tensor& landmarks, int64_t height, int64_t width,
                                                   const RetinaFaceOptions& options = {});

/// The network and its post-processing. Thread-safe for concurrent detect() calls (eval mode, no state).
class RetinaFaceDetector {
 public:
  /// Loads converted weights (see load_retinaface).
  explicit RetinaFaceDetector(const std::string& weights, RetinaFaceOptions options = {});
  /// A network already built (tests, random weights); put in eval mode.
  explicit RetinaFaceDetector(RetinaFace net, RetinaFaceOptions options = {});

  /// image: 1 x 3 x H x W RGB, uint8 (or float holding 0..255), as facer receives it from Pillow -> faces, highest
  /// score first.
  std::vector<RetinaFaceDetection> detect(const torch::Tensor& image) const;
  /// The raw network outputs for the same input (batch 1).
  RetinaFaceOutput raw(const torch::Tensor& image) const;

  const RetinaFace& net() const { return net_; }
  const RetinaFaceOptions& options() const { return options_; }
  const std::string& source() const { return source_; }

 private:
  RetinaFace net_;
  RetinaFaceOptions options_;
  std::string source_;
};

}  // namespace pixel3dmm::preprocess
