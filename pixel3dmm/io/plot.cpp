#include "pixel3dmm/io/plot.h"

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace pixel3dmm::io {

torch::Tensor line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  const int width = static_cast<int>(options.width), height = static_cast<int>(options.height);
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 60, right = 15, top = 25, bottom = 40;
  const cv::Rect plot(left, top, width - left - right, height - top - bottom);
  cv::rectangle(img, plot, cv::Scalar(0, 0, 0));
  const auto colour = [](const std::array<int, 3>& rgb) { return cv::Scalar(rgb[2], rgb[1], rgb[0]); };
  const auto usable = [&](double v) { return std::isfinite(v) && (!options.log_y || v > 0); };
  const auto value = [&](double v) { return options.log_y ? std::log10(v) : v; };

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (usable(s.y[i]) && std::isfinite(s.x[i])) {
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, value(s.y[i]));
        y_hi = std::max(y_hi, value(s.y[i]));
      }
  if (std::isfinite(x_lo)) {
    if (options.log_y) {
      y_lo = std::floor(y_lo);
      y_hi = std::max(y_lo + 1.0, std::ceil(y_hi));
    } else if (y_hi - y_lo < 1e-12) {
      y_lo -= 0.5;
      y_hi += 0.5;
    }
    if (x_hi - x_lo < 1e-12) x_hi = x_lo + 1.0;
    const auto to_px = [&](double x, double v) {
      return cv::Point(plot.x + int((x - x_lo) / (x_hi - x_lo) * plot.width),
                       plot.y + int((y_hi - v) / (y_hi - y_lo) * plot.height));
    };
    const int ticks = options.log_y ? int(y_hi - y_lo) : 4;
    for (int k = 0; k <= ticks; ++k) {
      const double v = y_lo + (y_hi - y_lo) * k / std::max(ticks, 1);
      const int py = to_px(x_lo, v).y;
      cv::line(img, {plot.x, py}, {plot.x + plot.width, py}, cv::Scalar(220, 220, 220));
      char label[32];
      if (options.log_y)
        std::snprintf(label, sizeof label, "1e%d", int(std::lround(v)));
      else
        std::snprintf(label, sizeof label, "%.3g", v);
      cv::putText(img, label, {4, py + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0));
    }
    int legend_y = top + 16;
    for (const auto& s : series) {
      bool have_prev = false;
      cv::Point prev;
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
        if (!usable(s.y[i]) || !std::isfinite(s.x[i])) continue;
        const cv::Point p = to_px(s.x[i], value(s.y[i]));
        if (have_prev) cv::line(img, prev, p, colour(s.rgb), 1, cv::LINE_AA);
        if (s.x.size() == 1) cv::circle(img, p, 2, colour(s.rgb), cv::FILLED);
        prev = p;
        have_prev = true;
      }
      if (!s.label.empty()) {
        cv::putText(img, s.label, {plot.x + plot.width - 190, legend_y}, cv::FONT_HERSHEY_SIMPLEX, 0.4,
                    colour(s.rgb), 1, cv::LINE_AA);
        legend_y += 15;
      }
    }
  }
  cv::putText(img, options.title, {left, 16}, cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(img, options.x_label, {left + plot.width / 2 - 15, height - 12}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
  return torch::from_blob(img.data, {1, height, width, 3}, torch::kUInt8)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat)
      .div(255.0)
      .contiguous();
}

}  // namespace pixel3dmm::io
