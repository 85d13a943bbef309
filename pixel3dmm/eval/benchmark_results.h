#pragma once
/// A benchmark run's outcome: per-case scores, their means, and the tables that report them.

#include <string>
#include <vector>

#include "pixel3dmm/eval/scorer.h"

namespace pixel3dmm::eval {

/// One case's outcome.
struct CaseScore {
  std::string name;
  bool ok = false;
  std::string error;  ///< why it failed (the run goes on)
  GeometryScore posed, neutral;
  bool has_neutral = false;
  double fit_seconds = 0.0;
};

/// Mean figures over the successful cases.
struct Summary {
  int64_t cases = 0, failed = 0;
  double posed_l1 = 0, posed_l2 = 0, posed_r25 = 0, posed_nc = 0;
  double neutral_l1 = 0, neutral_l2 = 0, neutral_r25 = 0, neutral_nc = 0;
  double fit_seconds = 0;
};

struct BenchmarkResults {
  std::string method;
  std::vector<CaseScore> cases;
  Summary summary() const;
};

/// results.md (per-case rows and the mean) and results.csv (every metric), atomically.
void write_results(const std::string& folder, const BenchmarkResults& results);

/// Several methods' summaries side by side, with the relative posed / neutral L1 change against `baseline`
/// (a method name; skipped when absent). Markdown.
std::string comparison_table(const std::vector<BenchmarkResults>& results, const std::string& baseline = "landmarks");

}  // namespace pixel3dmm::eval
