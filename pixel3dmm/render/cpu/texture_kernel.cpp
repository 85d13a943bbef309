// The CPU kernels of render::sample_texture (texture.h): the clamped bilinear lookup, which also keeps
// d(out)/d(coords) per pixel, and the backward from those derivatives. No argument checks (texture.cpp), no autograd
// (autograd/texture_autograd.cpp).
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "pixel3dmm/render/cpu/kernels.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render::cpu {
namespace {

/// Pixels per parallel task: a bilinear lookup is a few dozen flops.
constexpr int64_t kGrain = 8192;

/// The four texels around one clamped position, their weights' building blocks and the clamping's gradient masks.
template <typename scalar_t>
struct Footprint {
  int64_t x0, y0;       // top-left texel
  bool has_x1, has_y1;  // the right column / bottom row lies inside the texture
  scalar_t w, n;        // fractions east of x0 and south of y0
  scalar_t gx, gy;      // d(clamped)/d(coords): scale where strictly inside the texture, else 0
};

template <typename scalar_t>
Footprint<scalar_t> footprint(scalar_t u, scalar_t v, int64_t Wt, int64_t Ht, scalar_t sx, scalar_t sy, scalar_t ox,
                              scalar_t oy) {
  Footprint<scalar_t> f;
  scalar_t x = u * sx + ox, y = v * sy + oy;
  const scalar_t xmax = static_cast<scalar_t>(Wt - 1), ymax = static_cast<scalar_t>(Ht - 1);
  // grid_sample's border clamping: the borders themselves count as outside for the gradient.
  f.gx = (x > scalar_t(0) && x < xmax) ? sx : scalar_t(0);
  f.gy = (y > scalar_t(0) && y < ymax) ? sy : scalar_t(0);
  x = std::min(std::max(x, scalar_t(0)), xmax);
  y = std::min(std::max(y, scalar_t(0)), ymax);
  const scalar_t fx = std::floor(x), fy = std::floor(y);
  f.x0 = static_cast<int64_t>(fx);
  f.y0 = static_cast<int64_t>(fy);
  f.has_x1 = f.x0 + 1 < Wt;
  f.has_y1 = f.y0 + 1 < Ht;
  f.w = x - fx;
  f.n = y - fy;
  return f;
}

template <typename scalar_t>
void forward_kernel(const torch::Tensor& texture, const torch::Tensor& coords, const torch::Tensor& triangle_id,
                    const std::array<double, 2>& scale, const std::array<double, 2>& offset, torch::Tensor& out,
                    torch::Tensor& deriv) {
  const int64_t C = texture.size(0), Ht = texture.size(1), Wt = texture.size(2), plane = Ht * Wt;
  const int64_t n = triangle_id.numel();
  const scalar_t* t = texture.data_ptr<scalar_t>();
  const scalar_t* uv = coords.data_ptr<scalar_t>();
  const int32_t* ids = triangle_id.data_ptr<int32_t>();
  scalar_t* o = out.data_ptr<scalar_t>();
  scalar_t* d = deriv.defined() ? deriv.data_ptr<scalar_t>() : nullptr;  // B H W x C x 2, or none
  const scalar_t sx = scale[0], sy = scale[1], ox = offset[0], oy = offset[1];
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      scalar_t* op = o + p * C;
      scalar_t* dp = d ? d + p * C * 2 : nullptr;
      if (ids[p] < 0) {
        std::fill(op, op + C, scalar_t(0));
        if (dp) std::fill(dp, dp + 2 * C, scalar_t(0));
        continue;
      }
      if (std::isnan(uv[2 * p]) || std::isnan(uv[2 * p + 1])) {  // no texel to read: NaN in, NaN out
        std::fill(op, op + C, std::numeric_limits<scalar_t>::quiet_NaN());
        if (dp) std::fill(dp, dp + 2 * C, std::numeric_limits<scalar_t>::quiet_NaN());
        continue;
      }
      const auto f = footprint<scalar_t>(uv[2 * p], uv[2 * p + 1], Wt, Ht, sx, sy, ox, oy);
      const scalar_t e = scalar_t(1) - f.w, s = scalar_t(1) - f.n;
      const scalar_t nw = s * e, ne = s * f.w, sw = f.n * e, se = f.n * f.w;
      const int64_t i00 = f.y0 * Wt + f.x0;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* tc = t + c * plane + i00;
        // Texels outside the texture read as 0, as in grid_sample.
        const scalar_t v00 = tc[0], v01 = f.has_x1 ? tc[1] : scalar_t(0), v10 = f.has_y1 ? tc[Wt] : scalar_t(0),
                       v11 = f.has_x1 && f.has_y1 ? tc[Wt + 1] : scalar_t(0);
        op[c] = v00 * nw + v01 * ne + v10 * sw + v11 * se;
        if (dp) {  // d out / d coords, so that the backward is one multiply-add per channel, no texel reads
          dp[2 * c] = ((v01 - v00) * s + (v11 - v10) * f.n) * f.gx;
          dp[2 * c + 1] = ((v10 - v00) * e + (v11 - v01) * f.w) * f.gy;
        }
      }
    }
  });
}

template <typename scalar_t>
void backward_kernel(const torch::Tensor& grad, const torch::Tensor& deriv, torch::Tensor& grad_coords) {
  const int64_t C = grad.size(-1), n = grad.numel() / std::max<int64_t>(C, 1);
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* d = deriv.data_ptr<scalar_t>();
  scalar_t* gc = grad_coords.data_ptr<scalar_t>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      scalar_t gu = 0, gv = 0;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t go = g[p * C + c];
        gu += d[(p * C + c) * 2] * go;
        gv += d[(p * C + c) * 2 + 1] * go;
      }
      gc[2 * p] = gu;
      gc[2 * p + 1] = gv;
    }
  });
}

}  // namespace

torch::Tensor texture_forward(const torch::Tensor& texture, const torch::Tensor& coords,
                              const torch::Tensor& triangle_id, std::array<double, 2> scale,
                              std::array<double, 2> offset, torch::Tensor& deriv) {
  const int64_t B = coords.size(0), H = coords.size(1), W = coords.size(2), C = texture.size(0);
  auto out = torch::empty({B, H, W, C}, coords.options());
  AT_DISPATCH_FLOATING_TYPES(coords.scalar_type(), "sample_texture", [&] {
    forward_kernel<scalar_t>(texture, coords, triangle_id, scale, offset, out, deriv);
  });
  return out;
}

torch::Tensor texture_backward(const torch::Tensor& grad, const torch::Tensor& deriv) {
  auto grad_coords = torch::empty({deriv.size(0), deriv.size(1), deriv.size(2), 2}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "sample_texture_backward",
                             [&] { backward_kernel<scalar_t>(grad, deriv, grad_coords); });
  return grad_coords;
}

}  // namespace pixel3dmm::render::cpu
