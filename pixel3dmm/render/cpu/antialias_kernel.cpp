// The CPU kernels of render::antialias (antialias.h): the silhouette analysis (which pixel pairs an edge crosses,
// and by how much), the blend, and its backward to the colours and clip positions. No argument checks
// (antialias.cpp), no autograd (autograd/antialias_autograd.cpp).
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "pixel3dmm/render/cpu/kernels.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render::cpu {
namespace {

constexpr double kEdgeSlack = 1.0 / 16.0;  // crossings this far outside the pixel segment still count (rounding)

inline bool same_sign(double a, double b) { return std::signbit(a) == std::signbit(b); }

// A blend found by the analysis: pixel pair q = 2 * pixel0 + d (d = 0: pixel1 = right neighbour, 1: lower), the
// edge (0..2) of the chosen triangle and whether that triangle is pixel1's, and alpha. Only silhouette crossings
// make blends, so a few thousand per image: they are kept as a list in pair order.
struct Blend {
  int64_t q;
  double alpha;
  int32_t tri;
  int16_t edge;
  int16_t second;  // 1 when the triangle is pixel1's
};

// Blends <-> tensors, to keep them in the autograd context: q (int64), alpha (float64), tri * 8 + edge * 2 + second.
std::vector<torch::Tensor> pack(const std::vector<Blend>& blends) {
  const int64_t n = static_cast<int64_t>(blends.size());
  auto q = torch::empty({n}, torch::kInt64), a = torch::empty({n}, torch::kFloat64),
       m = torch::empty({n}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    q.data_ptr<int64_t>()[i] = blends[i].q;
    a.data_ptr<double>()[i] = blends[i].alpha;
    m.data_ptr<int64_t>()[i] = int64_t(blends[i].tri) * 8 + blends[i].edge * 2 + blends[i].second;
  }
  return {q, a, m};
}
std::vector<Blend> unpack(const torch::Tensor& q, const torch::Tensor& a, const torch::Tensor& m) {
  std::vector<Blend> blends(static_cast<size_t>(q.numel()));
  for (int64_t i = 0; i < q.numel(); ++i) {
    const int64_t meta = m.data_ptr<int64_t>()[i];
    blends[i] = {q.data_ptr<int64_t>()[i], a.data_ptr<double>()[i], static_cast<int32_t>(meta / 8),
                 static_cast<int16_t>((meta / 2) % 4), static_cast<int16_t>(meta % 2)};
  }
  return blends;
}

// Per batch element: every vertex projected to pixel coordinates (pixel centres at integers), and per triangle a
// byte with bit i set when edge i is a silhouette and bit 3 when a vertex is at or behind the eye. Silhouette-ness
// does not depend on the pixel, so it is decided once per triangle here rather than once per pixel pair.
struct Projection {
  std::vector<double> xy;     // B x V x 2
  std::vector<uint8_t> info;  // B x F
  static constexpr uint8_t kBehind = 8;
};

template <typename scalar_t>
Projection project_mesh(const torch::Tensor& pos, const torch::Tensor& faces, const torch::Tensor& opposite, int64_t H,
                        int64_t W) {
  const int64_t B = pos.size(0), V = pos.size(1), F = faces.size(0);
  const double xh = 0.5 * W, yh = 0.5 * H;
  Projection pr;
  pr.xy.resize(static_cast<size_t>(B * V * 2));
  pr.info.resize(static_cast<size_t>(B * F));
  const scalar_t* pd = pos.data_ptr<scalar_t>();
  at::parallel_for(0, B * V, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const scalar_t* v = pd + 4 * k;
      const double w = static_cast<double>(v[3]);
      // NaN marks a vertex at or behind the eye.
      pr.xy[2 * k] = w > 0.0 ? (static_cast<double>(v[0]) / w + 1.0) * xh - 0.5 : std::nan("");
      pr.xy[2 * k + 1] = w > 0.0 ? (static_cast<double>(v[1]) / w + 1.0) * yh - 0.5 : std::nan("");
    }
  });
  const int64_t* fd = faces.data_ptr<int64_t>();
  const int32_t* od = opposite.data_ptr<int32_t>();
  at::parallel_for(0, B * F, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / F, t = k % F;
      const double* xy = pr.xy.data() + b * V * 2;
      double x[3], y[3];
      bool behind = false;
      for (int i = 0; i < 3; ++i) {
        x[i] = xy[2 * fd[3 * t + i]];
        y[i] = xy[2 * fd[3 * t + i] + 1];
        behind = behind || std::isnan(x[i]);
      }
      if (behind) {
        pr.info[k] = Projection::kBehind;
        continue;
      }
      // Edge i (vertex i+1 -> i+2) is a silhouette when the opposite vertex of the neighbouring face lies on the
      // same side of it as vertex i: the two faces fold over as seen from the camera. No neighbour (or one behind
      // the eye): a silhouette.
      const double own = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0]);
      uint8_t bits = 0;
      for (int i = 0; i < 3; ++i) {
        const int j1 = (i + 1) % 3, j2 = (i + 2) % 3;
        const int32_t o = od[3 * t + i];
        double ox = x[i], oy = y[i];
        if (o >= 0 && !std::isnan(xy[2 * o])) ox = xy[2 * o], oy = xy[2 * o + 1];
        const double wing = (x[j1] - ox) * (y[j2] - oy) - (x[j2] - ox) * (y[j1] - oy);
        if (same_sign(wing, own)) bits |= static_cast<uint8_t>(1 << i);
      }
      pr.info[k] = bits;
    }
  });
  return pr;
}

// Does a silhouette edge of triangle `tri` (covering pixel (px, py)) cross toward the neighbour in direction ds
// along x (d = 0) or y (d = 1)? Then alpha and the edge index. xy: this batch element's projections; info: its
// triangles' bytes.
inline bool analyse(const double* xy, const uint8_t* info, const int64_t* faces, int64_t tri, int64_t px, int64_t py,
                    int d, double ds, double& alpha, int& edge) {
  const uint8_t bits = info[tri];
  if (bits == 0 || (bits & Projection::kBehind)) return false;
  const int64_t* f = faces + 3 * tri;
  double x[3], y[3];
  for (int i = 0; i < 3; ++i) {
    x[i] = xy[2 * f[i]] - static_cast<double>(px);
    y[i] = xy[2 * f[i] + 1] - static_cast<double>(py);
  }
  if (d) std::swap(x, y);  // work along +x toward the neighbour in both directions
  double value[3], dx[3], dy[3];
  for (int i = 0; i < 3; ++i) {
    const int j1 = (i + 1) % 3, j2 = (i + 2) % 3;
    dx[i] = x[j2] - x[j1];
    dy[i] = y[j2] - y[j1];
    const bool crosses = !same_sign(y[j1], y[j2]) && dy[i] != 0.0;
    value[i] = crosses ? ds * (x[j1] * dy[i] - y[j1] * dx[i]) / dy[i] : -std::numeric_limits<double>::infinity();
  }
  // The farthest crossing in the neighbour's direction is where the segment leaves the triangle.
  int e = 0;
  if (value[2] > value[0] && value[2] > value[1])
    e = 2;
  else if (value[1] > value[0])
    e = 1;
  if (!(bits & (1 << e)) || !(std::abs(dy[e]) >= std::abs(dx[e]))) return false;
  double dc = value[e];
  if (!(dc > -kEdgeSlack && dc < 1.0 + kEdgeSlack)) return false;
  dc = std::min(std::max(dc, 0.0), 1.0);
  alpha = ds * (0.5 - dc);
  edge = e;
  return true;
}

template <typename scalar_t>
std::vector<Blend> analyse_kernel(const torch::Tensor& pos, const torch::Tensor& faces, const torch::Tensor& opposite,
                                  const torch::Tensor& tri_id, const torch::Tensor& depth) {
  const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2), V = pos.size(1), F = faces.size(0);
  const Projection pr = project_mesh<scalar_t>(pos, faces, opposite, H, W);
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const scalar_t* z = depth.data_ptr<scalar_t>();
  const int64_t* fd = faces.data_ptr<int64_t>();
  // Contiguous row blocks, each with its own list; concatenated in block order the list is in pair order whatever
  // the thread count.
  const int64_t rows = B * H, blocks = std::min<int64_t>(rows, 8 * std::max(1, at::get_num_threads()));
  std::vector<std::vector<Blend>> found(static_cast<size_t>(blocks));
  detail::parallel_tasks(blocks, [&](int64_t block) {
    auto& out = found[block];
    for (int64_t row = rows * block / blocks; row < rows * (block + 1) / blocks; ++row) {
      const int64_t b = row / H, py = row % H;
      const double* xy = pr.xy.data() + b * V * 2;
      const uint8_t* info = pr.info.data() + b * F;
      for (int64_t px = 0; px < W; ++px) {
        const int64_t p0 = row * W + px;
        for (int d = 0; d < 2; ++d) {
          if (d == 0 ? px + 1 >= W : py + 1 >= H) continue;
          const int64_t p1 = p0 + (d == 0 ? 1 : W);
          const int32_t t0 = ids[p0], t1 = ids[p1];
          if (t0 == t1) continue;
          bool first = t0 >= 0;  // use pixel0's triangle?
          if (t0 >= 0 && t1 >= 0) first = z[p0] < z[p1];
          const int64_t tri = first ? t0 : t1;
          double a = 0.0;
          int edge = 0;
          if (analyse(xy, info, fd, tri, first ? px : px + (1 - d), first ? py : py + d, d, first ? 1.0 : -1.0, a,
                      edge))
            out.push_back({2 * p0 + d, a, static_cast<int32_t>(tri), static_cast<int16_t>(edge),
                           static_cast<int16_t>(first ? 0 : 1)});
        }
      }
    }
  });
  std::vector<Blend> all;
  for (auto& f : found) all.insert(all.end(), f.begin(), f.end());
  return all;
}

// Pixel indices of a blend: pixel0, pixel1 and the one whose colour changes.
struct BlendPixels {
  int64_t p0, p1, target;
};
inline BlendPixels pixels_of(const Blend& bl, int64_t W) {
  const int64_t p0 = bl.q >> 1, p1 = p0 + ((bl.q & 1) ? W : 1);
  return {p0, p1, bl.alpha > 0.0 ? p0 : p1};
}

// out = color, then out[target] += alpha (c1 - c0) per blend, in list order (deterministic); c is the input colour.
template <typename scalar_t>
void forward_kernel(const torch::Tensor& color, const std::vector<Blend>& blends, torch::Tensor& out) {
  const int64_t W = color.size(2), C = color.size(3);
  const scalar_t* c = color.data_ptr<scalar_t>();
  scalar_t* o = out.data_ptr<scalar_t>();
  for (const Blend& bl : blends) {
    const BlendPixels px = pixels_of(bl, W);
    for (int64_t k = 0; k < C; ++k)
      o[px.target * C + k] += static_cast<scalar_t>(
          bl.alpha * (static_cast<double>(c[px.p1 * C + k]) - static_cast<double>(c[px.p0 * C + k])));
  }
}

template <typename scalar_t>
void backward_kernel(const torch::Tensor& grad, const torch::Tensor& color, const torch::Tensor& pos,
                     const torch::Tensor& faces, const std::vector<Blend>& blends, bool need_color, bool need_pos,
                     torch::Tensor& grad_color, torch::Tensor& grad_pos) {
  const int64_t B = color.size(0), H = color.size(1), W = color.size(2), C = color.size(3), V = pos.size(1);
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* c = color.data_ptr<scalar_t>();
  const int64_t* fc = faces.data_ptr<int64_t>();
  const double xh = 0.5 * W, yh = 0.5 * H;
  if (need_color) {
    // out[t] = c[t] + a (c1 - c0)  =>  dc0 -= a g[t], dc1 += a g[t] (g is the incoming gradient, unmodified).
    grad_color = grad.clone();
    scalar_t* gc = grad_color.data_ptr<scalar_t>();
    for (const Blend& bl : blends) {
      const BlendPixels px = pixels_of(bl, W);
      for (int64_t k = 0; k < C; ++k) {
        const double v = bl.alpha * static_cast<double>(g[px.target * C + k]);
        gc[px.p0 * C + k] -= static_cast<scalar_t>(v);
        gc[px.p1 * C + k] += static_cast<scalar_t>(v);
      }
    }
  }
  if (!need_pos) return;
  std::vector<double> acc(static_cast<size_t>(B * V * 4), 0.0);
  for (const Blend& bl : blends) {
    if (std::abs(bl.alpha) >= 0.5) continue;  // saturated: dc was clamped, no position gradient
    const BlendPixels px = pixels_of(bl, W);
    double dd = 0.0;  // dL/dalpha
    for (int64_t k = 0; k < C; ++k)
      dd += static_cast<double>(g[px.target * C + k]) *
            (static_cast<double>(c[px.p1 * C + k]) - static_cast<double>(c[px.p0 * C + k]));
    if (dd == 0.0) continue;
    const int d = static_cast<int>(bl.q & 1);
    const int64_t ref = bl.second ? px.p1 : px.p0;  // the pixel whose triangle was analysed
    const int64_t b = ref / (H * W), ry = (ref / W) % H, rx = ref % W;
    const int64_t t = bl.tri;
    const int64_t va = fc[3 * t + (bl.edge + 1) % 3], vb = fc[3 * t + (bl.edge + 2) % 3];
    const scalar_t* pb = pos.data_ptr<scalar_t>() + b * V * 4;
    const scalar_t* A = pb + va * 4;
    const scalar_t* Bv = pb + vb * 4;
    const double wa = A[3], wb = Bv[3];
    const double Xa = A[0] / wa, Ya = A[1] / wa, Xb = Bv[0] / wb, Yb = Bv[1] / wb;
    double xa = (Xa + 1.0) * xh - rx - 0.5, ya = (Ya + 1.0) * yh - ry - 0.5;
    double xb = (Xb + 1.0) * xh - rx - 0.5, yb = (Yb + 1.0) * yh - ry - 0.5;
    if (d) std::swap(xa, ya), std::swap(xb, yb);
    // Crossing of the edge with the pair's axis: I = (xa yb - xb ya) / (yb - ya); alpha = ds/2 - I.
    const double D = yb - ya;
    const double I = (xa * yb - xb * ya) / D;
    double gxa = -dd * yb / D, gxb = dd * ya / D;               // dL/dx (x along the pair's axis)
    double gya = -dd * (I - xb) / D, gyb = -dd * (xa - I) / D;  // dL/dy (across it)
    if (d) std::swap(gxa, gya), std::swap(gxb, gyb);
    // Back from pixel space to clip space: x = (X / w + 1) W/2 - ..., y likewise.
    double* ga = acc.data() + (b * V + va) * 4;
    double* gb = acc.data() + (b * V + vb) * 4;
    ga[0] += gxa * xh / wa;
    ga[1] += gya * yh / wa;
    ga[3] -= (gxa * xh * Xa + gya * yh * Ya) / wa;
    gb[0] += gxb * xh / wb;
    gb[1] += gyb * yh / wb;
    gb[3] -= (gxb * xh * Xb + gyb * yh * Yb) / wb;
  }
  grad_pos = torch::empty({B, V, 4}, pos.options().requires_grad(false));
  scalar_t* gp = grad_pos.data_ptr<scalar_t>();
  for (size_t i = 0; i < acc.size(); ++i) gp[i] = static_cast<scalar_t>(acc[i]);
}

}  // namespace

std::pair<torch::Tensor, std::vector<torch::Tensor>> antialias_forward(
    const torch::Tensor& color, const torch::Tensor& pos, const torch::Tensor& faces, const torch::Tensor& opposite,
    const torch::Tensor& tri_id, const torch::Tensor& depth) {
  auto out = color.clone();
  std::vector<Blend> blends;
  AT_DISPATCH_FLOATING_TYPES(color.scalar_type(), "antialias", [&] {
    blends = analyse_kernel<scalar_t>(pos, faces, opposite, tri_id, depth);
    forward_kernel<scalar_t>(color, blends, out);
  });
  return {out, pack(blends)};
}

std::pair<torch::Tensor, torch::Tensor> antialias_backward(const torch::Tensor& grad, const torch::Tensor& color,
                                                           const torch::Tensor& pos, const torch::Tensor& faces,
                                                           const std::vector<torch::Tensor>& blends, bool need_color,
                                                           bool need_pos) {
  const std::vector<Blend> list = unpack(blends[0], blends[1], blends[2]);
  torch::Tensor grad_color, grad_pos;
  AT_DISPATCH_FLOATING_TYPES(color.scalar_type(), "antialias_backward", [&] {
    backward_kernel<scalar_t>(grad, color, pos, faces, list, need_color, need_pos, grad_color, grad_pos);
  });
  return {grad_color, grad_pos};
}

}  // namespace pixel3dmm::render::cpu
