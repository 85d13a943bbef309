#include "pixel3dmm/io/resize.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::io {
namespace {

// Pillow's constants and kernel (libImaging/Resample.c): bicubic with a = -0.5, support 2.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output pixel: first input index, tap count and fixed-point weights (ksize per pixel).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coeffs precompute(int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);  // truncation toward zero, as Pillow's (int) cast
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      // normalize_coeffs_8bpc: round half away from zero
      c.weights[size_t(xx) * c.ksize + x] =
          w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits)) : int32_t(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift, as Pillow's lookup index
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

torch::Tensor resize_pil_bicubic_u8(const torch::Tensor& image, int64_t height, int64_t width) {
  check_shape(image, {-1, -1, -1, -1}, "resize_pil_bicubic_u8 image");
  check_dtype(image, torch::kUInt8, "resize_pil_bicubic_u8 image");
  PIXEL3DMM_CHECK(height > 0 && width > 0, "resize_pil_bicubic_u8: output size must be positive, found ", height,
                  " x ", width);
  const int64_t N = image.size(0), C = image.size(1), H = image.size(2), W = image.size(3);
  PIXEL3DMM_CHECK(H > 0 && W > 0, "resize_pil_bicubic_u8: empty input image ", shape_string(image.sizes()));
  if (H == height && W == width) return image.clone();
  const bool need_h = W != width, need_v = H != height;
  const Coeffs ch = precompute(int(W), int(width)), cv = precompute(int(H), int(height));
  // Rows of the input the vertical pass reads (Pillow's horizontal pass covers only those).
  const int y0 = need_v ? cv.first[0] : 0;
  const int y1 = need_v ? cv.first[height - 1] + cv.count[height - 1] : int(H);
  auto src = image.contiguous();
  auto out = torch::empty({N, C, height, width}, image.options());
  const uint8_t* in = src.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> tmp(size_t(y1 - y0) * width);
    for (int64_t plane = begin; plane < end; ++plane) {
      const uint8_t* p = in + plane * H * W;
      uint8_t* q = dst + plane * height * width;
      // Horizontal pass into tmp (rows y0..y1), or a copy when the width is unchanged.
      for (int y = y0; y < y1; ++y) {
        const uint8_t* row = p + int64_t(y) * W;
        uint8_t* trow = tmp.data() + size_t(y - y0) * width;
        if (!need_h) {
          std::copy(row, row + W, trow);
          continue;
        }
        for (int64_t xx = 0; xx < width; ++xx) {
          const int32_t* k = ch.weights.data() + xx * ch.ksize;
          int32_t ss = 1 << (kPrecisionBits - 1);
          const uint8_t* s = row + ch.first[xx];
          for (int x = 0; x < ch.count[xx]; ++x) ss += int32_t(s[x]) * k[x];
          trow[xx] = clip8(ss);
        }
      }
      // Vertical pass from tmp, or a copy when the height is unchanged.
      for (int64_t yy = 0; yy < height; ++yy) {
        uint8_t* orow = q + yy * width;
        if (!need_v) {
          std::copy(tmp.data() + yy * width, tmp.data() + (yy + 1) * width, orow);
          continue;
        }
        const int32_t* k = cv.weights.data() + yy * cv.ksize;
        const int first = cv.first[yy] - y0, count = cv.count[yy];
        for (int64_t xx = 0; xx < width; ++xx) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int y = 0; y < count; ++y) ss += int32_t(tmp[size_t(first + y) * width + xx]) * k[y];
          orow[xx] = clip8(ss);
        }
      }
    }
  });
  return out;
}

torch::Tensor resize_pil_bicubic(const torch::Tensor& image, int64_t height, int64_t width) {
  check_shape(image, {-1, -1, -1, -1}, "resize_pil_bicubic image");
  PIXEL3DMM_CHECK(image.is_floating_point(), "resize_pil_bicubic: expected a float image in [0, 1], found ",
                  c10::toString(image.scalar_type()));
  if (image.size(2) == height && image.size(3) == width) return image;
  auto u8 = (image.detach().to(torch::kFloat) * 255).round().clamp(0, 255).to(torch::kUInt8);
  return resize_pil_bicubic_u8(u8, height, width).to(image.scalar_type()) / 255;
}

}  // namespace pixel3dmm::io
