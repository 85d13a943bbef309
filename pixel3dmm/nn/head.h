#pragma once
/// The Pixel3DMM prediction head with the official parameter layout (official-network.md section 2):
///   view_embed (1 x n_views x 16 x 1 x 1, when n_views > 1),
///   vol_decoder.down_proj, vol_decoder.layers.N.{norm1..4, self_attn, self_attn2, mlp.{0,3}, mlp2.{0,3}},
///   t_conv1..3 (ConvTranspose2d(D, D, 2, stride 2)), token_2_patch_content (Linear(D, 2*2*pred_dim)).
/// Backbone tokens (+ the first view's embedding) -> down projection -> transformer blocks over all tokens ->
/// three 2x transposed convolutions with GELU -> a per-pixel linear "unpatchify" to 2x that resolution.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace pixel3dmm::nn {

/// torch.nn.MultiheadAttention(D, heads, bias=False, batch_first=True) used as self-attention: packed
/// `in_proj_weight` (3D x D), `out_proj.weight` (D x D), no biases.
class MultiheadSelfAttentionImpl : public torch::nn::Cloneable<MultiheadSelfAttentionImpl> {
 public:
  MultiheadSelfAttentionImpl(int64_t dim, int64_t num_heads);
  void reset() override;
  /// x: B x N x D -> B x N x D.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim, num_heads;
  torch::Tensor in_proj_weight;
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadSelfAttention);

struct GroupAttBlockOptions {
  GroupAttBlockOptions(int64_t dim = 256, int64_t num_heads = 8) : dim_(dim), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// PyTorch's LayerNorm default: the official blocks never receive their eps argument.
  TORCH_ARG(double, eps) = 1e-5;
};

/// The official GroupAttBlock. LN1 and LN3 replace the residual stream (official quirk, spec 2.5):
///   x = LN1(x); x = x + Attn1(x); x = x + MLP1(LN2(x)); x = LN3(x); x = x + Attn2(x); x = x + MLP2(LN4(x)).
class GroupAttBlockImpl : public torch::nn::Cloneable<GroupAttBlockImpl> {
 public:
  explicit GroupAttBlockImpl(const GroupAttBlockOptions& options);
  void reset() override;
  /// x: B x N x D -> B x N x D.
  torch::Tensor forward(const torch::Tensor& x);

  GroupAttBlockOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  MultiheadSelfAttention self_attn{nullptr}, self_attn2{nullptr};
  torch::nn::Sequential mlp{nullptr}, mlp2{nullptr};  ///< Linear, GELU, Dropout(0), Linear, Dropout(0)
};
TORCH_MODULE(GroupAttBlock);

/// The official VolTransformer without its unused final norm: down_proj then the blocks.
class VolTransformerImpl : public torch::nn::Cloneable<VolTransformerImpl> {
 public:
  VolTransformerImpl(int64_t in_dim, const GroupAttBlockOptions& block, int64_t num_layers);
  void reset() override;
  /// tokens: B x N x in_dim -> B x N x D.
  torch::Tensor forward(const torch::Tensor& tokens);

  int64_t in_dim, num_layers;
  GroupAttBlockOptions block;
  torch::nn::Linear down_proj{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(VolTransformer);

/// Architecture of the head. Defaults: configs/base.yaml with a ViT-S backbone and UV output.
struct PredictionHeadOptions {
  /// Channels of the backbone's tokens (384 ViT-S, 768 ViT-B).
  TORCH_ARG(int64_t, in_dim) = 384;
  /// n_views > 1 creates view_embed and concatenates its first view to the tokens.
  TORCH_ARG(int64_t, n_views) = 2;
  TORCH_ARG(int64_t, view_embed_dim) = 16;
  TORCH_ARG(int64_t, embedding_dim) = 256;
  TORCH_ARG(int64_t, num_layers) = 6;
  TORCH_ARG(int64_t, num_heads) = 8;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(double, eps) = 1e-5;
  /// Output channels: 2 for UV, 3 for normals.
  TORCH_ARG(int64_t, pred_dim) = 2;

 public:
  /// Channels entering down_proj.
  int64_t token_dim() const { return in_dim_ + (n_views_ > 1 ? view_embed_dim_ : 0); }
};

/// The head: backbone feature map -> dense prediction at 16x its resolution.
class PredictionHeadImpl : public torch::nn::Cloneable<PredictionHeadImpl> {
 public:
  explicit PredictionHeadImpl(const PredictionHeadOptions& options = {});
  void reset() override;
  /// features: B x in_dim x h x w (the backbone's patch tokens) -> B x pred_dim x 16h x 16w.
  torch::Tensor forward(const torch::Tensor& features);

  PredictionHeadOptions options;
  torch::Tensor view_embed;  ///< undefined when n_views == 1
  VolTransformer vol_decoder{nullptr};
  torch::nn::ConvTranspose2d t_conv1{nullptr}, t_conv2{nullptr}, t_conv3{nullptr};
  torch::nn::Linear token_2_patch_content{nullptr};
};
TORCH_MODULE(PredictionHead);

/// FLOPs (x 2 multiply-adds) of the head at an h x w token grid, batch 1.
double head_forward_flops(const PredictionHeadOptions& options, int64_t grid_h, int64_t grid_w);

}  // namespace pixel3dmm::nn
