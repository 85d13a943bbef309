#include "pixel3dmm/fit/losses.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::fit {
namespace F = torch::nn::functional;

namespace {

/// Exact nearest neighbours of `queries` (N x 2) among `points` (M x 2) with a uniform grid over the points'
/// bounding box and ring search: ~4 points per cell, so a query touches a few dozen points instead of M.
void nearest_neighbours(const float* points, int64_t m, const float* queries, int64_t n, int64_t* out_index,
                        float* out_dist2) {
  float x0 = std::numeric_limits<float>::max(), y0 = x0, x1 = -x0, y1 = -x0;
  for (int64_t i = 0; i < m; ++i) {
    x0 = std::min(x0, points[2 * i]);
    x1 = std::max(x1, points[2 * i]);
    y0 = std::min(y0, points[2 * i + 1]);
    y1 = std::max(y1, points[2 * i + 1]);
  }
  const int64_t g = std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(double(m) / 4.0)));
  const double cw = std::max(1e-12, double(x1 - x0) / g), ch = std::max(1e-12, double(y1 - y0) / g);
  auto cell_of = [&](double x, double y, int64_t& cx, int64_t& cy) {
    cx = std::clamp<int64_t>(static_cast<int64_t>(std::floor((x - x0) / cw)), 0, g - 1);
    cy = std::clamp<int64_t>(static_cast<int64_t>(std::floor((y - y0) / ch)), 0, g - 1);
  };
  // Counting sort of the points into cells; within a cell points keep increasing index order.
  std::vector<int64_t> start(g * g + 1, 0), order(m);
  std::vector<int64_t> cell(m);
  for (int64_t i = 0; i < m; ++i) {
    int64_t cx, cy;
    cell_of(points[2 * i], points[2 * i + 1], cx, cy);
    cell[i] = cy * g + cx;
    ++start[cell[i] + 1];
  }
  for (int64_t c = 0; c < g * g; ++c) start[c + 1] += start[c];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < m; ++i) order[fill[cell[i]]++] = i;
  }
  const double step = std::min(cw, ch);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const double qx = queries[2 * q], qy = queries[2 * q + 1];
      int64_t cx, cy;
      cell_of(qx, qy, cx, cy);
      double best = std::numeric_limits<double>::infinity();
      int64_t best_i = -1;
      auto visit = [&](int64_t x, int64_t y) {
        if (x < 0 || y < 0 || x >= g || y >= g) return;
        const int64_t c = y * g + x;
        for (int64_t k = start[c]; k < start[c + 1]; ++k) {
          const int64_t i = order[k];
          const double dx = points[2 * i] - qx, dy = points[2 * i + 1] - qy;
          const double d2 = dx * dx + dy * dy;
          if (d2 < best || (d2 == best && i < best_i)) {
            best = d2;
            best_i = i;
          }
        }
      };
      for (int64_t r = 0; r < 2 * g; ++r) {
        if (r > 0 && double(r - 1) * step * (double(r - 1) * step) > best) break;  // ring r is farther than best
        if (r == 0) {
          visit(cx, cy);
          continue;
        }
        for (int64_t d = -r; d <= r; ++d) {
          visit(cx + d, cy - r);
          visit(cx + d, cy + r);
        }
        for (int64_t d = -r + 1; d <= r - 1; ++d) {
          visit(cx - r, cy + d);
          visit(cx + r, cy + d);
        }
      }
      out_index[q] = best_i;
      out_dist2[q] = static_cast<float>(best);
    }
  });
}

torch::Tensor as_float_mask(const torch::Tensor& mask) { return mask.to(torch::kFloat); }

torch::Tensor closure_loss(const torch::Tensor& pred68, const torch::Tensor& target68, const torch::Tensor& mask68,
                           int64_t image_size, const std::vector<int64_t>& upper, const std::vector<int64_t>& lower,
                           const char* what) {
  check_shape(pred68, {-1, 68, 2}, std::string(what) + " model landmarks");
  check_shape(target68, {pred68.size(0), 68, 2}, std::string(what) + " image landmarks");
  const auto up = torch::tensor(upper, torch::kLong), lo = torch::tensor(lower, torch::kLong);
  const double s = static_cast<double>(image_size);
  const auto model_vec = (pred68.index_select(1, up) - pred68.index_select(1, lo)) / s;
  const auto image_vec = (target68.index_select(1, up) - target68.index_select(1, lo)) / s;
  auto d2 = (model_vec - image_vec).pow(2);
  if (mask68.defined()) d2 = d2 * as_float_mask(mask68).index_select(1, up).unsqueeze(-1);
  return d2.mean();
}

}  // namespace

UVCorrespondences uv_correspondences(const torch::Tensor& pred_uv, const torch::Tensor& vertex_uv) {
  check_shape(pred_uv, {-1, 2, -1, -1}, "predicted UV map");
  check_shape(vertex_uv, {-1, 2}, "vertex UVs");
  const int64_t b = pred_uv.size(0), h = pred_uv.size(2), w = pred_uv.size(3), n = vertex_uv.size(0);
  PIXEL3DMM_CHECK(h * w > 0, "predicted UV map: empty (", h, " x ", w, ")");
  const auto points = pred_uv.detach().to(torch::kFloat).permute({0, 2, 3, 1}).reshape({b, h * w, 2}).contiguous();
  const auto queries = vertex_uv.detach().to(torch::kFloat).contiguous();
  auto index = torch::empty({b, n}, torch::kLong);
  auto dist2 = torch::empty({b, n}, torch::kFloat);
  for (int64_t i = 0; i < b; ++i) {
    nearest_neighbours(points[i].data_ptr<float>(), h * w, queries.data_ptr<float>(), n, index[i].data_ptr<int64_t>(),
                       dist2[i].data_ptr<float>());
  }
  // Official quirk: x = idx % W, y = idx // H.
  const auto x = index.remainder(w).to(torch::kFloat);
  const auto y = index.div(h, "floor").to(torch::kFloat);
  return {torch::stack({x, y}, -1), dist2};
}

torch::Tensor uv_vertex_loss(const torch::Tensor& projected, const UVCorrespondences& corr,
                             const torch::Tensor& visible, int64_t image_size, const UVVertexLossOptions& options) {
  check_shape(projected, {-1, -1, 2}, "projected vertices");
  check_shape(corr.target_px, {projected.size(0), projected.size(1), 2}, "UV correspondence targets");
  const auto d = corr.target_px.to(projected.dtype()) - projected;
  auto gate = (corr.uv_dist2 < options.delta_uv) & (d.detach().abs().sum(-1) < options.dist_uv);
  if (visible.defined()) gate = gate & visible.to(torch::kBool);
  const auto weighted = d / static_cast<double>(image_size) * gate.unsqueeze(-1).to(projected.dtype());
  return options.l2 ? weighted.pow(2).mean() * 100.0 : weighted.abs().mean();
}

torch::Tensor uv_pixel_loss(const torch::Tensor& pred_uv, const torch::Tensor& rendered_uv, const torch::Tensor& mask,
                            bool l2, double gate) {
  check_shape(pred_uv, {-1, 2, -1, -1}, "predicted UV map");
  check_shape(rendered_uv, pred_uv.sizes(), "rendered UV map");
  check_shape(mask, {pred_uv.size(0), pred_uv.size(2), pred_uv.size(3)}, "UV mask");
  auto weight = as_float_mask(mask).unsqueeze(1);
  if (gate > 0) weight = weight * ((pred_uv - rendered_uv).detach().abs().sum(1, true) < gate).to(weight.dtype());
  const auto diff = (pred_uv - rendered_uv) * weight;
  return l2 ? diff.pow(2).mean() * 100.0 : diff.abs().mean();
}

namespace {

// The maximum over every k-wide window along `dim` of a zero-padded tensor (padded length n + k - 1) -> length n.
// Windows double in width with one elementwise maximum each (1, 2, 4, ...); two overlapping windows of the largest
// width w <= k then cover exactly k: about log2(k) + 1 passes over the image instead of k.
torch::Tensor window_max(torch::Tensor padded, int64_t dim, int64_t k, int64_t n) {
  int64_t w = 1;
  for (; 2 * w <= k; w *= 2) {
    const int64_t len = padded.size(dim) - w;
    padded = torch::maximum(padded.narrow(dim, 0, len), padded.narrow(dim, w, len));
  }
  return torch::maximum(padded.narrow(dim, 0, n), padded.narrow(dim, k - w, n));
}

}  // namespace

torch::Tensor eye_exclusion_mask(const torch::Tensor& eye_mask, int64_t kernel) {
  check_shape(eye_mask, {-1, -1, -1}, "eye mask");
  PIXEL3DMM_CHECK(kernel >= 1 && kernel % 2 == 1, "eye dilation kernel must be odd and positive, got ", kernel);
  const auto eyes = (eye_mask.detach() > 0).to(torch::kFloat);
  // A square max filter is separable: a row pass then a column pass. Zero padding is max_pool's -inf padding for a
  // 0/1 mask. (LibTorch 1.13's CPU max_pool2d always computes indices too: 16x slower at 256 x 256, k = 13.)
  const int64_t r = kernel / 2, h = eyes.size(1), w = eyes.size(2);
  const auto rows = window_max(F::pad(eyes, F::PadFuncOptions({r, r})), 2, kernel, w);
  return 1.0 - window_max(F::pad(rows, F::PadFuncOptions({0, 0, r, r})), 1, kernel, h);
}

torch::Tensor normal_loss(const torch::Tensor& pred_normals, const torch::Tensor& rendered_normals,
                          const torch::Tensor& normal_mask, const torch::Tensor& eye_mask,
                          const NormalLossOptions& options) {
  check_shape(pred_normals, {-1, 3, -1, -1}, "predicted normals");
  check_shape(rendered_normals, pred_normals.sizes(), "rendered normals");
  const std::vector<int64_t> hw{pred_normals.size(0), pred_normals.size(2), pred_normals.size(3)};
  check_shape(normal_mask, hw, "normal mask");
  const auto l = pred_normals - rendered_normals;
  const auto valid = (l.detach().abs().mean(1) < options.delta_n).to(l.dtype());
  auto weight = valid * as_float_mask(normal_mask).to(l.dtype());
  if (eye_mask.defined()) {
    check_shape(eye_mask, hw, "eye mask");
    weight = weight * eye_exclusion_mask(eye_mask, options.eye_dilation).to(l.dtype());
  }
  const auto map = l * weight.unsqueeze(1);
  return options.l2 ? map.pow(2).mean() : map.abs().mean();
}

torch::Tensor silhouette_loss(const torch::Tensor& fg_mask, const torch::Tensor& rendered_fg,
                              const torch::Tensor& valid_bg) {
  check_shape(rendered_fg, {-1, -1, -1}, "rendered foreground");
  check_shape(fg_mask, rendered_fg.sizes(), "foreground mask");
  check_shape(valid_bg, rendered_fg.sizes(), "valid background mask");
  return (as_float_mask(valid_bg) * (as_float_mask(fg_mask) - rendered_fg).abs()).mean();
}

torch::Tensor landmark_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& mask,
                            int64_t image_size) {
  check_shape(pred, {-1, -1, 2}, "model landmarks");
  check_shape(target, pred.sizes(), "image landmarks");
  const double s = static_cast<double>(image_size);
  auto d2 = (pred / s - target / s).pow(2);
  if (mask.defined()) {
    check_shape(mask, {pred.size(0), pred.size(1)}, "landmark mask");
    d2 = d2 * as_float_mask(mask).unsqueeze(-1);
  }
  return d2.mean();
}

torch::Tensor eyelid_closure_loss(const torch::Tensor& pred68, const torch::Tensor& target68,
                                  const torch::Tensor& mask68, int64_t image_size) {
  return closure_loss(pred68, target68, mask68, image_size, {37, 38, 43, 44}, {41, 40, 47, 46}, "eyelid closure");
}

torch::Tensor mouth_closure_loss(const torch::Tensor& pred68, const torch::Tensor& target68,
                                 const torch::Tensor& mask68, int64_t image_size) {
  return closure_loss(pred68, target68, mask68, image_size, {49, 50, 51, 52, 53, 61, 62, 63},
                      {59, 58, 57, 56, 55, 67, 66, 65}, "mouth closure");
}

torch::Tensor sum_squares(const torch::Tensor& x, const torch::Tensor& target) {
  const auto d = target.defined() ? x - target : x;
  return d.pow(2).sum(-1).mean();
}

torch::Tensor mirror_loss(const torch::Tensor& vertices, const torch::Tensor& mirror_index) {
  check_shape(vertices, {-1, -1, 3}, "vertices");
  check_shape(mirror_index, {vertices.size(1)}, "mirror index");
  const auto flip = torch::tensor({-1.0, 1.0, 1.0}, vertices.options());
  const auto mirrored = vertices.index_select(1, mirror_index.to(torch::kLong)) * flip;
  return (mirrored - vertices).pow(2).sum(-1).mean();
}

}  // namespace pixel3dmm::fit
