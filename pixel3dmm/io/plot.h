#pragma once
/// Line plots as images (loss curves of fits and training runs), drawn with OpenCV: no plotting library needed.

#include <torch/types.h>

#include <array>
#include <string>
#include <vector>

namespace pixel3dmm::io {

struct PlotSeries {
  std::string label;                    ///< shown in the legend (empty: not listed)
  std::vector<double> x, y;             ///< same length; non-finite or non-positive (log axis) y are skipped
  std::array<int, 3> rgb{0, 60, 220};  ///< line colour
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  bool log_y = true;  ///< decades on the y axis
  int64_t width = 640, height = 360;
};

/// The series drawn on shared axes -> 1 x 3 x H x W float32 RGB in [0, 1].
torch::Tensor line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options = {});

}  // namespace pixel3dmm::io
