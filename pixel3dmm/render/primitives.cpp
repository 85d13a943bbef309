#include "pixel3dmm/render/primitives.h"

#include <cmath>
#include <vector>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::render {

TriangleMesh uv_sphere(int64_t rings, int64_t segments, double radius) {
  PIXEL3DMM_CHECK(rings >= 2 && segments >= 3, "uv_sphere: need rings >= 2 and segments >= 3, found rings=", rings,
                  " segments=", segments);
  PIXEL3DMM_CHECK(radius > 0 && std::isfinite(radius), "uv_sphere: radius must be positive, found ", radius);
  const double pi = 3.14159265358979323846;
  const int64_t R = rings, S = segments, V = 2 + (R - 1) * S;
  std::vector<float> pos;
  pos.reserve(static_cast<size_t>(3 * V));
  auto push = [&](double theta, double phi) {
    pos.push_back(static_cast<float>(radius * std::sin(theta) * std::sin(phi)));
    pos.push_back(static_cast<float>(radius * std::cos(theta)));
    pos.push_back(static_cast<float>(radius * std::sin(theta) * std::cos(phi)));
  };
  push(0.0, 0.0);
  for (int64_t i = 1; i < R; ++i)
    for (int64_t j = 0; j < S; ++j) push(pi * i / R, 2.0 * pi * j / S - pi);  // u = 0.5 faces +z
  push(pi, 0.0);
  std::vector<float> uv;
  for (int64_t i = 0; i <= R; ++i)
    for (int64_t j = 0; j <= S; ++j) {
      uv.push_back(static_cast<float>(static_cast<double>(j) / S));
      uv.push_back(static_cast<float>(1.0 - static_cast<double>(i) / R));
    }
  auto g = [&](int64_t i, int64_t j) { return 1 + (i - 1) * S + (j % S); };
  auto t = [&](int64_t i, int64_t j) { return i * (S + 1) + j; };
  std::vector<int64_t> f, ft;
  auto tri = [&](int64_t a, int64_t b, int64_t c, int64_t ta, int64_t tb, int64_t tc) {
    f.insert(f.end(), {a, b, c});
    ft.insert(ft.end(), {ta, tb, tc});
  };
  const int64_t south = V - 1;
  for (int64_t j = 0; j < S; ++j) tri(0, g(1, j), g(1, j + 1), t(0, j), t(1, j), t(1, j + 1));
  for (int64_t i = 1; i + 1 < R; ++i)
    for (int64_t j = 0; j < S; ++j) {
      tri(g(i, j), g(i + 1, j), g(i, j + 1), t(i, j), t(i + 1, j), t(i, j + 1));
      tri(g(i, j + 1), g(i + 1, j), g(i + 1, j + 1), t(i, j + 1), t(i + 1, j), t(i + 1, j + 1));
    }
  for (int64_t j = 0; j < S; ++j) tri(g(R - 1, j), south, g(R - 1, j + 1), t(R - 1, j), t(R, j), t(R - 1, j + 1));
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const int64_t F = static_cast<int64_t>(f.size() / 3);
  return {torch::from_blob(pos.data(), {V, 3}, f32).clone(), torch::from_blob(f.data(), {F, 3}, i64).clone(),
          torch::from_blob(uv.data(), {(R + 1) * (S + 1), 2}, f32).clone(),
          torch::from_blob(ft.data(), {F, 3}, i64).clone()};
}

}  // namespace pixel3dmm::render
