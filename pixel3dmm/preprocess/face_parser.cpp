// The official face parsing step. The alignment reproduces numpy 1.x float32 arithmetic in scalar C++ (no FMA on
// the x86-64 baseline the project builds for) and the torch part op by op with the same LibTorch ops, so that M
// matches the official code's to the last bit where the libraries agree.
#include "pixel3dmm/preprocess/face_parser.h"

#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <caffe2/serialize/versions.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::preprocess {

using ::pixel3dmm::detail::concat;
namespace F = torch::nn::functional;

namespace {

torch::Tensor as_batch_points(const torch::Tensor& points) {
  PIXEL3DMM_CHECK(points.defined(), "face parser: points are undefined");
  torch::Tensor p = points.dim() == 2 ? points.unsqueeze(0) : points;
  check_shape(p, {-1, 5, 2}, "face parser: points");
  PIXEL3DMM_CHECK(p.size(0) >= 1, "face parser: expected at least one face's points, found none");
  PIXEL3DMM_CHECK(p.is_floating_point(), "face parser: points: expected float, found ", p.scalar_type());
  p = p.to(torch::kCPU, torch::kFloat).contiguous();
  check_finite(p, "face parser: points");
  return p;
}

/// get_quad (numpy float32; numpy 1.x promotes a float32 scalar times a Python float to float64), corners in the
/// order the official code hands on: c - x - y, c + x - y, c + x + y, c - x + y. -> 4 x 2 float32.
torch::Tensor quad(const float* p) {
  const float eye[2] = {(p[0] + p[2]) * 0.5f + 0.5f, (p[1] + p[3]) * 0.5f + 0.5f};
  const float mouth[2] = {(p[6] + p[8]) * 0.5f + 0.5f, (p[7] + p[9]) * 0.5f + 0.5f};
  const float e2e[2] = {p[2] - p[0], p[3] - p[1]};
  const float e2m[2] = {mouth[0] - eye[0], mouth[1] - eye[1]};
  float x[2] = {e2e[0] - (-e2m[1]), e2e[1] - e2m[0]};  // e2e - rot90(e2m), rot90(v) = (-v1, v0)
  const float hx = std::hypot(x[0], x[1]);
  x[0] /= hx;
  x[1] /= hx;
  const double scale = std::max(static_cast<double>(std::hypot(e2e[0], e2e[1])) * 2.0,
                                static_cast<double>(std::hypot(e2m[0], e2m[1])) * 1.8);
  const float s = static_cast<float>(scale);  // array *= float64 scalar: the scalar is cast to float32
  x[0] *= s;
  x[1] *= s;
  const float y[2] = {-x[1], x[0]};
  const float c[2] = {eye[0] + e2m[0] * 0.1f, eye[1] + e2m[1] * 0.1f};
  auto q = torch::empty({4, 2}, torch::kFloat);
  float* o = q.data_ptr<float>();
  const float corners[4][2] = {{c[0] - x[0] - y[0], c[1] - x[1] - y[1]},
                               {c[0] + x[0] - y[0], c[1] + x[1] - y[1]},
                               {c[0] + x[0] + y[0], c[1] + x[1] + y[1]},
                               {c[0] - x[0] + y[0], c[1] - x[1] + y[1]}};
  std::memcpy(o, corners, sizeof corners);
  return q;
}

/// get_similarity_transform_matrix, op by op. from, to: B x n x 2 -> B x 3 x 3.
torch::Tensor similarity(const torch::Tensor& from, const torch::Tensor& to) {
  const auto mfrom = from.mean(1, true), mto = to.mean(1, true);
  const auto a1 = (from - mfrom).square().sum({1, 2}, false);
  const auto c1 = ((to - mto) * (from - mfrom)).sum({1, 2}, false);
  const auto td = to - mto, fd = from - mfrom;
  const auto c2 = (td.select(2, 0) * fd.select(2, 1) - td.select(2, 1) * fd.select(2, 0)).sum({1}, false);
  const auto a = c1 / a1, b = c2 / a1;
  const auto dx = mto.select(1, 0).select(1, 0) - a * mfrom.select(1, 0).select(1, 0) -
                  b * mfrom.select(1, 0).select(1, 1);
  const auto dy = mto.select(1, 0).select(1, 1) + b * mfrom.select(1, 0).select(1, 0) -
                  a * mfrom.select(1, 0).select(1, 1);
  const auto one = torch::ones_like(a1), zero = torch::zeros_like(a1);
  return torch::stack({a, b, dx, -b, a, dy, zero, zero, one}, -1).reshape({-1, 3, 3});
}

/// _forge_grid's input: every pixel at integer (x, y), row-major. -> B x (h * w) x 2 float32.
torch::Tensor pixel_coords(int64_t batch, int64_t h, int64_t w) {
  auto yx = torch::meshgrid({torch::arange(h).to(torch::kFloat), torch::arange(w).to(torch::kFloat)}, "ij");
  return torch::stack({yx[1], yx[0]}, -1).reshape({1, h * w, 2}).expand({batch, h * w, 2});
}

/// [coords, 1] @ m^T over the third component. coords: B x n x 2, m: B x 3 x 3.
torch::Tensor apply_homography(const torch::Tensor& coords, const torch::Tensor& m) {
  const auto homo = torch::cat({coords, torch::ones_like(coords.slice(2, 0, 1))}, -1);
  const auto out = torch::bmm(homo, m.permute({0, 2, 1}));
  return out.slice(2, 0, 2) / out.index_select(2, torch::tensor({2, 2}, torch::kLong));
}

void check_matrix(const torch::Tensor& matrix, const char* what) {
  check_shape(matrix, {-1, 3, 3}, what);
  PIXEL3DMM_CHECK(matrix.scalar_type() == torch::kFloat, what, ": expected float32, found ", matrix.scalar_type());
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

torch::Tensor face_align_matrix_celebm(const torch::Tensor& points, double bbox_scale_factor, int64_t size) {
  PIXEL3DMM_CHECK(size > 0, "face_align_matrix_celebm: size must be positive, found ", size);
  const torch::Tensor p = as_batch_points(points);
  std::vector<torch::Tensor> quads;
  for (int64_t i = 0; i < p.size(0); ++i) quads.push_back(quad(p[i].data_ptr<float>()));
  auto face = torch::stack(quads);  // B x 4 x 2
  const auto mean = face.mean(1).unsqueeze(1);
  const auto diff = face - mean;
  face = mean + torch::tensor({1.5f, 1.5f}).view({1, 1, 2}) * diff;
  const auto diagonal = torch::linalg::vector_norm(face.select(1, 0) - face.select(1, 2), 2, {-1}, false, {});
  // bbox_scale_factor + clamp((500 - d) / (500 - 350), 0, 1); 448 / f is Tensor.__rdiv__: reciprocal() * 448.
  const auto factor = torch::clamp((500 - diagonal) / 150, 0, 1) + bbox_scale_factor;
  const auto side = factor.reciprocal() * size;
  std::vector<torch::Tensor> targets;
  for (int64_t i = 0; i < side.size(0); ++i) {
    const float t = side[i].item<float>();
    auto target = torch::tensor({0.0f, 0.0f, t, 0.0f, t, t, 0.0f, t}).view({4, 2});
    const float offset = ((static_cast<float>(size) - side[i]) / 2).item<float>();
    target += static_cast<int64_t>(offset);  // Python int() truncates
    targets.push_back(target);
  }
  return similarity(face, torch::stack(targets));
}

torch::Tensor aligned_grid(const torch::Tensor& matrix, int64_t image_height, int64_t image_width, int64_t size) {
  check_matrix(matrix, "aligned_grid: matrix");
  const int64_t b = matrix.size(0);
  const auto coords = apply_homography(pixel_coords(b, size, size), torch::linalg::inv(matrix));
  const auto wh = torch::tensor({static_cast<float>(image_width), static_cast<float>(image_height)}).view({1, 1, 1, 2});
  return coords.reshape({b, size, size, 2}) / wh * 2 - 1;
}

torch::Tensor image_grid(const torch::Tensor& matrix, int64_t image_height, int64_t image_width, int64_t size) {
  check_matrix(matrix, "image_grid: matrix");
  const int64_t b = matrix.size(0);
  const auto coords = apply_homography(pixel_coords(b, image_height, image_width), matrix);
  const auto wh = torch::tensor({static_cast<float>(size), static_cast<float>(size)}).view({1, 1, 1, 2});
  return coords.reshape({b, image_height, image_width, 2}) / wh * 2 - 1;
}

torch::Tensor labels_from_logits(const torch::Tensor& logits) {
  check_shape(logits, {-1, -1, -1, -1}, "labels_from_logits: logits");
  PIXEL3DMM_CHECK(logits.is_floating_point(), "labels_from_logits: logits: expected float, found ",
                  logits.scalar_type());
  const int64_t c = logits.size(1);
  PIXEL3DMM_CHECK(c >= 1 && c + 1 <= 255, "labels_from_logits: expected 1..254 channels, found ", c);
  const auto outside = (logits == 0).all(1);
  auto labels = logits.softmax(1).argmax(1).to(torch::kUInt8);
  labels.masked_fill_(outside, static_cast<int64_t>(c + 1));
  return labels;
}

int64_t archive_format_version(const std::string& path) {
  // The zip's central directory (torch writes data descriptors, so local headers carry no sizes), then the
  // `<archive>/version` record, which torch stores uncompressed.
  std::ifstream in(path, std::ios::binary);
  if (!in) return -1;
  in.seekg(0, std::ios::end);
  const int64_t file_size = static_cast<int64_t>(in.tellg());
  if (file_size < 22) return -1;
  const int64_t tail_size = std::min<int64_t>(file_size, 22 + 65535);
  std::vector<unsigned char> tail(static_cast<size_t>(tail_size));
  in.seekg(file_size - tail_size);
  if (!in.read(reinterpret_cast<char*>(tail.data()), tail_size)) return -1;
  auto u16 = [](const unsigned char* b) { return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8; };
  auto u32 = [&](const unsigned char* b) { return u16(b) | u16(b + 2) << 16; };
  int64_t eocd = -1;
  for (int64_t i = tail_size - 22; i >= 0; --i) {
    if (u32(&tail[static_cast<size_t>(i)]) == 0x06054b50u) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return -1;
  const unsigned char* e = &tail[static_cast<size_t>(eocd)];
  const uint32_t entries = u16(e + 10), dir_offset = u32(e + 16);
  in.clear();
  in.seekg(dir_offset);
  for (uint32_t k = 0; k < entries; ++k) {
    unsigned char h[46];
    if (!in.read(reinterpret_cast<char*>(h), sizeof h) || u32(h) != 0x02014b50u) return -1;
    const uint32_t method = u16(h + 10), size = u32(h + 20), name_len = u16(h + 28), extra_len = u16(h + 30),
                   comment_len = u16(h + 32), local = u32(h + 42);
    std::string name(name_len, '\0');
    if (!in.read(name.data(), name_len)) return -1;
    in.seekg(extra_len + comment_len, std::ios::cur);
    const auto slash = name.find('/');
    if (slash == std::string::npos || name.substr(slash) != "/version") continue;
    if (method != 0 || size == 0 || size > 32) return -1;
    unsigned char lh[30];
    in.seekg(local);
    if (!in.read(reinterpret_cast<char*>(lh), sizeof lh) || u32(lh) != 0x04034b50u) return -1;
    in.seekg(static_cast<int64_t>(local) + 30 + u16(lh + 26) + u16(lh + 28));
    std::string text(size, '\0');
    if (!in.read(text.data(), size)) return -1;
    try {
      return std::stoll(text);
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

struct FaceParser::Impl {
  std::string path;
  FaceParserOptions options;
  mutable torch::jit::Module module;
};

FaceParser::FaceParser(const std::string& path, FaceParserOptions options) : impl_(std::make_unique<Impl>()) {
  PIXEL3DMM_CHECK(options.size > 0 && options.classes >= 1 && options.classes <= 254,
                  "FaceParserOptions: expected size > 0 and 1..254 classes, found size ", options.size, ", ",
                  options.classes, " classes");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw FileNotFound(concat(path, ": face parser TorchScript file not found (facer's "
                                    "face_parsing.farl.celebm.main_ema_181500_jit.pt)"));
  }
  impl_->path = path;
  impl_->options = options;
  try {
    impl_->module = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    const int64_t version = archive_format_version(path);
    const int64_t supported = static_cast<int64_t>(caffe2::serialize::kMaxSupportedFileFormatVersion);
    if (version > supported) {
      throw FormatError(concat(path, ": TorchScript archive of file format version ", version,
                               ", written by a newer PyTorch; this LibTorch (", TORCH_VERSION,
                               ") reads versions up to ", supported,
                               ". Re-save it with an older torch (docs/preprocessing.md, 'Face parser')"));
    }
    if (version < 0) {
      throw FormatError(concat(path, ": not a TorchScript archive (expected facer's "
                                     "face_parsing.farl.celebm.main_ema_181500_jit.pt, a zip written by "
                                     "torch.jit.save)"));
    }
    throw FormatError(concat(path, ": LibTorch ", TORCH_VERSION, " cannot load this TorchScript archive (file format ",
                             "version ", version, "): ", first_line(e.what_without_backtrace())));
  }
  impl_->module.eval();
}

FaceParser::~FaceParser() = default;
FaceParser::FaceParser(FaceParser&&) noexcept = default;
FaceParser& FaceParser::operator=(FaceParser&&) noexcept = default;

const std::string& FaceParser::path() const { return impl_->path; }
const FaceParserOptions& FaceParser::options() const { return impl_->options; }

torch::Tensor FaceParser::logits(const torch::Tensor& image, const torch::Tensor& points) const {
  check_shape(image, {1, 3, -1, -1}, "FaceParser: image");
  const auto& o = impl_->options;
  const torch::Tensor p = as_batch_points(points);
  torch::Tensor images;
  if (image.scalar_type() == torch::kByte) {
    images = image.to(torch::kCPU).to(torch::kFloat) / 255.0;  // official: images.float() / 255.0
  } else {
    PIXEL3DMM_CHECK(image.is_floating_point(), "FaceParser: image: expected uint8 or float in [0, 1], found ",
                    image.scalar_type());
    images = image.to(torch::kCPU, torch::kFloat);
    check_finite(images, "FaceParser: image");
  }
  const int64_t n = p.size(0), h = images.size(2), w = images.size(3);
  c10::InferenceMode guard;
  const auto matrix = face_align_matrix_celebm(p, o.bbox_scale_factor, o.size);
  const auto grid = aligned_grid(matrix, h, w, o.size);
  const auto inverse = image_grid(matrix, h, w, o.size);
  const auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false);
  const auto warped = F::grid_sample(images.expand({n, 3, h, w}).contiguous(), grid, opts);
  torch::IValue out;
  try {
    out = impl_->module.forward({warped});
  } catch (const c10::Error& e) {
    throw ValueError(concat(impl_->path, ": the face parser failed on a ", n, " x 3 x ", o.size, " x ", o.size,
                            " batch: ", first_line(e.what_without_backtrace())));
  }
  PIXEL3DMM_CHECK(out.isTuple() && out.toTupleRef().elements().size() == 2 &&
                      out.toTupleRef().elements()[0].isTensor(),
                  impl_->path, ": the face parser must return a tuple of two, the first the logits (as facer's "
                  "celebm model); found ", out.tagKind());
  const torch::Tensor logits = out.toTupleRef().elements()[0].toTensor();
  PIXEL3DMM_CHECK(logits.dim() == 4 && logits.size(0) == n && logits.size(1) == o.classes &&
                      logits.size(2) == o.size && logits.size(3) == o.size && logits.is_floating_point(),
                  impl_->path, ": the face parser's logits: expected float ", n, " x ", o.classes, " x ", o.size, " x ",
                  o.size, ", found ", logits.scalar_type(), " ", shape_string(logits.sizes()));
  return F::grid_sample(logits.to(torch::kFloat), inverse, opts);
}

torch::Tensor FaceParser::labels(const torch::Tensor& image, const torch::Tensor& points) const {
  c10::InferenceMode guard;
  return labels_from_logits(logits(image, points));
}

}  // namespace pixel3dmm::preprocess
