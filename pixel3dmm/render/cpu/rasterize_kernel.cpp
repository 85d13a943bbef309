// The CPU kernel of render::rasterize (rasterize.h): triangle setup, binning into 16 x 16 tiles, per-tile coverage
// and depth test. No argument checks (rasterize.cpp); not differentiable.
#include <cmath>
#include <limits>
#include <vector>

#include "pixel3dmm/render/cpu/kernels.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render::cpu {
namespace {

constexpr int kTile = 16;  // tile edge in pixels; a tile's depth/id/barycentric buffers stay in L1

// Per-triangle rasterisation setup. The homogeneous edge functions are pre-multiplied by sign(det M), so a pixel is
// inside iff all three are >= 0, and evaluated directly at pixel indices: e_i(col, row) = ex_i col + ey_i row + ec_i.
struct TriSetup {
  double ex[3], ey[3], ec[3];
  double inv_ex[3];        // 1 / ex_i (0 where ex_i = 0): solves a row's span in closed form
  double z[3];             // clip-space z of the vertices: NDC depth at a pixel = (e . z) / |det|
  double inv_det;          // 1 / |det M|
  int32_t x0, x1, y0, y1;  // inclusive pixel bounding box of the clipped triangle; x0 > x1 when nothing to draw
};

struct V4 {
  double x, y, z, w;
};

// Sutherland-Hodgman against s*z + w >= 0 (s = +1: near plane, s = -1: far plane). out holds up to n + 1 vertices.
int clip_against(const V4* in, int n, V4* out, double s) {
  int m = 0;
  for (int i = 0; i < n; ++i) {
    const V4& a = in[i];
    const V4& b = in[(i + 1) % n];
    const double da = s * a.z + a.w, db = s * b.z + b.w;
    if (da >= 0) out[m++] = a;
    if ((da >= 0) != (db >= 0)) {
      const double t = da / (da - db);
      out[m++] = {a.x + t * (b.x - a.x), a.y + t * (b.y - a.y), a.z + t * (b.z - a.z), a.w + t * (b.w - a.w)};
    }
  }
  return m;
}

// Pixel index range whose centres (2i + 1)/n - 1 lie within [lo, hi] (NDC), widened by 1e-3 px against rounding
// (the edge functions decide coverage exactly), clamped to [0, n). Returns false when empty.
bool pixel_range(double lo, double hi, int64_t n, int32_t& i0, int32_t& i1) {
  constexpr double kMargin = 1e-3;
  const double a = ((lo + 1.0) * n - 1.0) * 0.5 - kMargin, b = ((hi + 1.0) * n - 1.0) * 0.5 + kMargin;
  if (!(b >= 0.0) || !(a <= n - 1.0)) return false;
  i0 = static_cast<int32_t>(std::ceil(std::max(a, 0.0)));
  i1 = static_cast<int32_t>(std::floor(std::min(b, n - 1.0)));
  return i0 <= i1;
}

template <typename scalar_t>
void setup_triangle(const scalar_t* pos, const int64_t* face, int64_t width, int64_t height, TriSetup& s) {
  s.x0 = 1;
  s.x1 = 0;
  V4 p[3];
  for (int i = 0; i < 3; ++i) {
    const scalar_t* v = pos + face[i] * 4;
    p[i] = {static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2]), static_cast<double>(v[3])};
  }
  // Rows of adj(M): r_i = p_{i+1} x p_{i+2} over (x, y, w).
  double r[3][3];
  for (int i = 0; i < 3; ++i) {
    const V4& a = p[(i + 1) % 3];
    const V4& b = p[(i + 2) % 3];
    r[i][0] = a.y * b.w - a.w * b.y;
    r[i][1] = a.w * b.x - a.x * b.w;
    r[i][2] = a.x * b.y - a.y * b.x;
  }
  const double det = p[0].x * r[0][0] + p[0].y * r[0][1] + p[0].w * r[0][2];
  if (!(det != 0.0) || !std::isfinite(det)) return;  // edge-on in screen space or through the eye: covers nothing
  const double sign = det > 0 ? 1.0 : -1.0;
  const double sx = 2.0 / width, ox = 1.0 / width - 1.0, sy = 2.0 / height, oy = 1.0 / height - 1.0;
  for (int i = 0; i < 3; ++i) {
    s.ex[i] = sign * r[i][0] * sx;
    s.ey[i] = sign * r[i][1] * sy;
    s.ec[i] = sign * (r[i][0] * ox + r[i][1] * oy + r[i][2]);
    s.inv_ex[i] = s.ex[i] != 0.0 ? 1.0 / s.ex[i] : 0.0;
    s.z[i] = p[i].z;
  }
  s.inv_det = 1.0 / std::abs(det);

  // Bounding box of the part inside -w <= z <= w (which also has w >= 0). Usually the whole triangle is inside;
  // otherwise clip, then project.
  V4 a[8], b[8];
  int n = 3;
  const V4* poly = p;
  if (!(p[0].w > 0 && p[1].w > 0 && p[2].w > 0 && std::abs(p[0].z) <= p[0].w && std::abs(p[1].z) <= p[1].w &&
        std::abs(p[2].z) <= p[2].w)) {
    n = clip_against(p, 3, a, 1.0);
    n = clip_against(a, n, b, -1.0);
    poly = b;
  }
  if (n == 0) return;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (int i = 0; i < n; ++i) {
    if (!(poly[i].w > 1e-300)) {  // a vertex at infinity: the projection is unbounded
      xlo = ylo = -2.0;
      xhi = yhi = 2.0;
      break;
    }
    const double X = poly[i].x / poly[i].w, Y = poly[i].y / poly[i].w;
    xlo = std::min(xlo, X);
    xhi = std::max(xhi, X);
    ylo = std::min(ylo, Y);
    yhi = std::max(yhi, Y);
  }
  int32_t x0, x1, y0, y1;
  if (!pixel_range(xlo, xhi, width, x0, x1) || !pixel_range(ylo, yhi, height, y0, y1)) return;
  s.x0 = x0;
  s.x1 = x1;
  s.y0 = y0;
  s.y1 = y1;
}

// floor / ceil of a value known to lie well within int64 (the library calls are slow without SSE4.1).
inline int64_t fast_floor(double x) {
  const int64_t i = static_cast<int64_t>(x);
  return i - (x < static_cast<double>(i));
}
inline int64_t fast_ceil(double x) {
  const int64_t i = static_cast<int64_t>(x);
  return i + (x > static_cast<double>(i));
}

// Draws the binned triangles of one tile (in ascending id order) straight into the outputs, with a tile-local
// float64 depth buffer for the comparisons.
template <typename scalar_t>
void raster_tile(const TriSetup* setups, const int32_t* list, int64_t count, int64_t col0, int64_t row0, int64_t width,
                 int64_t height, int32_t* out_id, scalar_t* out_bary, scalar_t* out_depth) {
  double zbuf[kTile * kTile];
  std::fill(std::begin(zbuf), std::end(zbuf), std::numeric_limits<double>::infinity());
  const int64_t col1 = std::min<int64_t>(width, col0 + kTile) - 1, row1 = std::min<int64_t>(height, row0 + kTile) - 1;
  for (int64_t r = row0; r <= row1; ++r) {
    const int64_t o = r * width + col0, n = col1 - col0 + 1;
    std::fill(out_id + o, out_id + o + n, -1);
    std::fill(out_bary + 2 * o, out_bary + 2 * (o + n), scalar_t(0));
    std::fill(out_depth + o, out_depth + o + n, scalar_t(0));
  }
  for (int64_t k = 0; k < count; ++k) {
    const int32_t t = list[k];
    const TriSetup& s = setups[t];
    const int64_t cx0 = std::max<int64_t>(s.x0, col0), cx1 = std::min<int64_t>(s.x1, col1);
    const int64_t ry0 = std::max<int64_t>(s.y0, row0), ry1 = std::min<int64_t>(s.y1, row1);
    for (int64_t r = ry0; r <= ry1; ++r) {
      const double rc[3] = {s.ey[0] * r + s.ec[0], s.ey[1] * r + s.ec[1], s.ey[2] * r + s.ec[2]};
      // The row's covered span solved from the three edge functions, then its ends checked with the exact test
      // (the span of a convex triangle is an interval, so exact ends make every pixel in between exact too).
      double lo = static_cast<double>(cx0), hi = static_cast<double>(cx1);
      bool empty = false;
      for (int i = 0; i < 3; ++i) {
        if (s.ex[i] > 0.0)
          lo = std::max(lo, -rc[i] * s.inv_ex[i]);
        else if (s.ex[i] < 0.0)
          hi = std::min(hi, -rc[i] * s.inv_ex[i]);
        else if (rc[i] < 0.0)
          empty = true;
      }
      if (empty || !(lo <= hi + 1.0)) continue;
      auto inside = [&](int64_t c) {
        return s.ex[0] * c + rc[0] >= 0.0 && s.ex[1] * c + rc[1] >= 0.0 && s.ex[2] * c + rc[2] >= 0.0;
      };
      int64_t c0 = fast_ceil(std::min(lo, cx1 + 1.0));
      int64_t c1 = fast_floor(std::max(hi, cx0 - 1.0));
      while (c0 > cx0 && inside(c0 - 1)) --c0;
      while (c0 <= cx1 && !inside(c0)) ++c0;
      while (c1 < cx1 && inside(c1 + 1)) ++c1;
      while (c1 >= c0 && !inside(c1)) --c1;
      double* zrow = zbuf + (r - row0) * kTile - col0;
      const int64_t orow = r * width;
      for (int64_t c = c0; c <= c1; ++c) {
        const double e0 = s.ex[0] * c + rc[0], e1 = s.ex[1] * c + rc[1], e2 = s.ex[2] * c + rc[2];
        const double zn = (e0 * s.z[0] + e1 * s.z[1] + e2 * s.z[2]) * s.inv_det;
        if (zn < -1.0 || zn > 1.0 || !(zn < zrow[c])) continue;  // clipped, or not nearer (ties: lower id stays)
        const double inv = 1.0 / (e0 + e1 + e2);
        zrow[c] = zn;
        const int64_t o = orow + c;
        out_id[o] = t;
        out_depth[o] = static_cast<scalar_t>(zn);
        out_bary[2 * o] = static_cast<scalar_t>(e0 * inv);
        out_bary[2 * o + 1] = static_cast<scalar_t>(e1 * inv);
      }
    }
  }
}

template <typename scalar_t>
void rasterize_kernel(const torch::Tensor& pos, const torch::Tensor& faces, RasterOutput& out) {
  const int64_t B = pos.size(0), V = pos.size(1), F = faces.size(0);
  const int64_t H = out.height, W = out.width;
  const int64_t tiles_x = (W + kTile - 1) / kTile, tiles_y = (H + kTile - 1) / kTile, tiles = tiles_x * tiles_y;
  const scalar_t* pos_data = pos.data_ptr<scalar_t>();
  const int64_t* face_data = faces.data_ptr<int64_t>();

  // Kept by the calling thread between calls (1.3 MB for FLAME): see detail::scratch for why.
  // (A thread_local is not captured by the lambdas below: they run on other threads, so they get the pointer.)
  thread_local std::vector<TriSetup> setup_buffer;
  if (setup_buffer.size() < static_cast<size_t>(B * F)) setup_buffer.resize(static_cast<size_t>(B * F));
  TriSetup* const setups = setup_buffer.data();
  at::parallel_for(0, B * F, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      setup_triangle(pos_data + (k / F) * V * 4, face_data + (k % F) * 3, W, H, setups[k]);
  });

  // Binning: per batch element, the triangles overlapping each tile, in ascending id order (counting sort).
  std::vector<std::vector<int64_t>> offsets(B, std::vector<int64_t>(tiles + 1, 0));
  std::vector<std::vector<int32_t>> lists(B);
  detail::parallel_tasks(B, [&](int64_t b) {
    auto& off = offsets[b];
    const TriSetup* s = setups + b * F;
    for (int64_t t = 0; t < F; ++t) {
      if (s[t].x0 > s[t].x1) continue;
      for (int64_t ty = s[t].y0 / kTile; ty <= s[t].y1 / kTile; ++ty)
        for (int64_t tx = s[t].x0 / kTile; tx <= s[t].x1 / kTile; ++tx) ++off[ty * tiles_x + tx + 1];
    }
    for (int64_t i = 0; i < tiles; ++i) off[i + 1] += off[i];
    std::vector<int64_t> cursor(off.begin(), off.end() - 1);
    lists[b].resize(static_cast<size_t>(off[tiles]));
    for (int64_t t = 0; t < F; ++t) {
      if (s[t].x0 > s[t].x1) continue;
      for (int64_t ty = s[t].y0 / kTile; ty <= s[t].y1 / kTile; ++ty)
        for (int64_t tx = s[t].x0 / kTile; tx <= s[t].x1 / kTile; ++tx)
          lists[b][cursor[ty * tiles_x + tx]++] = static_cast<int32_t>(t);
    }
  });

  int32_t* id_data = out.triangle_id.data_ptr<int32_t>();
  scalar_t* bary_data = out.bary.data_ptr<scalar_t>();
  scalar_t* depth_data = out.depth.data_ptr<scalar_t>();
  detail::parallel_tasks(B * tiles, [&](int64_t task) {
    const int64_t b = task / tiles, tile = task % tiles;
    const auto& off = offsets[b];
    raster_tile<scalar_t>(setups + b * F, lists[b].data() + off[tile], off[tile + 1] - off[tile],
                          (tile % tiles_x) * kTile, (tile / tiles_x) * kTile, W, H, id_data + b * H * W,
                          bary_data + b * H * W * 2, depth_data + b * H * W);
  });
}

}  // namespace

void rasterize(const torch::Tensor& pos, const torch::Tensor& faces, RasterOutput& out) {
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "rasterize", [&] { rasterize_kernel<scalar_t>(pos, faces, out); });
}

}  // namespace pixel3dmm::render::cpu
