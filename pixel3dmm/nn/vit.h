#pragma once
/// The DINO / DINOv2 Vision Transformer backbone with timm's parameter layout, so that timm checkpoints and the
/// backbone part of the official Pixel3DMM checkpoints load by name:
///   patch_embed.proj.{weight,bias}, cls_token, reg_token (DINOv2 with registers), pos_embed,
///   blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}.{weight,bias}, norm.
/// The forward pass is timm's `forward_features` with `dynamic_img_size=True`: any input whose sides are multiples
/// of the patch size works, the position embedding being resampled to the input's patch grid as timm does.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <string>

namespace pixel3dmm::nn {

/// torch.nn.functional.interpolate(x, size=(height, width), mode='bicubic', antialias=True, align_corners=False):
/// PyTorch's antialiased bicubic (Keys kernel a = -0.5, support widened by the scale when downsampling).
/// x: N x C x H x W float -> N x C x height x width.
torch::Tensor resize_bicubic_antialias(const torch::Tensor& x, int64_t height, int64_t width);

/// timm.layers.resample_abs_pos_embed with its defaults (bicubic, antialias): the first `num_prefix_tokens`
/// entries (class / register tokens) are kept, the rest, an old_size grid, is resampled to new_size.
/// Returned unchanged when it already has new_size (square grids only, as timm).
/// pos_embed: 1 x (num_prefix_tokens + old_h * old_w) x C -> 1 x (num_prefix_tokens + new_h * new_w) x C.
torch::Tensor resample_abs_pos_embed(const torch::Tensor& pos_embed, std::array<int64_t, 2> new_size,
                                     std::array<int64_t, 2> old_size, int64_t num_prefix_tokens);

/// Architecture of a timm VisionTransformer. Defaults: vit_small_patch16_224.dino.
struct VisionTransformerOptions {
  TORCH_ARG(int64_t, patch_size) = 16;
  TORCH_ARG(int64_t, embed_dim) = 384;
  TORCH_ARG(int64_t, depth) = 12;
  TORCH_ARG(int64_t, num_heads) = 6;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Pretraining image side: the position embedding holds an (img_size / patch_size)^2 grid.
  TORCH_ARG(int64_t, img_size) = 224;
  /// DINOv2: LayerScale (`ls1.gamma`, `ls2.gamma`) after attention and MLP.
  TORCH_ARG(bool, layer_scale) = false;
  /// Register tokens (`reg_token`, 1 x R x C), DINOv2 "reg" models.
  TORCH_ARG(int64_t, reg_tokens) = 0;
  /// True when pos_embed has no entries for the prefix tokens (timm's `no_embed_class`, the DINOv2 reg models).
  TORCH_ARG(bool, no_embed_class) = false;
  TORCH_ARG(double, eps) = 1e-6;
  /// LayerScale's initial gamma (timm's init_values); the loaded weights replace it.
  TORCH_ARG(double, layer_scale_init) = 1e-5;

 public:
  /// Options for a timm model name: vit_{tiny,small,base,large}_patch{N}_{224.dino | dinov2[.tag] |
  /// reg{R}_dinov2[.tag]}. DINOv2 models get layer scale, img_size 518 and, with registers, no_embed_class.
  /// Throws ValueError for other names (ViT-g's SwiGLU MLP is not supported).
  static VisionTransformerOptions from_timm_name(const std::string& name);

  /// Prefix tokens in front of the patch tokens: the class token and the register tokens.
  int64_t num_prefix_tokens() const { return 1 + reg_tokens_; }
  /// Side of the position embedding's patch grid.
  int64_t pos_grid() const { return img_size_ / patch_size_; }
};

/// timm's PatchEmbed: a patch_size-strided convolution (`proj`), tokens in row-major grid order.
class PatchEmbedImpl : public torch::nn::Cloneable<PatchEmbedImpl> {
 public:
  PatchEmbedImpl(int64_t patch_size, int64_t dim);
  void reset() override;
  /// image: B x 3 x H x W -> B x C x H/p x W/p.
  torch::Tensor forward(const torch::Tensor& image);

  int64_t patch_size, dim;
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

/// timm's LayerScale: x * gamma (per channel).
class LayerScaleImpl : public torch::nn::Cloneable<LayerScaleImpl> {
 public:
  LayerScaleImpl(int64_t dim, double init);
  void reset() override;
  /// x: ... x C -> ... x C.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim;
  double init;
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

/// timm's Attention: fused qkv projection (with bias), softmax(q k^T / sqrt(d)) v per head, output projection.
class ViTAttentionImpl : public torch::nn::Cloneable<ViTAttentionImpl> {
 public:
  ViTAttentionImpl(int64_t dim, int64_t num_heads);
  void reset() override;
  /// x: B x N x C -> B x N x C.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim, num_heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(ViTAttention);

/// timm's Mlp: fc1 -> GELU (exact) -> fc2.
class ViTMlpImpl : public torch::nn::Cloneable<ViTMlpImpl> {
 public:
  ViTMlpImpl(int64_t dim, int64_t hidden);
  void reset() override;
  /// x: B x N x C -> B x N x C.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim, hidden;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ViTMlp);

/// Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))).
class ViTBlockImpl : public torch::nn::Cloneable<ViTBlockImpl> {
 public:
  explicit ViTBlockImpl(const VisionTransformerOptions& options);
  void reset() override;
  /// x: B x N x C -> B x N x C.
  torch::Tensor forward(const torch::Tensor& x);

  VisionTransformerOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  ViTMlp mlp{nullptr};
  LayerScale ls1{nullptr}, ls2{nullptr};  ///< null without layer scale
};
TORCH_MODULE(ViTBlock);

/// The Vision Transformer (timm layout, `forward_features` semantics).
class VisionTransformerImpl : public torch::nn::Cloneable<VisionTransformerImpl> {
 public:
  explicit VisionTransformerImpl(const VisionTransformerOptions& options = {});
  void reset() override;

  /// timm forward_features: image B x 3 x H x W (already mean/std normalised; H, W multiples of the patch size)
  /// -> tokens B x (prefix + H/p * W/p) x C after the final norm, prefix = class token then register tokens.
  torch::Tensor forward(const torch::Tensor& image);

  /// The patch tokens of forward() as a feature map: B x 3 x H x W -> B x C x H/p x W/p.
  torch::Tensor feature_map(const torch::Tensor& image);

  /// The position embedding for an h x w patch grid: 1 x (prefix or 0) + h*w x C (see no_embed_class).
  torch::Tensor pos_embed_for(int64_t h, int64_t w) const;

  VisionTransformerOptions options;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, reg_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(VisionTransformer);

/// FLOPs (multiply-adds x 2) of one forward pass of the transformer at an h x w patch grid, batch 1: patch
/// embedding, projections, attention products and MLPs (normalisations and softmax excluded).
double vit_forward_flops(const VisionTransformerOptions& options, int64_t grid_h, int64_t grid_w);

}  // namespace pixel3dmm::nn
