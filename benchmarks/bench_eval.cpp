// The benchmark's nearest-neighbour search: k-d tree build + 100k x 100k queries at 1 and 2 threads (target: under
// 1 s with 2 threads), the exact brute force on a 2k-query subset for reference (extrapolated to 100k), and a
// face-sized compare_surfaces (20k samples per surface, point-to-triangle) as the scorer runs it.
//   bench_eval [points]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "pixel3dmm/eval/metrics.h"
#include "pixel3dmm/eval/nearest_neighbors.h"
#include "pixel3dmm/synth/synthetic_flame.h"

using namespace pixel3dmm;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 100000;
  bench::print_header("eval: nearest-neighbour search and surface metrics");
  torch::manual_seed(0);
  // Two point clouds on a head-sized surface patch with noise (the benchmark's case), in metres.
  const auto make = [&](int64_t count) {
    auto p = torch::rand({count, 3}) * torch::tensor({0.2f, 0.25f, 0.02f});
    p.select(1, 2).add_(0.05f * torch::sin(p.select(1, 0) * 20.0f));
    return p;
  };
  const auto points = make(n), queries = make(n);
  const int threads = at::get_num_threads();
  std::printf("%lld points, %lld queries\n", static_cast<long long>(n), static_cast<long long>(n));
  std::printf("%-36s %12s\n", "", "ms");
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    const double build = bench::median_ms([&] { eval::KdTree tree(points); }, 1.0, 3);
    const eval::KdTree tree(points);
    const double query = bench::median_ms([&] { tree.query(queries); }, 1.0, 3);
    const double both = bench::median_ms([&] { eval::nearest_neighbors(points, queries); }, 1.0, 3);
    std::printf("k-d tree build, %d thread(s)              %12.1f\n", t, build);
    std::printf("k-d tree %lld queries, %d thread(s)      %12.1f\n", static_cast<long long>(n), t, query);
    std::printf("build + queries, %d thread(s)              %12.1f %s\n", t, both,
                t == 2 ? (both < 1000 ? "(under 1 s)" : "(OVER 1 s)") : "");
  }
  at::set_num_threads(2);
  const int64_t sub = 2000;
  const double brute = bench::median_ms([&] { eval::nearest_neighbors_brute_force(points, queries.slice(0, 0, sub)); },
                                        1.0, 1);
  std::printf("brute force %lld queries, 2 threads        %12.1f (x%lld = %.0f ms for all %lld)\n",
              static_cast<long long>(sub), brute, static_cast<long long>(n / sub), brute * double(n) / double(sub),
              static_cast<long long>(n));

  const auto model = synth::synthetic_flame();
  const auto moved = model.v_template + 0.001 * torch::randn_like(model.v_template);
  eval::MetricOptions o;
  const double surf = bench::median_ms(
      [&] { eval::compare_surfaces(moved, model.faces, model.v_template, model.faces, o); }, 1.0, 3);
  std::printf("compare_surfaces, FLAME-sized, 20k samples %12.1f\n", surf);
  at::set_num_threads(threads);
  return 0;
}
