#include "pixel3dmm/preprocess/faceboxes.h"

#include <torch/nn/functional/pooling.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/preprocess/detail/load_strict.h"
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"

namespace pixel3dmm::preprocess {

namespace F = torch::nn::functional;

FaceBoxesConvImpl::FaceBoxesConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding)
    : in(in), out(out), kernel(kernel), stride(stride), padding(padding) {
  reset();
}

void FaceBoxesConvImpl::reset() {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(1e-5)));
}

torch::Tensor FaceBoxesConvImpl::forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

void FaceBoxesInceptionImpl::reset() {
  branch1x1 = register_module("branch1x1", FaceBoxesConv(128, 32, 1, 1, 0));
  branch1x1_2 = register_module("branch1x1_2", FaceBoxesConv(128, 32, 1, 1, 0));
  branch3x3_reduce = register_module("branch3x3_reduce", FaceBoxesConv(128, 24, 1, 1, 0));
  branch3x3 = register_module("branch3x3", FaceBoxesConv(24, 32, 3, 1, 1));
  branch3x3_reduce_2 = register_module("branch3x3_reduce_2", FaceBoxesConv(128, 24, 1, 1, 0));
  branch3x3_2 = register_module("branch3x3_2", FaceBoxesConv(24, 32, 3, 1, 1));
  branch3x3_3 = register_module("branch3x3_3", FaceBoxesConv(32, 32, 3, 1, 1));
}

torch::Tensor FaceBoxesInceptionImpl::forward(const torch::Tensor& x) {
  // avg_pool2d's default count_include_pad=true, as in the official F.avg_pool2d call.
  const auto pooled = F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1));
  return torch::cat({branch1x1(x), branch1x1_2(pooled), branch3x3(branch3x3_reduce(x)),
                     branch3x3_3(branch3x3_2(branch3x3_reduce_2(x)))},
                    1);
}

void FaceBoxesV2Impl::reset() {
  conv1 = register_module("conv1", FaceBoxesConv(3, 8, 3, 2, 1));
  conv2 = register_module("conv2", FaceBoxesConv(8, 16, 3, 2, 1));
  conv3 = register_module("conv3", FaceBoxesConv(16, 32, 3, 2, 1));
  conv4 = register_module("conv4", FaceBoxesConv(32, 64, 3, 2, 1));
  conv5 = register_module("conv5", FaceBoxesConv(64, 128, 3, 2, 1));
  inception1 = register_module("inception1", FaceBoxesInception());
  inception2 = register_module("inception2", FaceBoxesInception());
  inception3 = register_module("inception3", FaceBoxesInception());
  conv6_1 = register_module("conv6_1", FaceBoxesConv(128, 128, 1, 1, 0));
  conv6_2 = register_module("conv6_2", FaceBoxesConv(128, 256, 3, 2, 1));
  conv7_1 = register_module("conv7_1", FaceBoxesConv(256, 128, 1, 1, 0));
  conv7_2 = register_module("conv7_2", FaceBoxesConv(128, 256, 3, 2, 1));
  auto head = [](int64_t in, int64_t out) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
  };
  // 21 anchors per cell on source 1, one on sources 2 and 3; 4 box offsets and 2 class logits per anchor.
  loc = register_module("loc", torch::nn::ModuleList(head(128, 21 * 4), head(256, 4), head(256, 4)));
  conf = register_module("conf", torch::nn::ModuleList(head(128, 21 * 2), head(256, 2), head(256, 2)));
}

std::tuple<torch::Tensor, torch::Tensor> FaceBoxesV2Impl::forward(const torch::Tensor& input) {
  PIXEL3DMM_CHECK(input.dim() == 4 && input.size(1) == 3, "FaceBoxesV2: expected a B x 3 x H x W input, found ",
                  shape_string(input.sizes()));
  auto x = conv5(conv4(conv3(conv2(conv1(input)))));
  const auto s1 = inception3(inception2(inception1(x)));
  const auto s2 = conv6_2(conv6_1(s1));
  const auto s3 = conv7_2(conv7_1(s2));
  const torch::Tensor sources[3] = {s1, s2, s3};
  std::vector<torch::Tensor> locs, confs;
  for (size_t k = 0; k < 3; ++k) {
    auto l = loc[k]->as<torch::nn::Conv2d>()->forward(sources[k]).permute({0, 2, 3, 1}).contiguous();
    auto c = conf[k]->as<torch::nn::Conv2d>()->forward(sources[k]).permute({0, 2, 3, 1}).contiguous();
    locs.push_back(l.view({l.size(0), -1}));
    confs.push_back(c.view({c.size(0), -1}));
  }
  const auto l = torch::cat(locs, 1);
  const auto c = torch::cat(confs, 1);
  return {l.view({l.size(0), -1, 4}), torch::softmax(c.view({-1, 2}), -1)};
}

torch::Tensor faceboxes_input(const torch::Tensor& bgr) {
  PIXEL3DMM_CHECK(bgr.dim() == 3 && bgr.size(2) == 3 && bgr.scalar_type() == torch::kUInt8,
                  "faceboxes_input: expected an H x W x 3 uint8 BGR image, found ", shape_string(bgr.sizes()), " ",
                  c10::toString(bgr.scalar_type()));
  const auto mean = torch::tensor({104, 117, 123}, torch::kInt32).view({3, 1, 1});
  return (bgr.permute({2, 0, 1}).to(torch::kInt32) - mean).to(torch::kFloat32).unsqueeze(0).contiguous();
}

namespace {
constexpr int64_t kSteps[3] = {32, 64, 128};
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

int64_t faceboxes_anchor_count(int64_t height, int64_t width) {
  return 21 * ceil_div(height, 32) * ceil_div(width, 32) + ceil_div(height, 64) * ceil_div(width, 64) +
         ceil_div(height, 128) * ceil_div(width, 128);
}

torch::Tensor faceboxes_priors(int64_t height, int64_t width) {
  PIXEL3DMM_CHECK(height > 0 && width > 0, "faceboxes_priors: image size must be positive, found ", height, " x ",
                  width);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(faceboxes_anchor_count(height, width)) * 4);
  const double H = static_cast<double>(height), W = static_cast<double>(width);
  // Every value in float64 with the official operation order ((offset * step) / size), then rounded to float32.
  auto push = [&](double cx, double cy, double skx, double sky) {
    out.insert(out.end(), {static_cast<float>(cx), static_cast<float>(cy), static_cast<float>(skx),
                           static_cast<float>(sky)});
  };
  const std::vector<std::vector<double>> min_sizes = {{32, 64, 128}, {256}, {512}};
  for (size_t k = 0; k < 3; ++k) {
    const double step = static_cast<double>(kSteps[k]);
    const int64_t rows = ceil_div(height, kSteps[k]), cols = ceil_div(width, kSteps[k]);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        for (const double s : min_sizes[k]) {
          const double skx = s / W, sky = s / H;
          if (s == 32 || s == 64) {
            const std::vector<double> offsets =
                s == 32 ? std::vector<double>{0, 0.25, 0.5, 0.75} : std::vector<double>{0, 0.5};
            for (const double dy : offsets) {
              for (const double dx : offsets) {
                push((static_cast<double>(j) + dx) * step / W, (static_cast<double>(i) + dy) * step / H, skx, sky);
              }
            }
          } else {
            push((static_cast<double>(j) + 0.5) * step / W, (static_cast<double>(i) + 0.5) * step / H, skx, sky);
          }
        }
      }
    }
  }
  const auto n = static_cast<int64_t>(out.size() / 4);
  return torch::from_blob(out.data(), {n, 4}, torch::kFloat32).clone();
}

torch::Tensor faceboxes_decode(const torch::Tensor& loc, const torch::Tensor& priors, int64_t height, int64_t width) {
  const auto l = loc.dim() == 3 ? loc.squeeze(0) : loc;
  PIXEL3DMM_CHECK(l.dim() == 2 && l.size(1) == 4 && priors.dim() == 2 && priors.size(1) == 4 &&
                      l.size(0) == priors.size(0),
                  "faceboxes_decode: expected loc A x 4 and priors A x 4, found ", shape_string(loc.sizes()), " and ",
                  shape_string(priors.sizes()));
  const auto lf = l.to(torch::kFloat32), pf = priors.to(torch::kFloat32);
  // The official box_utils.decode, operation by operation (float32, scalars rounded to float32).
  auto boxes = torch::cat({pf.slice(1, 0, 2) + lf.slice(1, 0, 2) * 0.1 * pf.slice(1, 2, 4),
                           pf.slice(1, 2, 4) * torch::exp(lf.slice(1, 2, 4) * 0.2)},
                          1);
  boxes.slice(1, 0, 2) -= boxes.slice(1, 2, 4) / 2;
  boxes.slice(1, 2, 4) += boxes.slice(1, 0, 2);
  const auto scale = torch::tensor({static_cast<float>(width), static_cast<float>(height),
                                    static_cast<float>(width), static_cast<float>(height)});
  return boxes * scale;
}

std::vector<int64_t> faceboxes_nms(const torch::Tensor& dets, double thresh) {
  PIXEL3DMM_CHECK(dets.dim() == 2 && dets.size(1) == 5, "faceboxes_nms: expected N x 5 detections, found ",
                  shape_string(dets.sizes()));
  const auto d = dets.to(torch::kFloat32).contiguous();
  const int64_t n = d.size(0);
  if (n == 0) return {};
  const auto a = d.accessor<float, 2>();
  std::vector<float> scores(static_cast<size_t>(n)), areas(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    scores[static_cast<size_t>(i)] = a[i][4];
    areas[static_cast<size_t>(i)] = (a[i][2] - a[i][0] + 1.0f) * (a[i][3] - a[i][1] + 1.0f);
  }
  auto order = detail::numpy_argsort(scores.data(), n);
  std::reverse(order.begin(), order.end());
  std::vector<char> suppressed(static_cast<size_t>(n), 0);
  std::vector<int64_t> keep;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = order[static_cast<size_t>(oi)];
    if (suppressed[static_cast<size_t>(i)]) continue;
    keep.push_back(i);
    const float ix1 = a[i][0], iy1 = a[i][1], ix2 = a[i][2], iy2 = a[i][3], iarea = areas[static_cast<size_t>(i)];
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = order[static_cast<size_t>(oj)];
      if (suppressed[static_cast<size_t>(j)]) continue;
      // cpu_nms.pyx's inline max/min: `a if a >= b else b`, `a if a <= b else b` (float32).
      const float xx1 = ix1 >= a[j][0] ? ix1 : a[j][0];
      const float yy1 = iy1 >= a[j][1] ? iy1 : a[j][1];
      const float xx2 = ix2 <= a[j][2] ? ix2 : a[j][2];
      const float yy2 = iy2 <= a[j][3] ? iy2 : a[j][3];
      const float ww = xx2 - xx1 + 1.0f, hh = yy2 - yy1 + 1.0f;
      const float w = 0.0f >= ww ? 0.0f : ww;
      const float h = 0.0f >= hh ? 0.0f : hh;
      const float inter = w * h;
      const float ovr = inter / (iarea + areas[static_cast<size_t>(j)] - inter);
      if (static_cast<double>(ovr) >= thresh) suppressed[static_cast<size_t>(j)] = 1;
    }
  }
  return keep;
}

namespace {
int64_t truncate(float v, const char* what) {
  PIXEL3DMM_CHECK(std::isfinite(v) && std::fabs(v) < 9.0e18f, "FaceBoxes: a detected box has a non-finite ", what,
                  " (", v, "); the network weights are not usable");
  return static_cast<int64_t>(v);  // Python's int(): toward zero
}
}  // namespace

std::vector<FaceBox> faceboxes_detections(const torch::Tensor& loc, const torch::Tensor& conf, int64_t height,
                                          int64_t width, double threshold) {
  PIXEL3DMM_CHECK(conf.dim() == 2 && conf.size(1) == 2, "faceboxes_detections: expected conf A x 2, found ",
                  shape_string(conf.sizes()));
  const auto boxes = faceboxes_decode(loc, faceboxes_priors(height, width), height, width).contiguous();
  const auto scores_all = conf.select(1, 1).to(torch::kFloat32).contiguous();
  const float thresh = static_cast<float>(threshold);  // numpy compares a float32 array with 0.6 as 0.6f
  const auto sa = scores_all.accessor<float, 1>();
  std::vector<int64_t> inds;
  std::vector<float> scores;
  for (int64_t i = 0; i < scores_all.size(0); ++i) {
    if (sa[i] > thresh) {
      inds.push_back(i);
      scores.push_back(sa[i]);
    }
  }
  auto order = detail::numpy_argsort(scores.data(), static_cast<int64_t>(scores.size()));
  std::reverse(order.begin(), order.end());
  if (order.size() > 5000) order.resize(5000);
  const auto b = boxes.accessor<float, 2>();
  auto dets = torch::empty({static_cast<int64_t>(order.size()), 5}, torch::kFloat32);
  auto da = dets.accessor<float, 2>();
  for (size_t r = 0; r < order.size(); ++r) {
    const int64_t src = inds[static_cast<size_t>(order[r])];
    for (int64_t c = 0; c < 4; ++c) da[static_cast<int64_t>(r)][c] = b[src][c];
    da[static_cast<int64_t>(r)][4] = scores[static_cast<size_t>(order[r])];
  }
  auto keep = faceboxes_nms(dets, 0.3);
  if (keep.size() > 750) keep.resize(750);
  std::vector<FaceBox> out;
  for (const int64_t k : keep) {
    FaceBox f;
    f.score = da[k][4];
    const int64_t xmin = truncate(da[k][0], "x1"), ymin = truncate(da[k][1], "y1");
    const int64_t xmax = truncate(da[k][2], "x2"), ymax = truncate(da[k][3], "y2");
    f.x = xmin;
    f.y = ymin;
    f.width = xmax - xmin;
    f.height = ymax - ymin;
    out.push_back(f);
  }
  // pipnet_utils: sorted(detections, key=score, reverse=True), a stable sort.
  std::stable_sort(out.begin(), out.end(), [](const FaceBox& p, const FaceBox& q) { return p.score > q.score; });
  return out;
}

FaceBoxesV2 load_faceboxes(const std::string& weights) {
  const auto file = io::read_safetensors(weights);
  const auto format = file.metadata.find("format");
  PIXEL3DMM_CHECK_FORMAT(format == file.metadata.end() || format->second == "pixel3dmm-faceboxes", weights,
                         "holds '", format->second, "' weights, not FaceBoxesV2 (pixel3dmm-faceboxes); convert "
                         "FaceBoxesV2.pth with python -m pixel3dmm.convert_preprocessing faceboxes");
  FaceBoxesV2 net;
  detail::load_state_dict_strict(*net, file.tensors, weights);
  net->eval();
  return net;
}

FaceBoxesDetector::FaceBoxesDetector(const std::string& weights) : net_(load_faceboxes(weights)), source_(weights) {}

FaceBoxesDetector::FaceBoxesDetector(FaceBoxesV2 net, std::string source)
    : net_(std::move(net)), source_(std::move(source)) {
  net_->eval();
}

std::vector<FaceBox> FaceBoxesDetector::detect(const torch::Tensor& bgr, double threshold) const {
  torch::NoGradGuard no_grad;
  const auto input = faceboxes_input(bgr);
  FaceBoxesV2 net = net_;  // a shared handle: forward is not const
  auto [loc, conf] = net->forward(input);
  return faceboxes_detections(loc, conf, bgr.size(0), bgr.size(1), threshold);
}

}  // namespace pixel3dmm::preprocess
