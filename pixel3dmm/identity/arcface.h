#pragma once
/// insightface's IResNet ArcFace encoder, as MICA uses it (official-preprocessing.md 6.4), with the official
/// state-dict names:
///   conv1 (3 -> 64, 3x3, no bias), bn1, prelu (64),
///   layerL.B.{bn1, conv1, bn2, prelu, conv2, bn3} (IBasicBlock), layerL.0.downsample.{0 (1x1 conv), 1 (BN)},
///   bn2 (BatchNorm2d 512), fc (Linear 512*7*7 -> 512), features (BatchNorm1d 512).
/// IResNet-100 has [3, 13, 30, 3] blocks of widths 64 / 128 / 256 / 512, each layer halving the resolution
/// (112 -> 56 -> 28 -> 14 -> 7). The block counts are an option so tests can run a shallow network.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace pixel3dmm::identity {

/// insightface IBasicBlock: bn1 -> conv1 (3x3) -> bn2 -> prelu -> conv2 (3x3, stride) -> bn3, plus the input
/// (or downsample(input) in a layer's first block). No activation after the sum.
class IBasicBlockImpl : public torch::nn::Cloneable<IBasicBlockImpl> {
 public:
  IBasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, double eps = 1e-5);
  void reset() override;
  /// x: B x in_planes x H x W -> B x planes x H/stride x W/stride.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_planes, planes, stride;
  double eps;
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::PReLU prelu{nullptr};
  torch::nn::Sequential downsample{nullptr};  ///< {1x1 conv with stride, BN}; null when the shape is kept
};
TORCH_MODULE(IBasicBlock);

struct IResNetOptions {
  /// Blocks per layer; IResNet-100 (MICA's ArcFace): {3, 13, 30, 3}.
  TORCH_ARG(std::vector<int64_t>, layers) = std::vector<int64_t>{3, 13, 30, 3};
  /// Width of the embedding (fc's output).
  TORCH_ARG(int64_t, num_features) = 512;
  /// Every BatchNorm's eps (insightface: 1e-5).
  TORCH_ARG(double, eps) = 1e-5;
  /// Side of the input (112): fc's input is 512 x (side/16)^2.
  TORCH_ARG(int64_t, input_size) = 112;
};

/// The IResNet encoder: 112 x 112 blob -> 512 ArcFace features (before MICA's L2 normalisation). Dropout (p = 0
/// in MICA) is omitted.
class IResNetImpl : public torch::nn::Cloneable<IResNetImpl> {
 public:
  explicit IResNetImpl(const IResNetOptions& options = {});
  void reset() override;
  /// x: B x 3 x input_size x input_size float32 (RGB, (pixel - 127.5) / 127.5) -> B x num_features.
  torch::Tensor forward(const torch::Tensor& x);

  IResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::PReLU prelu{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d features{nullptr};
};
TORCH_MODULE(IResNet);

}  // namespace pixel3dmm::identity
