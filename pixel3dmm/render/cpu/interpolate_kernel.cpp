// The CPU kernels of render::interpolate (interpolate.h): the barycentric blend and its backward to the attributes
// and, through the barycentrics, to the clip positions. No argument checks (interpolate.cpp), no autograd
// (autograd/interpolate_autograd.cpp).
#include <algorithm>
#include <vector>

#include "pixel3dmm/render/cpu/kernels.h"
#include "pixel3dmm/render/detail/common.h"

namespace pixel3dmm::render::cpu {
namespace {

template <typename scalar_t>
void forward_kernel(const torch::Tensor& attr, const torch::Tensor& tri_id, const torch::Tensor& bary,
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
// a singular M, which covers no pixel), written to minv (B * F * 9 values).
template <typename scalar_t>
void inverse_matrices(const torch::Tensor& pos, const torch::Tensor& faces, double* minv) {
  const int64_t B = pos.size(0), V = pos.size(1), F = faces.size(0);
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
      const double inv = det != 0.0 ? 1.0 / det : 0.0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) minv[k * 9 + i * 3 + j] = r[i][j] * inv;
    }
  });
}

// Sums `chunks` consecutive buffers of n doubles into a new tensor of `shape` and dtype scalar_t.
template <typename scalar_t>
torch::Tensor reduce_chunks(const double* acc, int64_t chunks, int64_t n, c10::IntArrayRef shape) {
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value));
  scalar_t* o = out.data_ptr<scalar_t>();
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double sum = 0.0;
      for (int64_t c = 0; c < chunks; ++c) sum += acc[c * n + i];
      o[i] = static_cast<scalar_t>(sum);
    }
  });
  return out;
}

template <typename scalar_t>
void backward_kernel(const torch::Tensor& grad, const torch::Tensor& attr, const torch::Tensor& pos,
                     const torch::Tensor& tri_id, const torch::Tensor& bary, const torch::Tensor& attr_faces,
                     const torch::Tensor& pos_faces, bool need_attr, bool need_pos, torch::Tensor& grad_attr,
                     torch::Tensor& grad_pos) {
  const int64_t B = tri_id.size(0), H = tri_id.size(1), W = tri_id.size(2);
  const int64_t Ba = attr.size(0), V = attr.size(1), C = attr.size(2);
  const int64_t Vp = pos.size(1), F = pos_faces.size(0);
  const int64_t rows = B * H, chunks = detail::num_chunks(rows);
  const int64_t n_attr = Ba * V * C, n_pos = B * Vp * 4;
  // Thread-owned scratch (see detail::scratch): per-chunk accumulators and the per-triangle inverses.
  double* minv = need_pos ? detail::scratch(static_cast<size_t>(B * F * 9), 0) : nullptr;
  double* acc_attr = need_attr ? detail::scratch(static_cast<size_t>(chunks * n_attr), 1) : nullptr;
  double* acc_pos = need_pos ? detail::scratch(static_cast<size_t>(chunks * n_pos), 2) : nullptr;
  if (need_pos) inverse_matrices<scalar_t>(pos, pos_faces, minv);
  if (need_attr) std::fill(acc_attr, acc_attr + chunks * n_attr, 0.0);
  if (need_pos) std::fill(acc_pos, acc_pos + chunks * n_pos, 0.0);
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* a = attr.data_ptr<scalar_t>();
  const int32_t* ids = tri_id.data_ptr<int32_t>();
  const scalar_t* bc = bary.data_ptr<scalar_t>();
  const int64_t* fa = attr_faces.data_ptr<int64_t>();
  const int64_t* fp = pos_faces.data_ptr<int64_t>();
  detail::parallel_tasks(chunks, [&](int64_t chunk) {
    double* ga = need_attr ? acc_attr + chunk * n_attr : nullptr;
    double* gp = need_pos ? acc_pos + chunk * n_pos : nullptr;
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
        const double* m = minv + (run_b * F + t) * 9;
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
  if (need_attr) grad_attr = reduce_chunks<scalar_t>(acc_attr, chunks, n_attr, {Ba, V, C});
  if (need_pos) grad_pos = reduce_chunks<scalar_t>(acc_pos, chunks, n_pos, {B, Vp, 4});
}

}  // namespace

torch::Tensor interpolate_forward(const torch::Tensor& attr, const torch::Tensor& tri_id, const torch::Tensor& bary,
                                  const torch::Tensor& faces) {
  auto out = torch::empty({tri_id.size(0), tri_id.size(1), tri_id.size(2), attr.size(2)}, attr.options());
  AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "interpolate",
                             [&] { forward_kernel<scalar_t>(attr, tri_id, bary, faces, out); });
  return out;
}

std::pair<torch::Tensor, torch::Tensor> interpolate_backward(const torch::Tensor& grad, const torch::Tensor& attr,
                                                             const torch::Tensor& pos, const torch::Tensor& tri_id,
                                                             const torch::Tensor& bary, const torch::Tensor& attr_faces,
                                                             const torch::Tensor& pos_faces, bool need_attr,
                                                             bool need_pos) {
  torch::Tensor grad_attr, grad_pos;
  AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "interpolate_backward", [&] {
    backward_kernel<scalar_t>(grad, attr, pos, tri_id, bary, attr_faces, pos_faces, need_attr, need_pos, grad_attr,
                              grad_pos);
  });
  return {grad_attr, grad_pos};
}

}  // namespace pixel3dmm::render::cpu
