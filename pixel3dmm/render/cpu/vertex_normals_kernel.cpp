// The CPU kernels of render::vertex_normals (vertex_normals.h): per vertex the sum of its faces' cross products, in
// one pass over the faces, and that sum's backward. Fused because the tensor formulation (gathers, a cross product,
// three index_adds, their backward passes) cost ~5 ms of a 256 x 256 fitting step on FLAME's 9976 faces, most of it
// in dispatch and scatter overhead. No argument checks (vertex_normals.cpp), no autograd
// (autograd/vertex_normals_autograd.cpp).
#include <ATen/Parallel.h>

#include "pixel3dmm/render/cpu/kernels.h"

namespace pixel3dmm::render::cpu {
namespace {

// c = (v1 - v0) x (v2 - v0) of face f.
template <typename T>
inline void face_cross(const T* v, const int64_t* f, T* c) {
  const T* p0 = v + 3 * f[0];
  const T* p1 = v + 3 * f[1];
  const T* p2 = v + 3 * f[2];
  const T a0 = p1[0] - p0[0], a1 = p1[1] - p0[1], a2 = p1[2] - p0[2];
  const T b0 = p2[0] - p0[0], b1 = p2[1] - p0[1], b2 = p2[2] - p0[2];
  c[0] = a1 * b2 - a2 * b1;
  c[1] = a2 * b0 - a0 * b2;
  c[2] = a0 * b1 - a1 * b0;
}

// Unnormalised sums (B x V x 3) of the face crosses, corner 0 of every face first, then corner 1, then corner 2.
template <typename T>
void sum_face_crosses(const torch::Tensor& v, const torch::Tensor& faces, torch::Tensor& sums) {
  const int64_t B = v.size(0), V = v.size(1), F = faces.size(0);
  const int64_t* f = faces.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> cross(static_cast<size_t>(3 * F));
    for (int64_t b = b0; b < b1; ++b) {
      const T* vb = v.data_ptr<T>() + b * V * 3;
      T* s = sums.data_ptr<T>() + b * V * 3;
      for (int64_t i = 0; i < F; ++i) face_cross(vb, f + 3 * i, cross.data() + 3 * i);
      for (int k = 0; k < 3; ++k)
        for (int64_t i = 0; i < F; ++i)
          for (int d = 0; d < 3; ++d) s[3 * f[3 * i + k] + d] += cross[static_cast<size_t>(3 * i + d)];
    }
  });
}

}  // namespace

torch::Tensor face_crosses(const torch::Tensor& v, const torch::Tensor& faces) {
  auto sums = torch::zeros_like(v);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "vertex_normals", [&] { sum_face_crosses<scalar_t>(v, faces, sums); });
  return sums;
}

torch::Tensor face_crosses_backward(const torch::Tensor& v, const torch::Tensor& faces, const torch::Tensor& gs) {
  auto gv = torch::zeros_like(v);
  const int64_t B = v.size(0), V = v.size(1), F = faces.size(0);
  const int64_t* f = faces.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "vertex_normals_backward", [&] {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* vb = v.data_ptr<scalar_t>() + b * V * 3;
        const scalar_t* gsb = gs.data_ptr<scalar_t>() + b * V * 3;
        scalar_t* out = gv.data_ptr<scalar_t>() + b * V * 3;
        for (int64_t i = 0; i < F; ++i) {
          const int64_t* fi = f + 3 * i;
          const scalar_t* p0 = vb + 3 * fi[0];
          const scalar_t* p1 = vb + 3 * fi[1];
          const scalar_t* p2 = vb + 3 * fi[2];
          const scalar_t a[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
          const scalar_t c[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
          // The face's cross product feeds all three corners' sums.
          scalar_t gc[3];
          for (int d = 0; d < 3; ++d) gc[d] = gsb[3 * fi[0] + d] + gsb[3 * fi[1] + d] + gsb[3 * fi[2] + d];
          // x = a cross c: dL/da = c cross gc, dL/dc = gc cross a.
          const scalar_t ga[3] = {c[1] * gc[2] - c[2] * gc[1], c[2] * gc[0] - c[0] * gc[2],
                                  c[0] * gc[1] - c[1] * gc[0]};
          const scalar_t gb[3] = {gc[1] * a[2] - gc[2] * a[1], gc[2] * a[0] - gc[0] * a[2],
                                  gc[0] * a[1] - gc[1] * a[0]};
          for (int d = 0; d < 3; ++d) {
            out[3 * fi[1] + d] += ga[d];
            out[3 * fi[2] + d] += gb[d];
            out[3 * fi[0] + d] -= ga[d] + gb[d];
          }
        }
      }
    });
  });
  return gv;
}

}  // namespace pixel3dmm::render::cpu
