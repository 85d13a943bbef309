#include "pixel3dmm/predict/predictor.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"
#include "pixel3dmm/io/resize.h"

namespace pixel3dmm::predict {

namespace {
// The official UV un-mirroring adds twice this to -u (the texture's asymmetry about u = 0, in [-1, 1] units).
constexpr double kUvMirrorShift = 0.0075;

nn::Pixel3DMMNet bfloat16_copy(const nn::Pixel3DMMNet& net) {
  if (!net) return net;
  nn::Pixel3DMMNet copy(std::dynamic_pointer_cast<nn::Pixel3DMMNetImpl>(net->clone()));
  copy->to(torch::kBFloat16);
  return copy;
}

bool cpuinfo_has_flag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;)
      if (w == flag) return true;
    return false;  // the first processor's flags speak for all
  }
  return false;
}
}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "float32" || name == "fp32") return Precision::Float32;
  if (name == "bf16" || name == "bfloat16") return Precision::BFloat16;
  throw ValueError("precision: expected float32 or bf16, found '" + name + "'");
}

std::string to_string(Precision precision) { return precision == Precision::BFloat16 ? "bf16" : "float32"; }

bool cpu_has_native_bf16() {
  static const bool native = cpuinfo_has_flag("avx512_bf16") || cpuinfo_has_flag("amx_bf16");
  return native;
}

Predictor::Predictor(nn::Pixel3DMMNet uv_net, nn::Pixel3DMMNet normals_net, PredictorOptions options)
    : uv_net_(std::move(uv_net)), normals_net_(std::move(normals_net)), options_(options) {
  PIXEL3DMM_CHECK(uv_net_ || normals_net_, "Predictor: give at least one network");
  if (uv_net_)
    PIXEL3DMM_CHECK(uv_net_->config.prediction_type == nn::PredictionType::UV,
                    "Predictor: the UV network predicts '", nn::to_string(uv_net_->config.prediction_type), "'");
  if (normals_net_)
    PIXEL3DMM_CHECK(normals_net_->config.prediction_type == nn::PredictionType::Normals,
                    "Predictor: the normals network predicts '", nn::to_string(normals_net_->config.prediction_type),
                    "'");
  if (uv_net_ && normals_net_)
    PIXEL3DMM_CHECK(uv_net_->config.image_size == normals_net_->config.image_size,
                    "Predictor: the networks' input sizes differ (", uv_net_->config.image_size, " vs ",
                    normals_net_->config.image_size, ")");
  image_size_ = (uv_net_ ? uv_net_ : normals_net_)->config.image_size;
  if (options_.precision == Precision::BFloat16) {
    PIXEL3DMM_CHECK(cpu_has_native_bf16(),
                    "Predictor: precision bf16 needs a CPU with native bfloat16 arithmetic (the avx512_bf16 or "
                    "amx_bf16 flag in /proc/cpuinfo); this one has neither, and LibTorch's emulation would be slower "
                    "than float32: use precision float32");
    uv_net_ = bfloat16_copy(uv_net_);
    normals_net_ = bfloat16_copy(normals_net_);
  }
  if (uv_net_) uv_net_->eval();
  if (normals_net_) normals_net_->eval();
}

Predictor Predictor::load(const std::string& uv_weights, const std::string& normals_weights,
                          PredictorOptions options) {
  nn::Pixel3DMMNet uv{nullptr}, normals{nullptr};
  if (!uv_weights.empty()) uv = nn::load_network(uv_weights);
  if (!normals_weights.empty()) normals = nn::load_network(normals_weights);
  return Predictor(uv, normals, options);
}

torch::Tensor Predictor::prepare(const torch::Tensor& rgb) const {
  check_shape(rgb, {-1, 3, -1, -1}, "Predictor input (RGB crops)");
  check_dtype(rgb, torch::kFloat, "Predictor input (RGB crops)");
  PIXEL3DMM_CHECK(rgb.size(0) > 0 && rgb.size(2) > 0 && rgb.size(3) > 0, "Predictor input: empty batch or image ",
                  shape_string(rgb.sizes()));
  check_finite(rgb, "Predictor input (RGB crops)");
  return io::resize_pil_bicubic(rgb, image_size_, image_size_).contiguous();
}

torch::Tensor Predictor::run(nn::Pixel3DMMNet net, const torch::Tensor& input) const {
  const auto type = net->config.prediction_type;
  const bool bf16 = options_.precision == Precision::BFloat16;
  const auto x = bf16 ? input.to(torch::kBFloat16) : input;
  if (!options_.mirror) return net->forward(x).to(torch::kFloat);
  const int64_t B = x.size(0);
  const auto flipped = x.flip({3});
  torch::Tensor direct, mirrored;
  if (options_.batch_mirror) {
    auto both = net->forward(torch::cat({x, flipped}, 0));
    direct = both.narrow(0, 0, B).to(torch::kFloat);
    mirrored = both.narrow(0, B, B).to(torch::kFloat);
  } else {
    direct = net->forward(x).to(torch::kFloat);
    mirrored = net->forward(flipped).to(torch::kFloat);
  }
  return (direct + unmirror(mirrored, type)) / 2;
}

Predictions Predictor::predict(const torch::Tensor& rgb) const {
  torch::NoGradGuard no_grad;
  const auto x = prepare(rgb);
  Predictions p;
  if (uv_net_) {
    p.uv_raw = run(uv_net_, x);
    p.uv = uv_from_raw(p.uv_raw);
  }
  if (normals_net_) {
    p.normals_raw = run(normals_net_, x);
    p.normals = normals_from_raw(p.normals_raw);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
torch::Tensor unmirror(const torch::Tensor& out, nn::PredictionType type) {
  check_shape(out, {-1, nn::prediction_channels(type), -1, -1}, "unmirror input");
  auto f = out.flip({3});
  auto c0 = -f.narrow(1, 0, 1);
  if (type == nn::PredictionType::UV) c0 = c0 + 2 * kUvMirrorShift;
  return torch::cat({c0, f.narrow(1, 1, f.size(1) - 1)}, 1);
}

torch::Tensor uv_from_raw(const torch::Tensor& uv_raw) {
  check_shape(uv_raw, {-1, 2, -1, -1}, "raw UV output");
  return torch::clamp((uv_raw + 1) / 2, 0, 1);
}

namespace {
// The official per-pixel normalisation (a zero vector gives NaN there; here it stays zero).
torch::Tensor unit(const torch::Tensor& n, bool guard_zero) {
  auto norm = at::linalg_vector_norm(n, 2, {1}, /*keepdim=*/true);
  return n / (guard_zero ? norm.clamp_min(1e-12) : norm);
}

torch::Tensor to_u8_truncating(const torch::Tensor& x) {
  // numpy's astype(uint8) of a float in [0, 255] truncates; NaN (a zero normal) becomes 0 here.
  return torch::nan_to_num(x, 0.0).clamp(0, 255).to(torch::kUInt8);
}
}  // namespace

torch::Tensor normals_from_raw(const torch::Tensor& normals_raw) {
  check_shape(normals_raw, {-1, 3, -1, -1}, "raw normals output");
  const auto n = unit(normals_raw, true);
  return torch::cat({n.narrow(1, 0, 1), -n.narrow(1, 2, 1), -n.narrow(1, 1, 1)}, 1);
}

torch::Tensor uv_png(const torch::Tensor& uv_raw) {
  auto t = uv_from_raw(uv_raw.to(torch::kFloat));
  auto rgb = torch::cat({t, torch::zeros_like(t.narrow(1, 0, 1))}, 1);
  return to_u8_truncating(rgb.permute({0, 2, 3, 1}) * 255).contiguous();
}

torch::Tensor normals_png(const torch::Tensor& normals_raw) {
  check_shape(normals_raw, {-1, 3, -1, -1}, "raw normals output");
  auto t = torch::clamp((unit(normals_raw.to(torch::kFloat), false) + 1) / 2, 0, 1);
  auto rgb = torch::cat({t.narrow(1, 0, 1), 1 - t.narrow(1, 2, 1), 1 - t.narrow(1, 1, 1)}, 1);
  return to_u8_truncating(rgb.permute({0, 2, 3, 1}) * 255).contiguous();
}

torch::Tensor side_by_side_png(const torch::Tensor& rgb, const torch::Tensor& png) {
  check_shape(rgb, {-1, 3, -1, -1}, "side_by_side_png rgb");
  check_shape(png, {rgb.size(0), rgb.size(2), rgb.size(3), 3}, "side_by_side_png prediction pixels");
  check_dtype(png, torch::kUInt8, "side_by_side_png prediction pixels");
  auto left = to_u8_truncating(rgb.to(torch::kFloat).permute({0, 2, 3, 1}) * 255);
  return torch::cat({left, png}, 2).contiguous();
}

void write_png_rgb8(const std::string& path, const torch::Tensor& pixels) {
  check_shape(pixels, {-1, -1, 3}, "write_png_rgb8 pixels");
  check_dtype(pixels, torch::kUInt8, "write_png_rgb8 pixels");
  auto px = pixels.contiguous().cpu();
  cv::Mat rgb(int(px.size(0)), int(px.size(1)), CV_8UC3, px.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  write_atomically(path, [&](const std::string& tmp) {
    bool ok = false;
    try {
      ok = cv::imwrite(tmp, bgr);
    } catch (const cv::Exception& e) {
      throw Error(path + ": cannot write PNG (" + e.what() + ")");
    }
    PIXEL3DMM_CHECK_T(Error, ok, path, ": cannot write PNG");
  });
}

}  // namespace pixel3dmm::predict
