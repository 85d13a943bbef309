#include "pixel3dmm/nn/vit.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <regex>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/nn/detail/attention.h"
#include "pixel3dmm/nn/detail/linear.h"

namespace pixel3dmm::nn {

namespace F = torch::nn::functional;

torch::Tensor resize_bicubic_antialias(const torch::Tensor& x, int64_t height, int64_t width) {
  PIXEL3DMM_CHECK(x.dim() == 4, "resize_bicubic_antialias: expected N x C x H x W, found ", shape_string(x.sizes()));
  PIXEL3DMM_CHECK(height > 0 && width > 0, "resize_bicubic_antialias: output size must be positive, found ", height,
                  " x ", width);
  PIXEL3DMM_CHECK(x.is_floating_point(), "resize_bicubic_antialias: expected a floating-point tensor");
  // The same ATen kernel F.interpolate(mode='bicubic', antialias=True) dispatches to (PIL's separable
  // antialiased resampling with a = -0.5, in floating point).
  return at::_upsample_bicubic2d_aa(x.contiguous(), {height, width}, /*align_corners=*/false);
}

torch::Tensor resample_abs_pos_embed(const torch::Tensor& pos_embed, std::array<int64_t, 2> new_size,
                                     std::array<int64_t, 2> old_size, int64_t num_prefix_tokens) {
  PIXEL3DMM_CHECK(pos_embed.dim() == 3 && pos_embed.size(0) == 1,
                  "resample_abs_pos_embed: expected 1 x L x C, found ", shape_string(pos_embed.sizes()));
  const int64_t L = pos_embed.size(1), C = pos_embed.size(2);
  if (new_size[0] * new_size[1] + num_prefix_tokens == L && new_size[0] == new_size[1]) return pos_embed;
  PIXEL3DMM_CHECK(old_size[0] * old_size[1] + num_prefix_tokens == L, "resample_abs_pos_embed: ", L,
                  " tokens do not hold ", num_prefix_tokens, " prefix tokens and a ", old_size[0], " x ", old_size[1],
                  " grid");
  auto prefix = pos_embed.narrow(1, 0, num_prefix_tokens);
  auto grid = pos_embed.narrow(1, num_prefix_tokens, L - num_prefix_tokens)
                  .reshape({1, old_size[0], old_size[1], C})
                  .permute({0, 3, 1, 2})
                  .to(torch::kFloat);
  grid = resize_bicubic_antialias(grid, new_size[0], new_size[1])
             .permute({0, 2, 3, 1})
             .reshape({1, new_size[0] * new_size[1], C})
             .to(pos_embed.scalar_type());
  return num_prefix_tokens > 0 ? torch::cat({prefix, grid}, 1) : grid;
}

// ---------------------------------------------------------------------------------------------------------------
VisionTransformerOptions VisionTransformerOptions::from_timm_name(const std::string& name) {
  // vit_<size>_patch<N>_<rest>, rest = 224[.dino...] | dinov2[.tag] | reg<R>_dinov2[.tag]
  static const std::regex re(R"(^(?:timm/)?vit_(tiny|small|base|large)_patch(\d+)_(.+)$)");
  std::smatch m;
  PIXEL3DMM_CHECK(std::regex_match(name, m, re), "unsupported backbone '", name,
                  "': expected a timm ViT name such as vit_small_patch16_224.dino, vit_base_patch14_dinov2 or "
                  "vit_small_patch14_reg4_dinov2");
  VisionTransformerOptions o;
  const std::string size = m[1];
  if (size == "tiny") o.embed_dim(192).depth(12).num_heads(3);
  if (size == "small") o.embed_dim(384).depth(12).num_heads(6);
  if (size == "base") o.embed_dim(768).depth(12).num_heads(12);
  if (size == "large") o.embed_dim(1024).depth(24).num_heads(16);
  o.patch_size(std::stoll(m[2]));
  const std::string rest = m[3];
  static const std::regex dinov2(R"(^(?:reg(\d+)_)?dinov2(?:\..*)?$)");
  static const std::regex sized(R"(^(\d+)(?:\..*)?$)");
  std::smatch r;
  if (std::regex_match(rest, r, dinov2)) {
    const int64_t regs = r[1].matched ? std::stoll(r[1]) : 0;
    o.img_size(518).layer_scale(true).reg_tokens(regs).no_embed_class(regs > 0);
  } else if (std::regex_match(rest, r, sized)) {
    o.img_size(std::stoll(r[1]));
  } else {
    PIXEL3DMM_CHECK(false, "unsupported backbone '", name, "': cannot read the image size or DINOv2 tag from '",
                    rest, "'");
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
PatchEmbedImpl::PatchEmbedImpl(int64_t patch_size, int64_t dim) : patch_size(patch_size), dim(dim) { reset(); }

void PatchEmbedImpl::reset() {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dim, patch_size).stride(patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& image) { return proj->forward(image); }

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init) : dim(dim), init(init) { reset(); }

void LayerScaleImpl::reset() { gamma = register_parameter("gamma", torch::full({dim}, init)); }

torch::Tensor LayerScaleImpl::forward(const torch::Tensor& x) { return x * gamma; }

ViTAttentionImpl::ViTAttentionImpl(int64_t dim, int64_t num_heads) : dim(dim), num_heads(num_heads) {
  PIXEL3DMM_CHECK(num_heads > 0 && dim % num_heads == 0, "ViTAttention: dim ", dim, " is not divisible by ",
                  num_heads, " heads");
  reset();
}

void ViTAttentionImpl::reset() {
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), hd = dim / num_heads;
  // detail::linear, not Linear::forward: the C++ frontend's F::linear adds the bias of a 3-D input in a second pass
  auto t = detail::linear(x, qkv->weight, qkv->bias).view({B, N, 3, num_heads, hd}).permute({2, 0, 3, 1, 4});  // 3xBxHxNxhd
  auto o = detail::attention(t[0], t[1], t[2], 1.0 / std::sqrt(double(hd)));        // B x H x N x hd
  return detail::linear(o.transpose(1, 2).reshape({B, N, dim}), proj->weight, proj->bias);
}

ViTMlpImpl::ViTMlpImpl(int64_t dim, int64_t hidden) : dim(dim), hidden(hidden) { reset(); }

void ViTMlpImpl::reset() {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor ViTMlpImpl::forward(const torch::Tensor& x) {
  auto h = detail::linear(x, fc1->weight, fc1->bias);
  h = torch::GradMode::is_enabled() ? at::gelu(h) : at::gelu_(h);  // exact (erf) GELU, as nn.GELU()
  return detail::linear(h, fc2->weight, fc2->bias);
}

ViTBlockImpl::ViTBlockImpl(const VisionTransformerOptions& options) : options(options) { reset(); }

void ViTBlockImpl::reset() {
  const int64_t C = options.embed_dim();
  auto ln = torch::nn::LayerNormOptions({C}).eps(options.eps());
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", ViTAttention(C, options.num_heads()));
  if (options.layer_scale()) ls1 = register_module("ls1", LayerScale(C, options.layer_scale_init()));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", ViTMlp(C, static_cast<int64_t>(C * options.mlp_ratio())));
  if (options.layer_scale()) ls2 = register_module("ls2", LayerScale(C, options.layer_scale_init()));
}

namespace {
// x + gamma * branch; without autograd in place on the branch's fresh buffer (same arithmetic, no allocation).
torch::Tensor residual(const torch::Tensor& x, torch::Tensor branch, LayerScale ls) {
  if (torch::GradMode::is_enabled()) return x + (ls ? ls->forward(branch) : branch);
  if (ls) branch.mul_(ls->gamma);
  return branch.add_(x);
}
}  // namespace

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  auto y = residual(x, attn->forward(norm1->forward(x)), ls1);
  return residual(y, mlp->forward(norm2->forward(y)), ls2);
}

// ---------------------------------------------------------------------------------------------------------------
VisionTransformerImpl::VisionTransformerImpl(const VisionTransformerOptions& options) : options(options) {
  PIXEL3DMM_CHECK(options.patch_size() > 0 && options.img_size() % options.patch_size() == 0,
                  "VisionTransformer: img_size ", options.img_size(), " is not a multiple of patch_size ",
                  options.patch_size());
  PIXEL3DMM_CHECK(options.depth() > 0 && options.embed_dim() > 0 && options.reg_tokens() >= 0,
                  "VisionTransformer: depth, embed_dim must be positive and reg_tokens >= 0");
  reset();
}

void VisionTransformerImpl::reset() {
  const int64_t C = options.embed_dim(), g = options.pos_grid();
  patch_embed = register_module("patch_embed", PatchEmbed(options.patch_size(), C));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, C}));
  if (options.reg_tokens() > 0) reg_token = register_parameter("reg_token", torch::zeros({1, options.reg_tokens(), C}));
  const int64_t embed_len = g * g + (options.no_embed_class() ? 0 : options.num_prefix_tokens());
  pos_embed = register_parameter("pos_embed", torch::randn({1, embed_len, C}) * 0.02);
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth(); ++i) blocks->push_back(ViTBlock(options));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(options.eps())));
}

torch::Tensor VisionTransformerImpl::pos_embed_for(int64_t h, int64_t w) const {
  const int64_t g = options.pos_grid();
  return resample_abs_pos_embed(pos_embed, {h, w}, {g, g},
                                options.no_embed_class() ? 0 : options.num_prefix_tokens());
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& image) {
  check_shape(image, {-1, 3, -1, -1}, "VisionTransformer input");
  const int64_t p = options.patch_size();
  PIXEL3DMM_CHECK(image.size(2) % p == 0 && image.size(3) % p == 0, "VisionTransformer input: height and width (",
                  image.size(2), " x ", image.size(3), ") must be multiples of the patch size ", p);
  const int64_t B = image.size(0), C = options.embed_dim();
  auto x = patch_embed->forward(image);  // B x C x h x w
  const int64_t h = x.size(2), w = x.size(3);
  x = x.flatten(2).transpose(1, 2);  // B x hw x C
  const auto pos = pos_embed_for(h, w);
  std::vector<torch::Tensor> parts{cls_token.expand({B, 1, C})};
  if (reg_token.defined()) parts.push_back(reg_token.expand({B, options.reg_tokens(), C}));
  if (options.no_embed_class()) {
    parts.push_back(x + pos);
    x = torch::cat(parts, 1);
  } else {
    parts.push_back(x);
    x = torch::cat(parts, 1) + pos;
  }
  for (const auto& block : *blocks) x = block->as<ViTBlock>()->forward(x);
  return norm->forward(x);
}

torch::Tensor VisionTransformerImpl::feature_map(const torch::Tensor& image) {
  const int64_t p = options.patch_size();
  auto tokens = forward(image);
  const int64_t B = tokens.size(0), C = tokens.size(2), h = image.size(2) / p, w = image.size(3) / p;
  return tokens.narrow(1, options.num_prefix_tokens(), h * w).transpose(1, 2).reshape({B, C, h, w});
}

double vit_forward_flops(const VisionTransformerOptions& o, int64_t grid_h, int64_t grid_w) {
  const double n = double(grid_h * grid_w + o.num_prefix_tokens()), C = double(o.embed_dim());
  const double hidden = std::floor(C * o.mlp_ratio());
  const double patch = 2.0 * grid_h * grid_w * C * 3.0 * o.patch_size() * o.patch_size();
  const double per_block = 2.0 * n * C * 3 * C   // qkv
                           + 2.0 * n * n * C * 2  // q k^T and probs v
                           + 2.0 * n * C * C      // proj
                           + 2.0 * n * C * hidden * 2;
  return patch + per_block * o.depth();
}

}  // namespace pixel3dmm::nn
