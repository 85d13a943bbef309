#pragma once
// Timing helpers for the benchmark programs: warm-up, repeated runs, median milliseconds, aligned tables.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "pixel3dmm/core/runtime.h"

namespace pixel3dmm::bench {

/// Median wall-clock milliseconds of `fn` over enough repetitions to fill ~`budget_s` seconds (at least `min_reps`).
inline double median_ms(const std::function<void()>& fn, double budget_s = 1.0, int min_reps = 5) {
  fn();  // warm-up
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(ms.size()) < min_reps ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < budget_s) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (ms.size() >= 1000) break;
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

/// Prints the machine context every benchmark starts with.
// Every benchmark runs with the OpenMP wait policy and malloc thresholds the command-line program uses (see
// runtime.h), set before main because libgomp reads its policy when it is loaded.
inline const bool kProcessDefaults = (reexec_with_openmp_wait_default(), keep_freed_memory_for_reuse(), true);

inline void print_header(const char* title) {
  const RuntimeInfo info = runtime_info();
  std::printf("== %s ==\n(pixel3dmm %s, LibTorch %s, BLAS %s, %d hardware threads)\n", title,
              info.pixel3dmm_version.c_str(), info.torch_version.c_str(), info.blas_kind.c_str(),
              info.hardware_threads);
  if (!info.openmp_wait.empty()) std::printf("(%s)\n", info.openmp_wait.c_str());
}

}  // namespace pixel3dmm::bench
