#include "pixel3dmm/fit/silhouette_texture.h"

#include <algorithm>
#include <cmath>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"

namespace pixel3dmm::fit {

torch::Tensor read_mask_texture(const std::string& path) {
  const auto image = io::read_image(path);  // 1 x 3 x H x W in [0, 1]
  return (image.squeeze(0) > 0).to(torch::kFloat32).contiguous();
}

torch::Tensor region_mask_texture(const flame::FlameModel& model, const std::vector<std::string>& regions,
                                  int64_t size) {
  PIXEL3DMM_CHECK(size >= 1 && size <= 8192, "region_mask_texture: size must be in [1, 8192], found ", size);
  const int64_t V = model.n_vertices();
  std::vector<char> selected(static_cast<size_t>(V), 0);
  for (const auto& name : regions) {
    const auto it = model.masks.find(name);
    PIXEL3DMM_CHECK(it != model.masks.end(), model.source, ": the silhouette texture needs the vertex mask 'mask.",
                    name, "' (convert FLAME with --masks FLAME_masks.pkl)");
    const auto ids = it->second.to(torch::kLong).contiguous();
    const int64_t* p = ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < ids.numel(); ++i)
      if (p[i] >= 0 && p[i] < V) selected[static_cast<size_t>(p[i])] = 1;
  }
  const bool per_corner = model.uv_coords.defined() && model.uv_faces.defined();
  PIXEL3DMM_CHECK(per_corner || model.vertex_uv.defined(), model.source,
                  ": the silhouette texture needs UVs (vt / ft or vertex_uv)");
  const auto uv = (per_corner ? model.uv_coords : model.vertex_uv).to(torch::kDouble).contiguous();
  const auto uv_faces = (per_corner ? model.uv_faces : model.faces).to(torch::kLong).contiguous();
  const auto faces = model.faces.to(torch::kLong).contiguous();
  const double* t = uv.data_ptr<double>();
  const int64_t* f = faces.data_ptr<int64_t>();
  const int64_t* tf = uv_faces.data_ptr<int64_t>();
  auto texture = torch::zeros({1, size, size}, torch::kFloat32);
  float* out = texture.data_ptr<float>();
  const double s = static_cast<double>(size);
  for (int64_t k = 0; k < faces.size(0); ++k) {
    if (!selected[f[3 * k]] || !selected[f[3 * k + 1]] || !selected[f[3 * k + 2]]) continue;
    // Texel space of MeshRenderer: column (1 - u) * size, row (1 - v) * size; texel (i, j) has its centre at
    // (i + 0.5, j + 0.5).
    double x[3], y[3];
    for (int c = 0; c < 3; ++c) {
      const int64_t q = tf[3 * k + c];
      x[c] = (1.0 - t[2 * q]) * s;
      y[c] = (1.0 - t[2 * q + 1]) * s;
    }
    const double area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0]);
    if (area == 0.0 || !std::isfinite(area)) continue;
    const int64_t i0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(std::min({x[0], x[1], x[2]}))));
    const int64_t i1 = std::min<int64_t>(size - 1, static_cast<int64_t>(std::ceil(std::max({x[0], x[1], x[2]}))));
    const int64_t j0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(std::min({y[0], y[1], y[2]}))));
    const int64_t j1 = std::min<int64_t>(size - 1, static_cast<int64_t>(std::ceil(std::max({y[0], y[1], y[2]}))));
    for (int64_t j = j0; j <= j1; ++j) {
      const double py = j + 0.5;
      for (int64_t i = i0; i <= i1; ++i) {
        const double px = i + 0.5;
        // Edge functions with the triangle's orientation: inside (or on an edge) when all have area's sign.
        const double e0 = ((x[2] - x[1]) * (py - y[1]) - (px - x[1]) * (y[2] - y[1])) * area;
        const double e1 = ((x[0] - x[2]) * (py - y[2]) - (px - x[2]) * (y[0] - y[2])) * area;
        const double e2 = ((x[1] - x[0]) * (py - y[0]) - (px - x[0]) * (y[1] - y[0])) * area;
        if (e0 >= 0 && e1 >= 0 && e2 >= 0) out[j * size + i] = 1.0f;
      }
    }
  }
  return texture;
}

torch::Tensor silhouette_texture(const flame::FlameModel& model, const std::string& setting) {
  if (setting.empty()) return {};
  if (setting == "auto") {
    // The official content when the model can say what it is; a model without those masks keeps the coverage.
    for (const char* m : {"face", "left_eyeball", "right_eyeball"})
      if (!model.masks.count(m)) return {};
    return region_mask_texture(model, {"face", "left_eyeball", "right_eyeball"});
  }
  if (setting == "masks") return region_mask_texture(model, {"face", "left_eyeball", "right_eyeball"});
  return read_mask_texture(setting);
}

}  // namespace pixel3dmm::fit
