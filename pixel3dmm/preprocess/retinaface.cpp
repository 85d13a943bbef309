// facer's RetinaFace mobilenet0.25, layer for layer, so that the official state dict loads under its own names and
// LibTorch runs the same kernels in the same order as PyTorch does for facer.
#include "pixel3dmm/preprocess/retinaface.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/preprocess/detail/load_strict.h"

namespace pixel3dmm::preprocess {

namespace {

namespace tnn = torch::nn;

constexpr double kSlope = 0.1;  // every LeakyReLU of the mobilenet0.25 configuration (out_channel 64 <= 64)

tnn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups = 1) {
  return tnn::Conv2d(
      tnn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
}

/// A Sequential with a plain forward, so that it can sit inside another Sequential (LibTorch's AnyModule refuses
/// Sequential's templated forward): the official conv_bn / conv_dw blocks inside body.stage{1,2,3}.
struct BlockImpl : tnn::SequentialImpl {
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Block);

/// Official conv_bn / conv_bn1X1 (with activation) and conv_bn_no_relu (without): indices 0 conv, 1 BN, 2 act.
template <typename S = tnn::Sequential>
S conv_bn(int64_t in, int64_t out, int64_t stride, bool act = true, int64_t kernel = 3) {
  S s;
  s->push_back(conv(in, out, kernel, stride));
  s->push_back(tnn::BatchNorm2d(out));
  if (act) s->push_back(tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(kSlope)));
  return s;
}

/// Official conv_dw: depthwise 3x3 (0), BN (1), act (2), pointwise 1x1 (3), BN (4), act (5).
Block conv_dw(int64_t in, int64_t out, int64_t stride) {
  Block s;
  s->push_back(conv(in, in, 3, stride, in));
  s->push_back(tnn::BatchNorm2d(in));
  s->push_back(tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(kSlope)));
  s->push_back(conv(in, out, 1, 1));
  s->push_back(tnn::BatchNorm2d(out));
  s->push_back(tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(kSlope)));
  return s;
}

torch::Tensor upsample_to(const torch::Tensor& x, const torch::Tensor& like) {
  return torch::nn::functional::interpolate(
      x, torch::nn::functional::InterpolateFuncOptions()
             .size(std::vector<int64_t>{like.size(2), like.size(3)})
             .mode(torch::kNearest));
}

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

RetinaFaceBodyImpl::RetinaFaceBodyImpl() { reset(); }

void RetinaFaceBodyImpl::reset() {
  stage1 = register_module("stage1", tnn::Sequential(conv_bn<Block>(3, 8, 2), conv_dw(8, 16, 1), conv_dw(16, 32, 2),
                                                     conv_dw(32, 32, 1), conv_dw(32, 64, 2), conv_dw(64, 64, 1)));
  stage2 = register_module("stage2", tnn::Sequential(conv_dw(64, 128, 2), conv_dw(128, 128, 1), conv_dw(128, 128, 1),
                                                     conv_dw(128, 128, 1), conv_dw(128, 128, 1),
                                                     conv_dw(128, 128, 1)));
  stage3 = register_module("stage3", tnn::Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1)));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> RetinaFaceBodyImpl::forward(const torch::Tensor& x) {
  auto c1 = stage1->forward(x);
  auto c2 = stage2->forward(c1);
  auto c3 = stage3->forward(c2);
  return {c1, c2, c3};
}

RetinaFaceFPNImpl::RetinaFaceFPNImpl() { reset(); }

void RetinaFaceFPNImpl::reset() {
  output1 = register_module("output1", conv_bn(64, 64, 1, true, 1));
  output2 = register_module("output2", conv_bn(128, 64, 1, true, 1));
  output3 = register_module("output3", conv_bn(256, 64, 1, true, 1));
  merge1 = register_module("merge1", conv_bn(64, 64, 1));
  merge2 = register_module("merge2", conv_bn(64, 64, 1));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> RetinaFaceFPNImpl::forward(const torch::Tensor& c1,
                                                                                   const torch::Tensor& c2,
                                                                                   const torch::Tensor& c3) {
  auto o1 = output1->forward(c1);
  auto o2 = output2->forward(c2);
  auto o3 = output3->forward(c3);
  o2 = merge2->forward(o2 + upsample_to(o3, o2));
  o1 = merge1->forward(o1 + upsample_to(o2, o1));
  return {o1, o2, o3};
}

RetinaFaceSSHImpl::RetinaFaceSSHImpl() { reset(); }

void RetinaFaceSSHImpl::reset() {
  conv3X3 = register_module("conv3X3", conv_bn(64, 32, 1, false));
  conv5X5_1 = register_module("conv5X5_1", conv_bn(64, 16, 1));
  conv5X5_2 = register_module("conv5X5_2", conv_bn(16, 16, 1, false));
  conv7X7_2 = register_module("conv7X7_2", conv_bn(16, 16, 1));
  conv7x7_3 = register_module("conv7x7_3", conv_bn(16, 16, 1, false));
}

torch::Tensor RetinaFaceSSHImpl::forward(const torch::Tensor& x) {
  auto a = conv3X3->forward(x);
  auto b1 = conv5X5_1->forward(x);
  auto b = conv5X5_2->forward(b1);
  auto c = conv7x7_3->forward(conv7X7_2->forward(b1));
  return torch::relu(torch::cat({a, b, c}, 1));
}

RetinaFaceHeadImpl::RetinaFaceHeadImpl(int64_t values_) : values(values_) { reset(); }

void RetinaFaceHeadImpl::reset() {
  conv1x1 = register_module("conv1x1", tnn::Conv2d(tnn::Conv2dOptions(64, 2 * values, 1)));
}

torch::Tensor RetinaFaceHeadImpl::forward(const torch::Tensor& x) {
  auto out = conv1x1->forward(x).permute({0, 2, 3, 1}).contiguous();
  return out.view({out.size(0), -1, values});
}

RetinaFaceImpl::RetinaFaceImpl() { reset(); }

void RetinaFaceImpl::reset() {
  body = register_module("body", RetinaFaceBody());
  fpn = register_module("fpn", RetinaFaceFPN());
  ssh1 = register_module("ssh1", RetinaFaceSSH());
  ssh2 = register_module("ssh2", RetinaFaceSSH());
  ssh3 = register_module("ssh3", RetinaFaceSSH());
  ClassHead = register_module("ClassHead", tnn::ModuleList());
  BboxHead = register_module("BboxHead", tnn::ModuleList());
  LandmarkHead = register_module("LandmarkHead", tnn::ModuleList());
  for (int i = 0; i < 3; ++i) {
    ClassHead->push_back(RetinaFaceHead(2));
    BboxHead->push_back(RetinaFaceHead(4));
    LandmarkHead->push_back(RetinaFaceHead(10));
  }
}

RetinaFaceOutput RetinaFaceImpl::forward(const torch::Tensor& x) {
  check_shape(x, {-1, 3, -1, -1}, "RetinaFace input");
  auto [c1, c2, c3] = body->forward(x);
  auto [p1, p2, p3] = fpn->forward(c1, c2, c3);
  const std::vector<torch::Tensor> features{ssh1->forward(p1), ssh2->forward(p2), ssh3->forward(p3)};
  auto heads = [&](tnn::ModuleList& list) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < features.size(); ++i) parts.push_back(list[i]->as<RetinaFaceHead>()->forward(features[i]));
    return torch::cat(parts, 1);
  };
  RetinaFaceOutput out;
  out.loc = heads(BboxHead);
  out.conf = torch::softmax(heads(ClassHead), -1);
  out.landmarks = heads(LandmarkHead);
  return out;
}

torch::Tensor retinaface_input(const torch::Tensor& image) {
  check_shape(image, {-1, 3, -1, -1}, "RetinaFace image");
  auto img = image.to(torch::kCPU).to(torch::kFloat);
  // facer: `img -= mean` with mean (104, 117, 123) as a float tensor of shape 1 x 3 x 1 x 1.
  return img - torch::tensor({104.0f, 117.0f, 123.0f}).view({1, 3, 1, 1});
}

io::TensorMap retinaface_state_dict(const RetinaFace& net) {
  io::TensorMap out;
  for (const auto& p : net->named_parameters()) out[p.key()] = p.value();
  for (const auto& b : net->named_buffers())
    if (!ends_with(b.key(), "num_batches_tracked")) out[b.key()] = b.value();
  return out;
}

void load_retinaface_state_dict(RetinaFace& net, const io::TensorMap& tensors, const std::string& source) {
  detail::load_state_dict_strict(*net, tensors, source);
}

RetinaFace load_retinaface(const std::string& path) {
  PIXEL3DMM_CHECK_T(FileNotFound, std::filesystem::is_regular_file(path), path, ": RetinaFace weights not found");
  {
    // A torch.save file (zip or legacy pickle) would otherwise fail as a corrupt .safetensors: its first 8 bytes,
    // read as the safetensors header length, point far past the end of the file.
    std::ifstream f(path, std::ios::binary);
    unsigned char head[8] = {0};
    f.read(reinterpret_cast<char*>(head), 8);
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | head[i];
    const bool zip = head[0] == 'P' && head[1] == 'K';
    const bool pickle = head[0] == 0x80;
    PIXEL3DMM_CHECK_FORMAT(!(zip || pickle) || header + 8 <= std::filesystem::file_size(path), path,
                           "a PyTorch pickle (the official mobilenet0.25_Final.pth?); convert it once with "
                           "`python -m pixel3dmm.convert_preprocessing retinaface ",
                           path, "` and pass the .safetensors it writes");
  }
  const io::SafetensorsFile file = io::read_safetensors(path);
  const auto format = file.metadata.find("format");
  PIXEL3DMM_CHECK_FORMAT(format == file.metadata.end() || format->second == "pixel3dmm-retinaface", path, "holds '",
                         format == file.metadata.end() ? "" : format->second,
                         "' weights, not RetinaFace (pixel3dmm-retinaface); convert mobilenet0.25_Final.pth with "
                         "python -m pixel3dmm.convert_preprocessing retinaface");
  RetinaFace net;
  load_retinaface_state_dict(net, file.tensors, path);
  net->eval();
  return net;
}


namespace {

constexpr double kVariance0 = 0.1, kVariance1 = 0.2;
constexpr int64_t kSteps[3] = {8, 16, 32};
constexpr int64_t kMinSizes[3][2] = {{16, 32}, {64, 128}, {256, 512}};

}  // namespace

torch::Tensor retinaface_anchors(int64_t height, int64_t width) {
  PIXEL3DMM_CHECK(height > 0 && width > 0, "retinaface_anchors: expected a positive size, found ", width, " x ", height);
  std::vector<double> rows;
  const double H = static_cast<double>(height), W = static_cast<double>(width);
  for (int k = 0; k < 3; ++k) {
    const int64_t step = kSteps[k];
    const int64_t fh = (height + step - 1) / step, fw = (width + step - 1) / step;  // ceil, as the stride-2 convs
    for (int64_t i = 0; i < fh; ++i) {
      for (int64_t j = 0; j < fw; ++j) {
        for (const int64_t s : kMinSizes[k]) {
          // facer: x * step / W with x = j + 0.5 (Python floats, left to right), min_size / W.
          rows.push_back((static_cast<double>(j) + 0.5) * static_cast<double>(step) / W);
          rows.push_back((static_cast<double>(i) + 0.5) * static_cast<double>(step) / H);
          rows.push_back(static_cast<double>(s) / W);
          rows.push_back(static_cast<double>(s) / H);
        }
      }
    }
  }
  const auto n = static_cast<int64_t>(rows.size() / 4);
  return torch::from_blob(rows.data(), {n, 4}, torch::kDouble).to(torch::kFloat);
}

std::vector<int64_t> retinaface_nms(const torch::Tensor& dets, double threshold) {
  check_shape(dets, {-1, 5}, "retinaface_nms: dets");
  PIXEL3DMM_CHECK(dets.scalar_type() == torch::kFloat, "retinaface_nms: expected float32 dets, found ",
                  dets.scalar_type());
  const auto x1 = dets.select(1, 0), y1 = dets.select(1, 1), x2 = dets.select(1, 2), y2 = dets.select(1, 3),
             scores = dets.select(1, 4);
  const auto areas = (x2 - x1 + 1) * (y2 - y1 + 1);
  auto order = torch::flip(scores.argsort(), {0});
  const auto zero = torch::tensor(0.0f);
  std::vector<int64_t> keep;
  while (order.numel() > 0) {
    const int64_t i = order[0].item<int64_t>();
    keep.push_back(i);
    const auto rest = order.slice(0, 1);
    const auto xx1 = torch::maximum(x1[i], x1.index({rest}));
    const auto yy1 = torch::maximum(y1[i], y1.index({rest}));
    const auto xx2 = torch::minimum(x2[i], x2.index({rest}));
    const auto yy2 = torch::minimum(y2[i], y2.index({rest}));
    const auto w = torch::maximum(zero, xx2 - xx1 + 1);
    const auto h = torch::maximum(zero, yy2 - yy1 + 1);
    const auto inter = w * h;
    const auto ovr = inter / (areas[i] + areas.index({rest}) - inter);
    const auto inds = torch::where(ovr <= threshold)[0];
    order = order.index({inds + 1});
  }
  return keep;
}

std::vector<RetinaFaceDetection> decode_retinaface(const torch::Tensor& loc, const torch::Tensor& conf,
                                                   const torch::Tensor& landmarks, int64_t height, int64_t width,
                                                   const RetinaFaceOptions& o) {
  torch::NoGradGuard no_grad;
  const torch::Tensor priors = retinaface_anchors(height, width);
  const int64_t A = priors.size(0);
  check_shape(loc, {A, 4}, "decode_retinaface: loc");
  check_shape(conf, {A, 2}, "decode_retinaface: conf");
  check_shape(landmarks, {A, 10}, "decode_retinaface: landmarks");
  const auto lc = loc.to(torch::kCPU, torch::kFloat), cf = conf.to(torch::kCPU, torch::kFloat),
             lm = landmarks.to(torch::kCPU, torch::kFloat);
  const float W = static_cast<float>(width), H = static_cast<float>(height);
  const auto pxy = priors.slice(1, 0, 2), pwh = priors.slice(1, 2, 4);

  // decode(): centre offsets and log sizes, then corners (in place, as facer).
  auto boxes = torch::cat({pxy + lc.slice(1, 0, 2) * kVariance0 * pwh, pwh * torch::exp(lc.slice(1, 2, 4) * kVariance1)},
                          1);
  boxes.slice(1, 0, 2).sub_(boxes.slice(1, 2, 4) / 2);
  boxes.slice(1, 2, 4).add_(boxes.slice(1, 0, 2));
  boxes = boxes * torch::tensor({W, H, W, H});  // facer then divides by resize = 1: exact, left out
  auto scores = cf.select(1, 1);
  std::vector<torch::Tensor> parts;
  for (int k = 0; k < 5; ++k) parts.push_back(pxy + lm.slice(1, 2 * k, 2 * k + 2) * kVariance0 * pwh);
  auto points = torch::cat(parts, 1) * torch::tensor({W, H, W, H, W, H, W, H, W, H});

  const auto inds = torch::where(scores > o.score_threshold)[0];
  if (inds.numel() == 0) return {};
  boxes = boxes.index({inds});
  points = points.index({inds});
  scores = scores.index({inds});
  const auto order = torch::flip(scores.argsort(), {0}).slice(0, 0, o.top_k);
  boxes = boxes.index({order});
  points = points.index({order});
  scores = scores.index({order});
  auto dets = torch::hstack({boxes, scores.unsqueeze(-1)}).to(torch::kFloat);
  const std::vector<int64_t> keep = retinaface_nms(dets, o.nms_threshold);
  const auto k = torch::tensor(keep, torch::kLong);
  dets = dets.index({k}).slice(0, 0, o.keep_top_k);
  points = points.index({k}).slice(0, 0, o.keep_top_k);

  std::vector<RetinaFaceDetection> faces;
  for (int64_t r = 0; r < dets.size(0); ++r) {
    RetinaFaceDetection d;
    d.box = dets[r].slice(0, 0, 4).clone();
    d.points = points[r].reshape({5, 2}).clone();
    d.score = dets[r][4].item<float>();
    faces.push_back(std::move(d));
  }
  // facer: sorted(dets, key=score, reverse=True), a stable sort (NMS already returns descending scores).
  std::stable_sort(faces.begin(), faces.end(),
                   [](const RetinaFaceDetection& a, const RetinaFaceDetection& b) { return a.score > b.score; });
  return faces;
}

RetinaFaceDetector::RetinaFaceDetector(const std::string& weights, RetinaFaceOptions options)
    : net_(load_retinaface(weights)), options_(options), source_(weights) {}

RetinaFaceDetector::RetinaFaceDetector(RetinaFace net, RetinaFaceOptions options)
    : net_(std::move(net)), options_(options) {
  net_->eval();
}

RetinaFaceOutput RetinaFaceDetector::raw(const torch::Tensor& image) const {
  check_shape(image, {1, 3, -1, -1}, "RetinaFaceDetector: image");
  torch::NoGradGuard no_grad;
  return const_cast<RetinaFace&>(net_)->forward(retinaface_input(image));
}

std::vector<RetinaFaceDetection> RetinaFaceDetector::detect(const torch::Tensor& image) const {
  const RetinaFaceOutput out = raw(image);
  return decode_retinaface(out.loc[0], out.conf[0], out.landmarks[0], image.size(2), image.size(3), options_);
}

}  // namespace pixel3dmm::preprocess
