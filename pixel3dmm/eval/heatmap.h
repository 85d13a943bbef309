#pragma once
/// Pictures of a benchmark run: per-vertex error heat maps on the ground-truth meshes.

#include <torch/types.h>

#include "pixel3dmm/eval/benchmark_manifest.h"
#include "pixel3dmm/eval/benchmark_results.h"

namespace pixel3dmm::eval {

/// Per-vertex error heat maps of the first `count` scored cases: the ground-truth posed and neutral meshes shaded
/// and coloured by vertex_error (0 to `max_mm`, grey outside the region), with a colour bar. -> 3 x H x W in [0, 1].
torch::Tensor heatmap_image(const Benchmark& bench, const BenchmarkResults& results, int count, double max_mm = 5.0,
                            int64_t panel = 256);

}  // namespace pixel3dmm::eval
