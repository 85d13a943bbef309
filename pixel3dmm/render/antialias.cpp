#include "pixel3dmm/render/antialias.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kEdgeSlack = 1.0 / 16.0;  // crossings this far outside the pixel segment still count (rounding)

inline bool same_sign(double a, double b) { return std::signbit(a) == std::signbit(b); }

// A pixel pair (pixel0, pixel1 = right or lower neighbour) is stored at index 2 * pixel0 + d, d = 0 right, 1 down.
// code = -1: nothing to do; else edge index (0..2) | 4 when the chosen triangle is pixel1's.
struct PairData {
  const int8_t* code;
  const double* alpha;
};

// Per batch element: every vertex projected to pixel coordinates (pixel centres at integers), and per triangle a
// byte with bit i set when edge i is a silhouette and bit 3 when a vertex is at or behind the eye. Silhouette-ness
// does not depend on the pixel, so it is decided once per triangle here rather than once per pixel pair.
struct Projection {
  std::vector<double> xy;       // B x V x 2
  std::vector<uint8_t> info;    // B x F
  static constexpr uint8_t kBehind = 8;
};

template <typename scalar_t>
Projection project_mesh(const torch::Tensor& pos, const torch::Tensor& faces, const torch::Tensor& opposite,
                        int64_t H, int64_t W) {
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
inline bool analyse(const double* xy, const uint8_t* info, const int64_t* faces, int64_t tri, int64_t px,
                    int64_t py, int d, double ds, double& alpha, int& edge) {
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
void antialias_analyse(const torch::Tensor& pos, const torch::Tensor& faces, const torch::Tensor& opposite,
                       const torch::Tensor& tri_id, const torch::Tensor& depth, torch::Tensor& code,
                       torch::Tensor& alpha) {
  const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2), V = pos.size(1), F = faces.size(0);
  const Projection pr = project_mesh<scalar_t>(pos, faces, opposite, H, W);
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const scalar_t* z = depth.data_ptr<scalar_t>();
  const int64_t* fd = faces.data_ptr<int64_t>();
  int8_t* cd = code.data_ptr<int8_t>();
  double* al = alpha.data_ptr<double>();
  at::parallel_for(0, B * H, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, py = row % H;
      const double* xy = pr.xy.data() + b * V * 2;
      const uint8_t* info = pr.info.data() + b * F;
      for (int64_t px = 0; px < W; ++px) {
        const int64_t p0 = row * W + px;
        for (int d = 0; d < 2; ++d) {
          const int64_t q = 2 * p0 + d;
          cd[q] = -1;
          al[q] = 0.0;
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
                      edge)) {
            cd[q] = static_cast<int8_t>(edge | (first ? 0 : 4));
            al[q] = a;
          }
        }
      }
    }
  });
}

// Calls fn(pixel0, pixel1, pair index) for the (up to four) pairs that contain pixel p = row * W + px.
template <typename F>
inline void for_pairs_of(int64_t row, int64_t px, int64_t H, int64_t W, const F& fn) {
  const int64_t p = row * W + px, py = row % H;
  if (px + 1 < W) fn(p, p + 1, 2 * p);
  if (py + 1 < H) fn(p, p + W, 2 * p + 1);
  if (px > 0) fn(p - 1, p, 2 * (p - 1));
  if (py > 0) fn(p - W, p, 2 * (p - W) + 1);
}

template <typename scalar_t>
void antialias_forward(const torch::Tensor& color, const PairData& pairs, torch::Tensor& out) {
  const int64_t B = color.size(0), H = color.size(1), W = color.size(2), C = color.size(3);
  const scalar_t* c = color.data_ptr<scalar_t>();
  scalar_t* o = out.data_ptr<scalar_t>();
  at::parallel_for(0, B * H, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t px = 0; px < W; ++px) {
        const int64_t p = row * W + px;
        scalar_t* op = o + p * C;
        std::copy(c + p * C, c + (p + 1) * C, op);
        for_pairs_of(row, px, H, W, [&](int64_t p0, int64_t p1, int64_t q) {
          if (pairs.code[q] < 0) return;
          const double a = pairs.alpha[q];
          if ((a > 0.0 ? p0 : p1) != p) return;
          for (int64_t k = 0; k < C; ++k)
            op[k] += static_cast<scalar_t>(a * (static_cast<double>(c[p1 * C + k]) - static_cast<double>(c[p0 * C + k])));
        });
      }
    }
  });
}

template <typename scalar_t>
void antialias_backward(const torch::Tensor& grad, const torch::Tensor& color, const torch::Tensor& pos,
                        const torch::Tensor& faces, const torch::Tensor& tri_id, const PairData& pairs,
                        bool need_color, bool need_pos, torch::Tensor& grad_color, torch::Tensor& grad_pos) {
  const int64_t B = color.size(0), H = color.size(1), W = color.size(2), C = color.size(3), V = pos.size(1);
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* c = color.data_ptr<scalar_t>();
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const int64_t* fc = faces.data_ptr<int64_t>();
  const double xh = 0.5 * W, yh = 0.5 * H;
  if (need_color) grad_color = torch::empty_like(color);
  scalar_t* gc = need_color ? grad_color.data_ptr<scalar_t>() : nullptr;
  const int64_t rows = B * H, chunks = detail::num_chunks(rows);
  auto acc = torch::zeros({need_pos ? chunks : 0, B * V * 4}, torch::TensorOptions().dtype(torch::kFloat64));
  detail::parallel_tasks(chunks, [&](int64_t chunk) {
    double* gp = need_pos ? acc.data_ptr<double>() + chunk * B * V * 4 : nullptr;
    detail::for_chunk_rows(chunk, chunks, rows, [&](int64_t row) {
      const int64_t b = row / H, py = row % H;
      const scalar_t* pb = pos.data_ptr<scalar_t>() + b * V * 4;
      for (int64_t px = 0; px < W; ++px) {
        const int64_t p = row * W + px;
        if (need_color) {
          // out[t] = c[t] + a (c1 - c0)  =>  dc0 -= a g[t], dc1 += a g[t].
          scalar_t* dst = gc + p * C;
          std::copy(g + p * C, g + (p + 1) * C, dst);
          for_pairs_of(row, px, H, W, [&](int64_t p0, int64_t p1, int64_t q) {
            if (pairs.code[q] < 0) return;
            const double a = pairs.alpha[q];
            const scalar_t* gt = g + (a > 0.0 ? p0 : p1) * C;
            const double s = p == p0 ? -a : a;
            for (int64_t k = 0; k < C; ++k) dst[k] += static_cast<scalar_t>(s * static_cast<double>(gt[k]));
          });
        }
        if (!need_pos) continue;
        for (int d = 0; d < 2; ++d) {
          const int64_t q = 2 * p + d;
          const int8_t code = pairs.code[q];
          const double a = pairs.alpha[q];
          if (code < 0 || std::abs(a) >= 0.5) continue;  // saturated: dc was clamped, no position gradient
          const int64_t p0 = p, p1 = p + (d == 0 ? 1 : W);
          const scalar_t* gt = g + (a > 0.0 ? p0 : p1) * C;
          double dd = 0.0;  // dL/dalpha
          for (int64_t k = 0; k < C; ++k)
            dd += static_cast<double>(gt[k]) * (static_cast<double>(c[p1 * C + k]) - static_cast<double>(c[p0 * C + k]));
          if (dd == 0.0) continue;
          const bool first = (code & 4) == 0;
          const int64_t tri = ids[first ? p0 : p1];
          const int64_t rx = first ? px : px + (1 - d), ry = first ? py : py + d;
          const int edge = code & 3;
          const int64_t va = fc[3 * tri + (edge + 1) % 3], vb = fc[3 * tri + (edge + 2) % 3];
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
          double gxa = -dd * yb / D, gxb = dd * ya / D;             // dL/dx (x along the pair's axis)
          double gya = -dd * (I - xb) / D, gyb = -dd * (xa - I) / D;  // dL/dy (across it)
          if (d) std::swap(gxa, gya), std::swap(gxb, gyb);
          // Back from pixel space to clip space: x = (X / w + 1) W/2 - ..., y likewise.
          double* ga = gp + (b * V + va) * 4;
          double* gb = gp + (b * V + vb) * 4;
          ga[0] += gxa * xh / wa;
          ga[1] += gya * yh / wa;
          ga[3] -= (gxa * xh * Xa + gya * yh * Ya) / wa;
          gb[0] += gxb * xh / wb;
          gb[1] += gyb * yh / wb;
          gb[3] -= (gxb * xh * Xb + gyb * yh * Yb) / wb;
        }
      }
    });
  });
  if (need_pos) grad_pos = acc.sum(0).to(pos.scalar_type()).view({B, V, 4});
}

class AntialiasFunction : public torch::autograd::Function<AntialiasFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& color, const torch::Tensor& pos_clip,
                               const torch::Tensor& tri_id, const torch::Tensor& depth, const torch::Tensor& faces,
                               const torch::Tensor& opposite) {
    const auto c = color.contiguous();
    const auto pos = pos_clip.contiguous();
    const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2);
    auto code = torch::empty({B, H, W, 2}, torch::TensorOptions().dtype(torch::kInt8));
    auto alpha = torch::empty({B, H, W, 2}, torch::TensorOptions().dtype(torch::kFloat64));
    auto out = torch::empty_like(c);
    AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "antialias", [&] {
      antialias_analyse<scalar_t>(pos, faces, opposite, tri_id, depth, code, alpha);
      antialias_forward<scalar_t>(c, PairData{code.data_ptr<int8_t>(), alpha.data_ptr<double>()}, out);
    });
    ctx->save_for_backward({c, pos, tri_id, faces, code, alpha});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool need_color = ctx->needs_input_grad(0), need_pos = ctx->needs_input_grad(1);
    torch::Tensor grad_color, grad_pos;
    if (grads[0].defined() && (need_color || need_pos)) {
      const auto g = grads[0].contiguous();
      const PairData pairs{saved[4].data_ptr<int8_t>(), saved[5].data_ptr<double>()};
      AT_DISPATCH_FLOATING_TYPES(saved[0].scalar_type(), "antialias_backward", [&] {
        antialias_backward<scalar_t>(g, saved[0], saved[1], saved[3], saved[2], pairs, need_color, need_pos,
                                     grad_color, grad_pos);
      });
    }
    return {grad_color, grad_pos, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor edge_topology(const torch::Tensor& faces, int64_t num_vertices) {
  PIXEL3DMM_CHECK(num_vertices >= 0, "edge_topology: num_vertices must be >= 0, found ", num_vertices);
  const auto f = detail::checked_faces(faces, num_vertices, "edge_topology");
  const int64_t F = f.size(0);
  auto opposite = torch::full({F, 3}, -1, torch::TensorOptions().dtype(torch::kInt32));
  const int64_t* fd = f.data_ptr<int64_t>();
  int32_t* od = opposite.data_ptr<int32_t>();
  // Bucket the half-edges by their smaller vertex (counting sort), then match within each (small) bucket.
  struct HalfEdge {
    int64_t hi, slot;  // larger vertex; 3 * face + edge
  };
  std::vector<int64_t> start(static_cast<size_t>(num_vertices + 1), 0);
  auto valid_face = [&](int64_t t) {
    return fd[3 * t] != fd[3 * t + 1] && fd[3 * t + 1] != fd[3 * t + 2] && fd[3 * t + 2] != fd[3 * t];
  };
  for (int64_t t = 0; t < F; ++t)
    if (valid_face(t))
      for (int i = 0; i < 3; ++i) ++start[std::min(fd[3 * t + (i + 1) % 3], fd[3 * t + (i + 2) % 3]) + 1];
  for (int64_t v = 0; v < num_vertices; ++v) start[v + 1] += start[v];
  std::vector<HalfEdge> edges(static_cast<size_t>(start[num_vertices]));
  std::vector<int64_t> cursor(start.begin(), start.end() - 1);
  for (int64_t t = 0; t < F; ++t) {
    if (!valid_face(t)) continue;
    for (int i = 0; i < 3; ++i) {
      const int64_t a = fd[3 * t + (i + 1) % 3], b = fd[3 * t + (i + 2) % 3];
      edges[cursor[std::min(a, b)]++] = {std::max(a, b), 3 * t + i};
    }
  }
  for (int64_t v = 0; v < num_vertices; ++v) {
    for (int64_t i = start[v]; i < start[v + 1]; ++i) {
      int64_t match = -1, count = 0;
      for (int64_t j = start[v]; j < start[v + 1]; ++j) {
        if (j == i || edges[j].hi != edges[i].hi) continue;
        match = j;
        ++count;
      }
      if (count == 1) od[edges[i].slot] = static_cast<int32_t>(fd[edges[match].slot]);  // slot 3t+i <-> vertex i
    }
  }
  return opposite;
}

torch::Tensor antialias(const torch::Tensor& color, const RasterOutput& raster, const torch::Tensor& topology) {
  PIXEL3DMM_CHECK(raster.triangle_id.defined() && raster.pos_clip.defined(), "antialias: empty raster output");
  PIXEL3DMM_CHECK(color.defined(), "antialias: color is undefined");
  const int64_t B = raster.triangle_id.size(0);
  check_shape(color, {B, raster.height, raster.width, -1}, "antialias: color");
  check_dtype(color, raster.bary.scalar_type(), "antialias: color (must match the clip positions)");
  PIXEL3DMM_CHECK(color.device().is_cpu(), "antialias: color must be a CPU tensor, found ", color.device());
  torch::Tensor opposite;
  if (topology.defined()) {
    check_shape(topology, {raster.faces.size(0), 3}, "antialias: topology");
    check_dtype(topology, torch::kInt32, "antialias: topology");
    opposite = topology.contiguous();
    if (opposite.numel() > 0) {
      const int64_t lo = opposite.min().item<int64_t>(), hi = opposite.max().item<int64_t>();
      PIXEL3DMM_CHECK(lo >= -1 && hi < raster.pos_clip.size(1), "antialias: topology: vertex indices must lie in [-1, ",
                      raster.pos_clip.size(1), "), found range [", lo, ", ", hi, "]");
    }
  } else {
    opposite = edge_topology(raster.faces, raster.pos_clip.size(1));
  }
  return AntialiasFunction::apply(color, raster.pos_clip, raster.triangle_id, raster.depth, raster.faces, opposite);
}

}  // namespace pixel3dmm::render
