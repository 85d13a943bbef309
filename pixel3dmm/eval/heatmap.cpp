#include "pixel3dmm/eval/heatmap.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "pixel3dmm/render/camera.h"
#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/rasterize.h"
#include "pixel3dmm/render/vertex_normals.h"

namespace pixel3dmm::eval {

namespace {

std::string millimetres(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

// Error in [0, 1] -> RGB: blue, cyan, green, yellow, red.
torch::Tensor colormap(const torch::Tensor& t) {
  const auto x = t.clamp(0, 1) * 4;
  const auto r = (x - 2).clamp(0, 1);
  const auto g = torch::where(x < 1, x, torch::where(x < 3, torch::ones_like(x), 4 - x)).clamp(0, 1);
  const auto b = torch::where(x < 1, torch::ones_like(x), 2 - x).clamp(0, 1);
  return torch::stack({r, g, b}, -1);
}

// One panel: the mesh seen from the default camera (world z = 1 looking down -z), framed on its region.
torch::Tensor render_panel(const torch::Tensor& vertices, const torch::Tensor& faces, const torch::Tensor& error,
                           double max_mm, int64_t size) {
  const auto v = vertices.to(torch::kFloat);
  const auto valid = error.isfinite();
  const auto region = valid.any().item<bool>() ? v.index({valid}) : v;
  const auto centre = (std::get<0>(region.max(0)) + std::get<0>(region.min(0))) / 2;
  const double extent = (std::get<0>(region.max(0)) - std::get<0>(region.min(0))).slice(0, 0, 2).max().item<double>();
  auto placed = v - centre;  // centred at the origin, 1 m from the camera
  render::Camera cam = render::Camera::official(size, 0.85 / std::max(extent, 1e-6));
  const auto clip = cam.to_clip(placed.unsqueeze(0));
  const auto raster = render::rasterize(clip, faces, size, size);
  const auto vn = vertex_normals(v, faces);
  auto colour = torch::where(valid.unsqueeze(-1), colormap(error.nan_to_num(0) * 1e3 / max_mm),
                             torch::full({v.size(0), 3}, 0.75f));
  const auto attr = torch::cat({colour, vn}, -1).unsqueeze(0);
  const auto img = render::interpolate(attr, raster)[0];  // H x W x 6
  const auto shade = (img.slice(-1, 5, 6).abs() * 0.7 + 0.3);
  const auto cover = raster.coverage()[0].unsqueeze(-1).to(torch::kFloat);
  const auto rgb = img.slice(-1, 0, 3) * shade * cover + (1 - cover);
  return rgb.permute({2, 0, 1}).contiguous();  // 3 x H x W
}

}  // namespace

torch::Tensor heatmap_image(const Benchmark& bench, const BenchmarkResults& results, int count, double max_mm,
                            int64_t panel) {
  std::vector<torch::Tensor> rows;
  std::vector<std::string> names;
  for (const auto& c : results.cases) {
    if (static_cast<int>(rows.size()) >= count) break;
    if (!c.ok) continue;
    const BenchmarkCase* bc = nullptr;
    for (const auto& b : bench.cases)
      if (b.name == c.name) bc = &b;
    if (!bc) continue;
    const io::Mesh posed = io::read_mesh(bench.resolve(bc->gt_posed));
    std::vector<torch::Tensor> panels;
    panels.push_back(render_panel(posed.vertices, posed.faces, c.posed.vertex_error, max_mm, panel));
    if (c.has_neutral) {
      const io::Mesh neutral = io::read_mesh(bench.resolve(bc->gt_neutral));
      panels.push_back(render_panel(neutral.vertices, neutral.faces, c.neutral.vertex_error, max_mm, panel));
    } else {
      panels.push_back(torch::ones({3, panel, panel}));
    }
    rows.push_back(torch::cat(panels, 2));
    names.push_back(c.name);
  }
  if (rows.empty()) return {};
  auto image = torch::cat(rows, 1);  // 3 x (n panel) x (2 panel)
  // Colour bar with labels under the panels.
  const int64_t w = image.size(2), bar_h = 48;
  auto bar = torch::ones({3, bar_h, w});
  const auto ramp = colormap(torch::linspace(0, 1, w - 40)).t();  // 3 x (w - 40)
  bar.slice(1, 6, 22).slice(2, 20, w - 20).copy_(ramp.unsqueeze(1).expand({3, 16, w - 40}));
  image = torch::cat({image, bar}, 1);
  auto hwc = (image.permute({1, 2, 0}) * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  cv::Mat mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  const int y = static_cast<int>(image.size(1)) - 10;
  auto text = [&](const std::string& s, int x) {
    cv::putText(mat, s, {x, y}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  };
  text("0 mm", 20);
  text(millimetres(max_mm / 2) + " mm", static_cast<int>(w / 2) - 16);
  text(">= " + millimetres(max_mm) + " mm", static_cast<int>(w) - 80);
  for (int64_t i = 0; i < static_cast<int64_t>(rows.size()); ++i) {
    const int top = static_cast<int>(i * panel) + 14;
    cv::putText(mat, names[static_cast<size_t>(i)] + " posed", {4, top}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1,
                cv::LINE_AA);
    cv::putText(mat, names[static_cast<size_t>(i)] + " neutral", {static_cast<int>(panel) + 4, top},
                cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  return hwc.to(torch::kFloat).permute({2, 0, 1}) / 255.0;
}

}  // namespace pixel3dmm::eval
