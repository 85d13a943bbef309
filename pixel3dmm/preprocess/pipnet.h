#pragma once
/// PIPNet (Pixel-in-Pixel Net, ResNet-18, config pip_32_16_60_r18_l2_l1_10_1_nb10), the 98-point WFLW landmark
/// network of the official Pixel3DMM preprocessing (pixel3dmm's pipnet_utils.demo_image, stage 2), with the official
/// state-dict names, the neighbour-regression decoding, the merge over the mean face's padded reverse neighbour lists
/// and the float64 export (official-preprocessing.md section 5):
///
/// - input: the debug rectangle drawn into the 512 crop first (cv::rectangle, red, thickness 2; the official network
///   sees it), then rows y .. ymax - 1, columns x .. xmax - 1 of PIPNet's box (pipnet_face_box), cv::resize
///   INTER_LINEAR to 256 x 256, RGB, / 255, (x - mean) / std in float32;
/// - decoding: per landmark the first maximum over the 8 x 8 cells of its score map, the cell plus the x / y offsets
///   and the 10 neighbour offsets there, / 8 (float32);
/// - merge: the float32 mean of the landmark's own prediction and the max_len predictions of it by the landmarks
///   that have it among their 10 nearest mean-face neighbours (lists padded cyclically to max_len = 17 for WFLW);
/// - export: (float64(merged) * box width + box x) / crop width, likewise y: 98 x 2 float64 fractions of the crop.
///
/// Weights: `epoch59.pth` of pip_32_16_60_r18_l2_l1_10_1_nb10 (PIPNet's snapshots/WFLW/...), converted once with
/// `python -m pixel3dmm.convert_preprocessing pipnet epoch59.pth --meanface PIPNet/data/WFLW/meanface.txt`, which
/// also stores the WFLW mean face (196 numbers) in the file's metadata; nothing of either file ships with pixel3dmm.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/nn/options.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pixel3dmm/preprocess/official_crop.h"

namespace pixel3dmm::preprocess {

/// The network's hyper-parameters (the official config's values by default).
struct PipNetOptions {
  TORCH_ARG(int64_t, num_landmarks) = 98;
  TORCH_ARG(int64_t, num_neighbours) = 10;
  TORCH_ARG(int64_t, input_size) = 256;
  /// Only 32 (the official config): ResNet-18's own output stride, no extra layers.
  TORCH_ARG(int64_t, net_stride) = 32;
};

/// torchvision's ResNet BasicBlock: conv1 3x3 (stride) -> bn1 -> ReLU -> conv2 3x3 -> bn2, plus the input (through
/// `downsample` = 1x1 conv + BN when the stride or width changes), ReLU. No conv biases, BN eps 1e-5.
class ResNetBasicBlockImpl : public torch::nn::Cloneable<ResNetBasicBlockImpl> {
 public:
  ResNetBasicBlockImpl(int64_t in, int64_t out, int64_t stride);
  void reset() override;
  /// x: B x in x h x w -> B x out x ceil(h / stride) x ceil(w / stride).
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in, out, stride;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  ///< empty handle when not needed
};
TORCH_MODULE(ResNetBasicBlock);

/// The five head outputs on the 8 x 8 grid (input_size / net_stride cells per side), no activation.
struct PipNetHeads {
  torch::Tensor cls;   ///< B x L x g x g cell scores
  torch::Tensor x;     ///< B x L x g x g x offsets within the cell
  torch::Tensor y;     ///< B x L x g x g
  torch::Tensor nb_x;  ///< B x (L * N) x g x g neighbour x offsets, channel l * N + n
  torch::Tensor nb_y;  ///< B x (L * N) x g x g
};

/// Pip_resnet18 with net_stride 32. Parameter names as the official state dict: torchvision's `conv1`, `bn1`,
/// `layer1..4.{0,1}.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}` and `{cls,x,y,nb_x,nb_y}_layer.{weight,bias}`.
class PipNetImpl : public torch::nn::Cloneable<PipNetImpl> {
 public:
  explicit PipNetImpl(const PipNetOptions& options = {});
  void reset() override;
  /// x: B x 3 x S x S float32 (pipnet_input; S = input_size) -> heads on the (S / 32) x (S / 32) grid.
  PipNetHeads forward(const torch::Tensor& x);

  PipNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Conv2d cls_layer{nullptr}, x_layer{nullptr}, y_layer{nullptr}, nb_x_layer{nullptr}, nb_y_layer{nullptr};
};
TORCH_MODULE(PipNet);

/// The mean face's neighbour structure (get_meanface): for each landmark its N nearest other landmarks, and for each
/// landmark the (landmark, neighbour slot) pairs that predict it, padded cyclically to the longest list's length.
struct PipNetNeighbours {
  torch::Tensor mean_face;          ///< L x 2 float64
  torch::Tensor neighbours;         ///< L x N int64: entries 1..N of NumPy's argsort of squared distances
  torch::Tensor reverse_landmark;   ///< L x max_len int64: l of each pair predicting landmark t (row t)
  torch::Tensor reverse_neighbour;  ///< L x max_len int64: n of that pair (neighbours[l][n] == t)
  int64_t max_len = 0;              ///< 17 for WFLW
};

/// mean_face: L x 2 (or 2L) float64 -> the neighbour tables for N neighbours. Throws ValueError when a landmark has
/// fewer than N others or is nobody's neighbour.
PipNetNeighbours pipnet_neighbours(const torch::Tensor& mean_face, int64_t num_neighbours = 10);

/// The landmark crop as the official network sees it: crop H x W x 3 uint8 BGR (the 512 crop), PIPNet's box ->
/// 1 x 3 x S x S float32 (S = input_size): red rectangle drawn on a copy, rows y .. ymax - 1 and columns x .. xmax - 1,
/// cv::resize INTER_LINEAR, RGB, / 255, normalised with ImageNet's mean and std. ValueError for an empty region.
torch::Tensor pipnet_input(const torch::Tensor& bgr, const PipnetBox& box, int64_t input_size = 256);

/// forward_pip + the neighbour merge, float32 as the official code: heads (batch 1) -> L x 2 float32 merged landmarks
/// as fractions of the network input (x, y).
torch::Tensor pipnet_decode(const PipNetHeads& heads, const PipNetNeighbours& neighbours, int64_t input_size = 256);

/// The official export: merged L x 2 float32 fractions, PIPNet's box on a height x width crop -> L x 2 float64,
/// ((double) merged * box width + box x) / width, likewise y (fractions of the crop).
torch::Tensor pipnet_export(const torch::Tensor& merged, const PipnetBox& box, int64_t height, int64_t width);

/// WFLW 98 -> iBUG 68 as the official tracker takes them (official-preprocessing.md 5.5): 68 indices.
const std::vector<int64_t>& wflw_to_ibug68();
/// The pupils the tracker takes: WFLW 96 (image-left eye), 97.
constexpr int64_t kWflwLeftPupil = 96, kWflwRightPupil = 97;

/// WFLW points P x 98 x 2 (any float type, or 98 x 2) -> (68 landmarks, 2 pupils) in the same type and batch layout.
std::pair<torch::Tensor, torch::Tensor> wflw_landmarks_and_pupils(const torch::Tensor& wflw);

/// Builds and loads PIPNet from converted weights (.safetensors, metadata `format` = `pixel3dmm-pipnet` and
/// `meanface` = the 196 numbers of the WFLW mean face). Strict: a missing, unexpected or mis-shaped tensor is a
/// FormatError naming the file and the tensors; BN `num_batches_tracked` entries are accepted and ignored.
/// FileNotFound for a missing file. Returns it in eval mode.
PipNet load_pipnet(const std::string& weights, PipNetNeighbours* neighbours = nullptr);

/// Loaded PIPNet + its mean face: the official stage 2 on one 512 crop.
class PipNetDetector {
 public:
  explicit PipNetDetector(const std::string& weights);
  PipNetDetector(PipNet net, PipNetNeighbours neighbours, std::string source = "");

  /// crop: H x W x 3 uint8 BGR (the official 512 crop), PIPNet's box on it -> L x 2 float64 WFLW landmarks as
  /// fractions of the crop's width and height (the official PIPnet_landmarks/*.npy).
  torch::Tensor landmarks(const torch::Tensor& bgr, const PipnetBox& box) const;
  /// The raw heads for a network input (tests).
  PipNetHeads forward(const torch::Tensor& input) const;

  const PipNet& net() const { return net_; }
  const PipNetNeighbours& neighbours() const { return neighbours_; }
  const std::string& source() const { return source_; }

 private:
  PipNet net_;
  PipNetNeighbours neighbours_;
  std::string source_;
};

}  // namespace pixel3dmm::preprocess
