// The machine's float32 GEMM rate with 1 and 2 threads: the yardstick other benchmarks compare against.
#include <cstdio>

#include "bench_util.h"

int main() {
  using namespace pixel3dmm;
  bench::print_header("GEMM (float32, LibTorch + BLAS)");
  std::printf("%-8s %-8s %12s\n", "n", "threads", "GFLOP/s");
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int n : {256, 512, 1024}) std::printf("%-8d %-8d %12.1f\n", n, threads, measure_gemm_gflops(n));
  }
  return 0;
}
