#include "pixel3dmm/preprocess/pipnet.h"

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <utility>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/preprocess/detail/load_strict.h"
#include "pixel3dmm/preprocess/detail/numpy_argsort.h"

namespace pixel3dmm::preprocess {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(bias));
}
torch::nn::BatchNorm2d bn(int64_t c) { return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(c).eps(1e-5)); }
}  // namespace

ResNetBasicBlockImpl::ResNetBasicBlockImpl(int64_t in, int64_t out, int64_t stride) : in(in), out(out), stride(stride) {
  reset();
}

void ResNetBasicBlockImpl::reset() {
  conv1 = register_module("conv1", conv(in, out, 3, stride, 1, false));
  bn1 = register_module("bn1", bn(out));
  conv2 = register_module("conv2", conv(out, out, 3, 1, 1, false));
  bn2 = register_module("bn2", bn(out));
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride, 0, false), bn(out)));
  }
}

torch::Tensor ResNetBasicBlockImpl::forward(const torch::Tensor& x) {
  auto y = bn2(conv2(torch::relu(bn1(conv1(x)))));
  return torch::relu(y + (downsample ? downsample->forward(x) : x));
}

PipNetImpl::PipNetImpl(const PipNetOptions& options) : options(options) { reset(); }

void PipNetImpl::reset() {
  PIXEL3DMM_CHECK(options.net_stride() == 32, "PipNetOptions.net_stride: only 32 (the official config) is built, "
                                              "found ", options.net_stride());
  PIXEL3DMM_CHECK(options.num_landmarks() > 0 && options.num_neighbours() > 0 && options.input_size() >= 32,
                  "PipNetOptions: expected positive landmark and neighbour counts and input_size >= 32");
  conv1 = register_module("conv1", conv(3, 64, 7, 2, 3, false));
  bn1 = register_module("bn1", bn(64));
  auto stage = [](int64_t in, int64_t out, int64_t stride) {
    return torch::nn::Sequential(ResNetBasicBlock(in, out, stride), ResNetBasicBlock(out, out, 1));
  };
  layer1 = register_module("layer1", stage(64, 64, 1));
  layer2 = register_module("layer2", stage(64, 128, 2));
  layer3 = register_module("layer3", stage(128, 256, 2));
  layer4 = register_module("layer4", stage(256, 512, 2));
  const int64_t L = options.num_landmarks(), N = options.num_neighbours();
  cls_layer = register_module("cls_layer", conv(512, L, 1, 1, 0, true));
  x_layer = register_module("x_layer", conv(512, L, 1, 1, 0, true));
  y_layer = register_module("y_layer", conv(512, L, 1, 1, 0, true));
  nb_x_layer = register_module("nb_x_layer", conv(512, L * N, 1, 1, 0, true));
  nb_y_layer = register_module("nb_y_layer", conv(512, L * N, 1, 1, 0, true));
}

PipNetHeads PipNetImpl::forward(const torch::Tensor& input) {
  PIXEL3DMM_CHECK(input.dim() == 4 && input.size(1) == 3, "PIPNet: expected a B x 3 x H x W input, found ",
                  shape_string(input.sizes()));
  auto x = torch::max_pool2d(torch::relu(bn1(conv1(input))), 3, 2, 1);
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  return {cls_layer(x), x_layer(x), y_layer(x), nb_x_layer(x), nb_y_layer(x)};
}

PipNetNeighbours pipnet_neighbours(const torch::Tensor& mean_face, int64_t num_neighbours) {
  PIXEL3DMM_CHECK(mean_face.defined() && mean_face.numel() % 2 == 0 && mean_face.numel() > 0,
                  "pipnet_neighbours: expected L x 2 mean-face points, found ",
                  mean_face.defined() ? shape_string(mean_face.sizes()) : std::string("nothing"));
  const auto m = mean_face.to(torch::kCPU, torch::kDouble).reshape({-1, 2}).contiguous();
  const int64_t L = m.size(0), N = num_neighbours;
  PIXEL3DMM_CHECK(N >= 1 && N < L, "pipnet_neighbours: ", N, " neighbours need at least ", N + 1,
                  " mean-face points, found ", L);
  const auto a = m.accessor<double, 2>();
  PipNetNeighbours out;
  out.mean_face = m;
  out.neighbours = torch::empty({L, N}, torch::kInt64);
  auto nb = out.neighbours.accessor<int64_t, 2>();
  // reverse[t] = the (l, n) pairs with neighbours[l][n] == t, in order of l then n.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> reverse(static_cast<size_t>(L));
  std::vector<double> d(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t j = 0; j < L; ++j) {
      const double dx = a[l][0] - a[j][0], dy = a[l][1] - a[j][1];
      d[static_cast<size_t>(j)] = dx * dx + dy * dy;
    }
    // Entry 0 of NumPy's argsort is the point itself (distance 0), as the official code assumes.
    const auto order = detail::numpy_argsort(d.data(), L);
    for (int64_t n = 0; n < N; ++n) {
      nb[l][n] = order[static_cast<size_t>(n + 1)];
      reverse[static_cast<size_t>(nb[l][n])].emplace_back(l, n);
    }
  }
  for (int64_t t = 0; t < L; ++t) {
    PIXEL3DMM_CHECK(!reverse[static_cast<size_t>(t)].empty(), "pipnet_neighbours: mean-face point ", t,
                    " is no other point's neighbour; the merge needs at least one");
    out.max_len = std::max<int64_t>(out.max_len, static_cast<int64_t>(reverse[static_cast<size_t>(t)].size()));
  }
  out.reverse_landmark = torch::empty({L, out.max_len}, torch::kInt64);
  out.reverse_neighbour = torch::empty({L, out.max_len}, torch::kInt64);
  auto rl = out.reverse_landmark.accessor<int64_t, 2>();
  auto rn = out.reverse_neighbour.accessor<int64_t, 2>();
  for (int64_t t = 0; t < L; ++t) {
    const auto& r = reverse[static_cast<size_t>(t)];
    // The official `list + list * 10`, truncated to max_len: the list repeated cyclically.
    for (int64_t k = 0; k < out.max_len; ++k) {
      const auto& [l, n] = r[static_cast<size_t>(k) % r.size()];
      rl[t][k] = l;
      rn[t][k] = n;
    }
  }
  return out;
}

torch::Tensor pipnet_input(const torch::Tensor& bgr, const PipnetBox& box, int64_t input_size) {
  PIXEL3DMM_CHECK(bgr.dim() == 3 && bgr.size(2) == 3 && bgr.scalar_type() == torch::kUInt8,
                  "pipnet_input: expected an H x W x 3 uint8 BGR image, found ", shape_string(bgr.sizes()), " ",
                  c10::toString(bgr.scalar_type()));
  const int64_t H = bgr.size(0), W = bgr.size(1);
  PIXEL3DMM_CHECK(box.x >= 0 && box.y >= 0 && box.xmax < W && box.ymax < H, "pipnet_input: the box (", box.x, ", ",
                  box.y, ") - (", box.xmax, ", ", box.ymax, ") is not inside the ", W, " x ", H, " image");
  PIXEL3DMM_CHECK_T(NoFaceFound, box.xmax > box.x && box.ymax > box.y, "pipnet_input: PIPNet's box (", box.x, ", ",
                    box.y, ") - (", box.xmax, ", ", box.ymax, ") leaves an empty landmark crop");
  torch::Tensor image = bgr.clone().contiguous();
  cv::Mat mat(static_cast<int>(H), static_cast<int>(W), CV_8UC3, image.data_ptr<uint8_t>());
  // The official debug rectangle, drawn before the crop is taken (PU:299-300): the network sees it.
  cv::rectangle(mat, cv::Point(static_cast<int>(box.x), static_cast<int>(box.y)),
                cv::Point(static_cast<int>(box.xmax), static_cast<int>(box.ymax)), cv::Scalar(0, 0, 255), 2);
  const cv::Mat region = mat(cv::Range(static_cast<int>(box.y), static_cast<int>(box.ymax)),
                             cv::Range(static_cast<int>(box.x), static_cast<int>(box.xmax)));
  auto resized = torch::empty({input_size, input_size, 3}, torch::kUInt8);
  cv::Mat dst(static_cast<int>(input_size), static_cast<int>(input_size), CV_8UC3, resized.data_ptr<uint8_t>());
  cv::resize(region, dst, dst.size(), 0, 0, cv::INTER_LINEAR);
  // torchvision ToTensor (uint8 / 255) and Normalize ((x - mean) / std, both float32), RGB.
  const auto rgb = resized.flip({2}).permute({2, 0, 1}).to(torch::kFloat32).div(255);
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({3, 1, 1});
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({3, 1, 1});
  return rgb.sub(mean).div(std).unsqueeze(0).contiguous();
}

torch::Tensor pipnet_decode(const PipNetHeads& heads, const PipNetNeighbours& neighbours, int64_t input_size) {
  PIXEL3DMM_CHECK(heads.cls.defined() && heads.cls.dim() == 4 && heads.cls.size(0) == 1,
                  "pipnet_decode: expected batch-1 heads, found cls ",
                  heads.cls.defined() ? shape_string(heads.cls.sizes()) : std::string("undefined"));
  const int64_t L = heads.cls.size(1), g = heads.cls.size(3);
  const int64_t N = neighbours.neighbours.defined() ? neighbours.neighbours.size(1) : 0;
  PIXEL3DMM_CHECK(neighbours.reverse_landmark.defined() && neighbours.reverse_landmark.size(0) == L,
                  "pipnet_decode: the heads predict ", L, " landmarks, the mean face has ",
                  neighbours.reverse_landmark.defined() ? neighbours.reverse_landmark.size(0) : 0);
  check_shape(heads.x, {1, L, heads.cls.size(2), g}, "pipnet_decode: x head");
  check_shape(heads.y, {1, L, heads.cls.size(2), g}, "pipnet_decode: y head");
  check_shape(heads.nb_x, {1, L * N, heads.cls.size(2), g}, "pipnet_decode: nb_x head");
  check_shape(heads.nb_y, {1, L * N, heads.cls.size(2), g}, "pipnet_decode: nb_y head");
  // forward_pip, op for op (float32).
  const auto ids = heads.cls.reshape({L, -1}).argmax(1).view({-1, 1});  // first maximum
  const auto ids_nb = ids.repeat({1, N}).view({-1, 1});
  const auto x_sel = heads.x.reshape({L, -1}).gather(1, ids).squeeze(1);
  const auto y_sel = heads.y.reshape({L, -1}).gather(1, ids).squeeze(1);
  const auto nbx_sel = heads.nb_x.reshape({L * N, -1}).gather(1, ids_nb).squeeze(1).view({-1, N});
  const auto nby_sel = heads.nb_y.reshape({L * N, -1}).gather(1, ids_nb).squeeze(1).view({-1, N});
  const auto gx = ids.remainder(g).view({-1, 1}).to(torch::kFloat32);
  const auto gy = ids.div(g, "floor").view({-1, 1}).to(torch::kFloat32);
  const double cells = 1.0 * static_cast<double>(input_size) / 32.0;
  auto px = (gx + x_sel.view({-1, 1})).div_(cells);
  auto py = (gy + y_sel.view({-1, 1})).div_(cells);
  auto nbx = (gx + nbx_sel).view({-1, N}).div_(cells);
  auto nby = (gy + nby_sel).view({-1, N}).div_(cells);
  // The merge: each point's own prediction and its max_len reverse-neighbour predictions, float32 mean.
  const auto i1 = neighbours.reverse_landmark.reshape({-1}), i2 = neighbours.reverse_neighbour.reshape({-1});
  const auto tx = nbx.index({i1, i2}).view({L, neighbours.max_len});
  const auto ty = nby.index({i1, i2}).view({L, neighbours.max_len});
  const auto mx = torch::cat({px, tx}, 1).mean(1).view({-1, 1});
  const auto my = torch::cat({py, ty}, 1).mean(1).view({-1, 1});
  return torch::cat({mx, my}, 1).contiguous();
}

torch::Tensor pipnet_export(const torch::Tensor& merged, const PipnetBox& box, int64_t height, int64_t width) {
  PIXEL3DMM_CHECK(merged.dim() == 2 && merged.size(1) == 2, "pipnet_export: expected L x 2 landmarks, found ",
                  shape_string(merged.sizes()));
  const auto m = merged.to(torch::kFloat32).contiguous();
  const auto a = m.accessor<float, 2>();
  auto out = torch::empty({m.size(0), 2}, torch::kFloat64);
  auto o = out.accessor<double, 2>();
  // NumPy 1.x: a float32 scalar times a Python int is float64 (PU:321-326).
  const double bw = static_cast<double>(box.width()), bh = static_cast<double>(box.height());
  for (int64_t i = 0; i < m.size(0); ++i) {
    o[i][0] = (static_cast<double>(a[i][0]) * bw + static_cast<double>(box.x)) / static_cast<double>(width);
    o[i][1] = (static_cast<double>(a[i][1]) * bh + static_cast<double>(box.y)) / static_cast<double>(height);
  }
  return out;
}

const std::vector<int64_t>& wflw_to_ibug68() {
  static const std::vector<int64_t> map = [] {
    std::vector<int64_t> m;
    for (int64_t i = 0; i <= 32; i += 2) m.push_back(i);              // jaw: every second contour point
    for (int64_t i : {33, 34, 35, 36, 37, 42, 43, 44, 45, 46}) m.push_back(i);  // brows, upper edges
    for (int64_t i = 51; i <= 59; ++i) m.push_back(i);                // nose bridge and nostrils
    for (int64_t i : {60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75}) m.push_back(i);  // eyes: 6 of 8 each
    for (int64_t i = 76; i <= 95; ++i) m.push_back(i);                // outer and inner lips
    return m;
  }();
  return map;
}

std::pair<torch::Tensor, torch::Tensor> wflw_landmarks_and_pupils(const torch::Tensor& wflw) {
  PIXEL3DMM_CHECK(wflw.defined() && wflw.dim() >= 2 && wflw.size(-1) == 2 && wflw.size(-2) == 98,
                  "wflw_landmarks_and_pupils: expected [P x] 98 x 2 WFLW points, found ",
                  wflw.defined() ? shape_string(wflw.sizes()) : std::string("undefined"));
  const auto idx = torch::tensor(wflw_to_ibug68(), torch::kInt64).to(wflw.device());
  const auto pupils = torch::tensor({kWflwLeftPupil, kWflwRightPupil}, torch::kInt64).to(wflw.device());
  return {wflw.index_select(-2, idx), wflw.index_select(-2, pupils)};
}

namespace {
constexpr const char* kFormat = "pixel3dmm-pipnet";

torch::Tensor parse_mean_face(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  std::vector<double> v;
  std::string word;
  while (in >> word) {
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(word.c_str(), &end);  // correctly rounded, as Python's float()
    PIXEL3DMM_CHECK_FORMAT(end && *end == '\0' && errno == 0 && std::isfinite(d), file, "metadata 'meanface': '",
                           word, "' is not a finite number");
    v.push_back(d);
  }
  PIXEL3DMM_CHECK_FORMAT(!v.empty() && v.size() % 2 == 0, file, "metadata 'meanface': expected (x, y) pairs, found ",
                         v.size(), " numbers");
  return torch::tensor(v, torch::kFloat64).view({-1, 2});
}
}  // namespace

PipNet load_pipnet(const std::string& weights, PipNetNeighbours* neighbours) {
  const auto file = io::read_safetensors(weights);
  const auto format = file.metadata.find("format");
  PIXEL3DMM_CHECK_FORMAT(format != file.metadata.end() && format->second == kFormat, weights, "holds '",
                         format == file.metadata.end() ? std::string("unlabelled") : format->second,
                         "' weights, not PIPNet (", kFormat, "); convert epoch59.pth with python -m "
                         "pixel3dmm.convert_preprocessing pipnet epoch59.pth --meanface meanface.txt");
  const auto mf = file.metadata.find("meanface");
  PIXEL3DMM_CHECK_FORMAT(mf != file.metadata.end(), weights, "metadata 'meanface' (the WFLW mean face) is missing; "
                         "convert again with --meanface PIPNet/data/WFLW/meanface.txt");
  const auto mean_face = parse_mean_face(mf->second, weights);
  PipNetOptions options;
  options.num_landmarks(mean_face.size(0));
  PIXEL3DMM_CHECK_FORMAT(options.num_landmarks() == 98, weights, "metadata 'meanface': expected 98 WFLW points, "
                         "found ", options.num_landmarks());
  PipNet net(options);
  detail::load_state_dict_strict(*net, file.tensors, weights);
  net->eval();
  if (neighbours) *neighbours = pipnet_neighbours(mean_face, options.num_neighbours());
  return net;
}

PipNetDetector::PipNetDetector(const std::string& weights) : net_(nullptr), source_(weights) {
  net_ = load_pipnet(weights, &neighbours_);
}

PipNetDetector::PipNetDetector(PipNet net, PipNetNeighbours neighbours, std::string source)
    : net_(std::move(net)), neighbours_(std::move(neighbours)), source_(std::move(source)) {
  PIXEL3DMM_CHECK(neighbours_.reverse_landmark.defined() &&
                      neighbours_.reverse_landmark.size(0) == net_->options.num_landmarks(),
                  "PipNetDetector: the mean face's point count does not match the network's ",
                  net_->options.num_landmarks(), " landmarks");
  net_->eval();
}

PipNetHeads PipNetDetector::forward(const torch::Tensor& input) const {
  torch::NoGradGuard no_grad;
  PipNet net = net_;  // a shared handle: forward is not const
  return net->forward(input);
}

torch::Tensor PipNetDetector::landmarks(const torch::Tensor& bgr, const PipnetBox& box) const {
  const int64_t S = net_->options.input_size();
  const auto heads = forward(pipnet_input(bgr, box, S));
  return pipnet_export(pipnet_decode(heads, neighbours_, S), box, bgr.size(0), bgr.size(1));
}

}  // namespace pixel3dmm::preprocess
