#include "pixel3dmm/nn/head.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/runtime.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/nn/detail/attention.h"
#include "pixel3dmm/nn/detail/linear.h"

namespace pixel3dmm::nn {

MultiheadSelfAttentionImpl::MultiheadSelfAttentionImpl(int64_t dim, int64_t num_heads)
    : dim(dim), num_heads(num_heads) {
  PIXEL3DMM_CHECK(num_heads > 0 && dim % num_heads == 0, "MultiheadSelfAttention: dim ", dim,
                  " is not divisible by ", num_heads, " heads");
  reset();
}

void MultiheadSelfAttentionImpl::reset() {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
  torch::nn::init::xavier_uniform_(in_proj_weight);
  out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
}

torch::Tensor MultiheadSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), hd = dim / num_heads;
  auto t = detail::linear(x, in_proj_weight, {}).view({B, N, 3, num_heads, hd}).permute({2, 0, 3, 1, 4});
  auto o = detail::attention(t[0], t[1], t[2], 1.0 / std::sqrt(double(hd)));
  return detail::linear(o.transpose(1, 2).reshape({B, N, dim}), out_proj->weight, out_proj->bias);
}

namespace {
torch::nn::Sequential make_mlp(int64_t dim, int64_t hidden) {
  // Indices 0 and 3 carry the weights, as in the official nn.Sequential (Linear, GELU, Dropout, Linear, Dropout).
  return torch::nn::Sequential(torch::nn::Linear(dim, hidden), torch::nn::GELU(), torch::nn::Dropout(0.0),
                               torch::nn::Linear(hidden, dim), torch::nn::Dropout(0.0));
}

torch::Tensor run_mlp(torch::nn::Sequential& mlp, const torch::Tensor& x) {
  const auto& fc1 = *mlp[0]->as<torch::nn::Linear>();
  const auto& fc2 = *mlp[3]->as<torch::nn::Linear>();
  auto h = detail::linear(x, fc1.weight, fc1.bias);
  h = torch::GradMode::is_enabled() ? at::gelu(h) : at::gelu_(h);
  return detail::linear(h, fc2.weight, fc2.bias);  // the dropouts have p = 0
}
}  // namespace

GroupAttBlockImpl::GroupAttBlockImpl(const GroupAttBlockOptions& options) : options(options) { reset(); }

void GroupAttBlockImpl::reset() {
  const int64_t D = options.dim();
  auto ln = torch::nn::LayerNormOptions({D}).eps(options.eps());
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  self_attn = register_module("self_attn", MultiheadSelfAttention(D, options.num_heads()));
  self_attn2 = register_module("self_attn2", MultiheadSelfAttention(D, options.num_heads()));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  norm3 = register_module("norm3", torch::nn::LayerNorm(ln));
  norm4 = register_module("norm4", torch::nn::LayerNorm(ln));
  const auto hidden = static_cast<int64_t>(D * options.mlp_ratio());
  mlp = register_module("mlp", make_mlp(D, hidden));
  mlp2 = register_module("mlp2", make_mlp(D, hidden));
}

namespace {
// x + branch; without autograd in place on the branch's fresh buffer.
torch::Tensor residual(const torch::Tensor& x, torch::Tensor branch) {
  return torch::GradMode::is_enabled() ? x + branch : branch.add_(x);
}
}  // namespace

torch::Tensor GroupAttBlockImpl::forward(const torch::Tensor& x) {
  auto y = norm1->forward(x);  // replaces the stream (not a pre-norm): the official block does this
  y = residual(y, self_attn->forward(y));
  y = residual(y, run_mlp(mlp, norm2->forward(y)));
  y = norm3->forward(y);
  y = residual(y, self_attn2->forward(y));
  return residual(y, run_mlp(mlp2, norm4->forward(y)));
}

VolTransformerImpl::VolTransformerImpl(int64_t in_dim, const GroupAttBlockOptions& block, int64_t num_layers)
    : in_dim(in_dim), num_layers(num_layers), block(block) {
  reset();
}

void VolTransformerImpl::reset() {
  down_proj = register_module("down_proj", torch::nn::Linear(in_dim, block.dim()));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(GroupAttBlock(block));
}

torch::Tensor VolTransformerImpl::forward(const torch::Tensor& tokens) {
  auto x = detail::linear(tokens, down_proj->weight, down_proj->bias);  // bias fused in the GEMM, as in vit.cpp
  for (const auto& layer : *layers) x = layer->as<GroupAttBlock>()->forward(x);
  return x;
}

// ---------------------------------------------------------------------------------------------------------------
PredictionHeadImpl::PredictionHeadImpl(const PredictionHeadOptions& options) : options(options) {
  PIXEL3DMM_CHECK(options.in_dim() > 0 && options.embedding_dim() > 0 && options.pred_dim() > 0 &&
                      options.n_views() >= 1 && options.num_layers() >= 0,
                  "PredictionHead: in_dim, embedding_dim, pred_dim and n_views must be positive");
  reset();
}

void PredictionHeadImpl::reset() {
  const int64_t D = options.embedding_dim();
  if (options.n_views() > 1)
    view_embed = register_parameter(
        "view_embed", torch::randn({1, options.n_views(), options.view_embed_dim(), 1, 1}) /
                          std::sqrt(double(options.view_embed_dim())));
  vol_decoder = register_module(
      "vol_decoder",
      VolTransformer(options.token_dim(),
                     GroupAttBlockOptions(D, options.num_heads()).mlp_ratio(options.mlp_ratio()).eps(options.eps()),
                     options.num_layers()));
  auto tconv = torch::nn::ConvTranspose2dOptions(D, D, 2).stride(2);
  t_conv1 = register_module("t_conv1", torch::nn::ConvTranspose2d(tconv));
  t_conv2 = register_module("t_conv2", torch::nn::ConvTranspose2d(tconv));
  t_conv3 = register_module("t_conv3", torch::nn::ConvTranspose2d(tconv));
  token_2_patch_content = register_module("token_2_patch_content", torch::nn::Linear(D, 4 * options.pred_dim()));
}

torch::Tensor PredictionHeadImpl::forward(const torch::Tensor& features) {
  check_shape(features, {-1, options.in_dim(), -1, -1}, "PredictionHead input (backbone features)");
  const int64_t B = features.size(0), h = features.size(2), w = features.size(3);
  const int64_t D = options.embedding_dim(), P = options.pred_dim();
  auto x = features;
  if (view_embed.defined())  // one image = the first view
    x = torch::cat({x, view_embed.select(1, 0).expand({B, options.view_embed_dim(), h, w})}, 1);
  auto z = vol_decoder->forward(x.flatten(2).transpose(1, 2)).reshape({B * h * w, D});

  // A 2x2 stride-2 transposed convolution is a per-pixel linear map D -> 2*2*D. Applying the three of them (and
  // the final per-pixel linear) to rows kept in hierarchical order (pixel, a1, b1, a2, b2, ...) needs no
  // reshuffling between layers: one permutation at the end puts the sub-pixels in place.
  std::array<torch::Tensor, 3> W, bias;
  const torch::nn::ConvTranspose2d* convs[3] = {&t_conv1, &t_conv2, &t_conv3};
  for (int i = 0; i < 3; ++i) {
    W[i] = (*convs[i])->weight.permute({0, 2, 3, 1}).reshape({D, 4 * D});  // D_in x (a, b, D_out)
    bias[i] = (*convs[i])->bias.repeat({4});
  }
  const auto& Wc = token_2_patch_content->weight;  // 4P x D
  const auto& bc = token_2_patch_content->bias;
  torch::Tensor out;
  if (torch::GradMode::is_enabled() || z.scalar_type() != torch::kFloat) {  // autograd, or autocast's bf16
    for (int i = 0; i < 3; ++i) z = at::gelu(at::addmm(bias[i], z, W[i])).view({-1, D});
    out = at::addmm(bc, z, Wc.t());
  } else {
    // Inference: the first two layers whole, then the last transposed convolution and the final linear on
    // blocks of rows, so that their 4x and 16x larger intermediates never leave the cache.
    for (int i = 0; i < 2; ++i) {
      auto t = detail::linear(z, W[i].t(), bias[i]);
      at::gelu_(t);
      z = t.view({-1, D});
    }
    out = at::empty({z.size(0) * 4, 4 * P}, z.options());
    const int64_t rows = z.size(0), block = std::max<int64_t>(256, (int64_t(1) << 20) / (4 * D));  // ~4 MB
    // Blocks on the intra-op threads, each with single-threaded GEMMs (one pool of workers: see detail/linear.h).
    const ScopedBlasThreads single_threaded_blas(1);
    at::parallel_for(0, (rows + block - 1) / block, 1, [&](int64_t begin, int64_t end) {
      const torch::NoGradGuard no_grad;  // grad mode is thread-local: OpenMP's workers start with it on
      auto buf = at::empty({block, 4 * D}, z.options());
      for (int64_t b = begin; b < end; ++b) {
        const int64_t r = b * block, n = std::min(block, rows - r);
        auto y = buf.narrow(0, 0, n);
        at::addmm_out(y, bias[2], z.narrow(0, r, n), W[2]);
        at::gelu_(y);
        auto dst = out.narrow(0, 4 * r, 4 * n);
        at::addmm_out(dst, bc, y.view({4 * n, D}), Wc.t());
      }
    });
  }
  // rows x (p, q, c) -> the image
  out = out.view({B, h, w, 2, 2, 2, 2, 2, 2, 2, 2, P});
  return out.permute({0, 11, 1, 3, 5, 7, 9, 2, 4, 6, 8, 10}).reshape({B, P, 16 * h, 16 * w});
}

double head_forward_flops(const PredictionHeadOptions& o, int64_t grid_h, int64_t grid_w) {
  const double n = double(grid_h * grid_w), D = double(o.embedding_dim());
  const double hidden = std::floor(D * o.mlp_ratio());
  double flops = 2.0 * n * o.token_dim() * D;
  const double attn = 2.0 * n * D * 3 * D + 2.0 * n * n * D * 2 + 2.0 * n * D * D;
  const double mlp = 2.0 * n * D * hidden * 2;
  flops += o.num_layers() * 2 * (attn + mlp);
  double pixels = n;
  for (int i = 0; i < 3; ++i, pixels *= 4) flops += 2.0 * pixels * D * 4 * D;
  flops += 2.0 * pixels * D * 4 * o.pred_dim();
  return flops;
}

}  // namespace pixel3dmm::nn
