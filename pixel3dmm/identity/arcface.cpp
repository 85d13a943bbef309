#include "pixel3dmm/identity/arcface.h"

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::identity {

namespace {
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}
torch::nn::BatchNorm2d bn2d(int64_t channels, double eps) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(eps));
}
}  // namespace

IBasicBlockImpl::IBasicBlockImpl(int64_t in_planes_, int64_t planes_, int64_t stride_, double eps_)
    : in_planes(in_planes_), planes(planes_), stride(stride_), eps(eps_) {
  reset();
}

void IBasicBlockImpl::reset() {
  bn1 = register_module("bn1", bn2d(in_planes, eps));
  conv1 = register_module("conv1", conv(in_planes, planes, 3, 1));
  bn2 = register_module("bn2", bn2d(planes, eps));
  prelu = register_module("prelu", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(planes)));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride));
  bn3 = register_module("bn3", bn2d(planes, eps));
  if (stride != 1 || in_planes != planes)
    downsample =
        register_module("downsample", torch::nn::Sequential(conv(in_planes, planes, 1, stride), bn2d(planes, eps)));
}

torch::Tensor IBasicBlockImpl::forward(const torch::Tensor& x) {
  auto out = bn3(conv2(prelu(bn2(conv1(bn1(x))))));
  return out + (downsample ? downsample->forward(x) : x);
}

IResNetImpl::IResNetImpl(const IResNetOptions& options_) : options(options_) { reset(); }

void IResNetImpl::reset() {
  const auto& layers = options.layers();
  PIXEL3DMM_CHECK(layers.size() == 4, "IResNetOptions::layers: expected 4 block counts, found ", layers.size());
  for (const int64_t n : layers)
    PIXEL3DMM_CHECK(n >= 1, "IResNetOptions::layers: every layer needs at least one block, found ", n);
  PIXEL3DMM_CHECK(options.input_size() >= 16 && options.input_size() % 16 == 0,
                  "IResNetOptions::input_size: expected a positive multiple of 16, found ", options.input_size());
  PIXEL3DMM_CHECK(options.num_features() >= 1, "IResNetOptions::num_features must be positive");
  const double eps = options.eps();
  conv1 = register_module("conv1", conv(3, 64, 3, 1));
  bn1 = register_module("bn1", bn2d(64, eps));
  prelu = register_module("prelu", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(64)));
  int64_t in_planes = 64;
  const int64_t widths[4] = {64, 128, 256, 512};
  torch::nn::Sequential* seqs[4] = {&layer1, &layer2, &layer3, &layer4};
  for (int l = 0; l < 4; ++l) {
    torch::nn::Sequential seq;
    for (int64_t b = 0; b < layers[l]; ++b) {
      seq->push_back(IBasicBlock(in_planes, widths[l], b == 0 ? 2 : 1, eps));
      in_planes = widths[l];
    }
    *seqs[l] = register_module("layer" + std::to_string(l + 1), seq);
  }
  bn2 = register_module("bn2", bn2d(512, eps));
  const int64_t side = options.input_size() / 16;
  fc = register_module("fc", torch::nn::Linear(512 * side * side, options.num_features()));
  features = register_module("features",
                             torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(options.num_features()).eps(eps)));
}

torch::Tensor IResNetImpl::forward(const torch::Tensor& x) {
  const int64_t s = options.input_size();
  PIXEL3DMM_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == s && x.size(3) == s,
                  "ArcFace input: expected B x 3 x ", s, " x ", s, ", found ", x.sizes());
  auto h = prelu(bn1(conv1(x)));
  h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
  h = bn2(h).flatten(1);  // C, H, W order
  return features(fc(h));
}

}  // namespace pixel3dmm::identity
