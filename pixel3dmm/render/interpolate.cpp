#include "pixel3dmm/render/interpolate.h"

#include <vector>

#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename scalar_t>
void interpolate_forward(const torch::Tensor& attr, const torch::Tensor& tri_id, const torch::Tensor& bary,
                         const torch::Tensor& faces, torch::Tensor& out) {
  const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2);
  const int64_t Ba = attr.size(0), V = attr.size(1), C = attr.size(2);
  const scalar_t* a = attr.data_ptr<scalar_t>();
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const scalar_t* bc = bary.data_ptr<scalar_t>();
  const int64_t* f = faces.data_ptr<int64_t>();
  scalar_t* o = out.data_ptr<scalar_t>();
  at::parallel_for(0, B * H, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const scalar_t* ab = a + (Ba == 1 ? 0 : row / H) * V * C;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t p = row * W + x;
        scalar_t* op = o + p * C;
        const int32_t t = ids[p];
        if (t < 0) {
          std::fill(op, op + C, scalar_t(0));
          continue;
        }
        const scalar_t b0 = bc[2 * p], b1 = bc[2 * p + 1], b2 = scalar_t(1) - b0 - b1;
        const scalar_t* a0 = ab + f[3 * t] * C;
        const scalar_t* a1 = ab + f[3 * t + 1] * C;
        const scalar_t* a2 = ab + f[3 * t + 2] * C;
        for (int64_t c = 0; c < C; ++c) op[c] = b0 * a0[c] + b1 * a1[c] + b2 * a2[c];
      }
    }
  });
}

// Per batch element and triangle, M^-1 with M = [[x0 x1 x2], [y0 y1 y2], [w0 w1 w2]] (row-major, 9 doubles; zero for
// a singular M, which covers no pixel).
template <typename scalar_t>
std::vector<double> inverse_matrices(const torch::Tensor& pos, const torch::Tensor& faces) {
  const int64_t B = pos.size(0), V = pos.size(1), F = faces.size(0);
  std::vector<double> minv(static_cast<size_t>(B * F * 9), 0.0);
  const scalar_t* pd = pos.data_ptr<scalar_t>();
  const int64_t* fd = faces.data_ptr<int64_t>();
  at::parallel_for(0, B * F, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const scalar_t* base = pd + (k / F) * V * 4;
      const int64_t* face = fd + (k % F) * 3;
      double p[3][3];
      for (int i = 0; i < 3; ++i) {
        const scalar_t* v = base + face[i] * 4;
        p[i][0] = v[0];
        p[i][1] = v[1];
        p[i][2] = v[3];
      }
      double r[3][3];
      for (int i = 0; i < 3; ++i) {
        const double* a = p[(i + 1) % 3];
        const double* b = p[(i + 2) % 3];
        r[i][0] = a[1] * b[2] - a[2] * b[1];
        r[i][1] = a[2] * b[0] - a[0] * b[2];
        r[i][2] = a[0] * b[1] - a[1] * b[0];
      }
      const double det = p[0][0] * r[0][0] + p[0][1] * r[0][1] + p[0][2] * r[0][2];
      if (det == 0.0) continue;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) minv[k * 9 + i * 3 + j] = r[i][j] / det;
    }
  });
  return minv;
}

template <typename scalar_t>
void interpolate_backward(const torch::Tensor& grad, const torch::Tensor& attr, const torch::Tensor& pos,
                          const torch::Tensor& tri_id, const torch::Tensor& bary, const torch::Tensor& attr_faces,
                          const torch::Tensor& pos_faces, bool need_attr, bool need_pos, torch::Tensor& grad_attr,
                          torch::Tensor& grad_pos) {
  const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2);
  const int64_t Ba = attr.size(0), V = attr.size(1), C = attr.size(2);
  const int64_t Vp = pos.size(1), F = pos_faces.size(0);
  const std::vector<double> minv = need_pos ? inverse_matrices<scalar_t>(pos, pos_faces) : std::vector<double>();
  const int64_t rows = B * H, chunks = detail::num_chunks(rows);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto acc_attr = torch::zeros({need_attr ? chunks : 0, Ba * V * C}, f64);
  auto acc_pos = torch::zeros({need_pos ? chunks : 0, B * Vp * 4}, f64);
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* a = attr.data_ptr<scalar_t>();
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const scalar_t* bc = bary.data_ptr<scalar_t>();
  const int64_t* fa = attr_faces.data_ptr<int64_t>();
  const int64_t* fp = pos_faces.data_ptr<int64_t>();
  detail::parallel_tasks(chunks, [&](int64_t chunk) {
    double* ga = need_attr ? acc_attr.data_ptr<double>() + chunk * Ba * V * C : nullptr;
    double* gp = need_pos ? acc_pos.data_ptr<double>() + chunk * B * Vp * 4 : nullptr;
    // Consecutive pixels mostly share a triangle: sums over such a run are accumulated locally and scattered to the
    // vertices once per run. For the positions, dL/dp_j = -M^-T sum_pixels b_j r with r = g - (g . b) 1, so the run
    // keeps T_jk = sum b_j r_k and multiplies by M^-T at the end.
    std::vector<double> run_attr(static_cast<size_t>(3 * C));
    double run_pos[3][3];
    int64_t run_tri = -1, run_b = 0, run_ba = 0;
    auto flush = [&] {
      if (run_tri < 0) return;
      const int64_t t = run_tri;
      if (need_attr) {
        for (int j = 0; j < 3; ++j) {
          double* dst = ga + (run_ba * V + fa[3 * t + j]) * C;
          const double* src = run_attr.data() + j * C;
          for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
        }
      }
      if (need_pos) {
        const double* m = minv.data() + (run_b * F + t) * 9;
        for (int j = 0; j < 3; ++j) {
          double* dst = gp + (run_b * Vp + fp[3 * t + j]) * 4;
          const double* tj = run_pos[j];
          dst[0] -= tj[0] * m[0] + tj[1] * m[3] + tj[2] * m[6];
          dst[1] -= tj[0] * m[1] + tj[1] * m[4] + tj[2] * m[7];
          dst[3] -= tj[0] * m[2] + tj[1] * m[5] + tj[2] * m[8];
        }
      }
      run_tri = -1;
    };
    detail::for_chunk_rows(chunk, chunks, rows, [&](int64_t row) {
      const int64_t b = row / H, ba = Ba == 1 ? 0 : b;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t p = row * W + x;
        const int32_t t = ids[p];
        if (t < 0) continue;
        if (t != run_tri || b != run_b) {
          flush();
          run_tri = t;
          run_b = b;
          run_ba = ba;
          std::fill(run_attr.begin(), run_attr.end(), 0.0);
          std::fill(&run_pos[0][0], &run_pos[0][0] + 9, 0.0);
        }
        const scalar_t* gpx = g + p * C;
        const double w[3] = {static_cast<double>(bc[2 * p]), static_cast<double>(bc[2 * p + 1]),
                             1.0 - static_cast<double>(bc[2 * p]) - static_cast<double>(bc[2 * p + 1])};
        if (need_attr) {
          for (int j = 0; j < 3; ++j) {
            double* dst = run_attr.data() + j * C;
            for (int64_t c = 0; c < C; ++c) dst[c] += w[j] * static_cast<double>(gpx[c]);
          }
        }
        if (need_pos) {
          double gb[3];
          for (int j = 0; j < 3; ++j) {
            const scalar_t* aj = a + (ba * V + fa[3 * t + j]) * C;
            double sum = 0.0;
            for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(gpx[c]) * static_cast<double>(aj[c]);
            gb[j] = sum;
          }
          const double gdotb = gb[0] * w[0] + gb[1] * w[1] + gb[2] * w[2];
          const double r[3] = {gb[0] - gdotb, gb[1] - gdotb, gb[2] - gdotb};
          for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 3; ++k) run_pos[j][k] += w[j] * r[k];
        }
      }
      flush();
    });
  });
  const auto opts = attr.options();
  if (need_attr) grad_attr = acc_attr.sum(0).to(opts.dtype()).view({Ba, V, C});
  if (need_pos) grad_pos = acc_pos.sum(0).to(opts.dtype()).view({B, Vp, 4});
}

class InterpolateFunction : public torch::autograd::Function<InterpolateFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& attr, const torch::Tensor& pos,
                               const torch::Tensor& tri_id, const torch::Tensor& bary, const torch::Tensor& attr_faces,
                               const torch::Tensor& pos_faces) {
    const auto a = attr.contiguous();
    auto out = torch::empty({tri_id.size(0), tri_id.size(1), tri_id.size(2), a.size(2)}, a.options());
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "interpolate",
                               [&] { interpolate_forward<scalar_t>(a, tri_id, bary, attr_faces, out); });
    ctx->save_for_backward({a, pos, tri_id, bary, attr_faces, pos_faces});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& attr = saved[0];
    const auto pos = saved[1].contiguous();
    const bool need_attr = ctx->needs_input_grad(0), need_pos = ctx->needs_input_grad(1);
    torch::Tensor grad_attr, grad_pos;
    if (grads[0].defined() && (need_attr || need_pos)) {
      const auto g = grads[0].contiguous();
      AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "interpolate_backward", [&] {
        interpolate_backward<scalar_t>(g, attr, pos, saved[2], saved[3], saved[4], saved[5], need_attr, need_pos,
                                       grad_attr, grad_pos);
      });
    }
    return {grad_attr, grad_pos, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor interpolate(const torch::Tensor& attr, const RasterOutput& raster, const torch::Tensor& faces) {
  PIXEL3DMM_CHECK(raster.triangle_id.defined() && raster.pos_clip.defined(), "interpolate: empty raster output");
  PIXEL3DMM_CHECK(attr.defined(), "interpolate: attributes are undefined");
  PIXEL3DMM_CHECK(attr.dim() == 2 || attr.dim() == 3, "interpolate: attributes: expected shape [B, V, C] or [V, C], "
                  "found ", shape_string(attr.sizes()));
  const auto a = attr.dim() == 2 ? attr.unsqueeze(0) : attr;
  const int64_t B = raster.triangle_id.size(0);
  PIXEL3DMM_CHECK(a.size(0) == 1 || a.size(0) == B, "interpolate: attributes: batch size ", a.size(0),
                  " does not match the raster's ", B);
  check_dtype(a, raster.bary.scalar_type(), "interpolate: attributes (must match the clip positions)");
  PIXEL3DMM_CHECK(a.device().is_cpu(), "interpolate: attributes must be a CPU tensor, found ", a.device());
  const auto attr_faces =
      faces.defined() ? detail::checked_faces(faces, a.size(1), "interpolate") : raster.faces;
  PIXEL3DMM_CHECK(attr_faces.size(0) == raster.faces.size(0), "interpolate: faces: expected ", raster.faces.size(0),
                  " faces (as rasterised), found ", attr_faces.size(0));
  if (!faces.defined() && raster.faces.numel() > 0)
    PIXEL3DMM_CHECK(raster.faces.max().item<int64_t>() < a.size(1), "interpolate: attributes have ", a.size(1),
                    " vertices but the raster's faces index up to ", raster.faces.max().item<int64_t>());
  return InterpolateFunction::apply(a, raster.pos_clip, raster.triangle_id, raster.bary, attr_faces, raster.faces);
}

}  // namespace pixel3dmm::render
