#include "pixel3dmm/eval/benchmark_results.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "pixel3dmm/core/atomic_file.h"

namespace pixel3dmm::eval {
namespace {

namespace fs = std::filesystem;

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}

std::string fmt(double x, int digits = 3) {
  if (std::isnan(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

}  // namespace

Summary BenchmarkResults::summary() const {
  Summary s;
  std::vector<double> pl1, pl2, pr, pn, nl1, nl2, nr, nn, secs;
  for (const auto& c : cases) {
    if (!c.ok) {
      ++s.failed;
      continue;
    }
    ++s.cases;
    pl1.push_back(c.posed.metrics.chamfer_l1), pl2.push_back(c.posed.metrics.chamfer_l2);
    pr.push_back(c.posed.metrics.r25), pn.push_back(c.posed.metrics.normal_consistency);
    if (c.has_neutral) {
      nl1.push_back(c.neutral.metrics.chamfer_l1), nl2.push_back(c.neutral.metrics.chamfer_l2);
      nr.push_back(c.neutral.metrics.r25), nn.push_back(c.neutral.metrics.normal_consistency);
    }
    secs.push_back(c.fit_seconds);
  }
  s.posed_l1 = mean_of(pl1), s.posed_l2 = mean_of(pl2), s.posed_r25 = mean_of(pr), s.posed_nc = mean_of(pn);
  s.neutral_l1 = mean_of(nl1), s.neutral_l2 = mean_of(nl2), s.neutral_r25 = mean_of(nr), s.neutral_nc = mean_of(nn);
  s.fit_seconds = mean_of(secs);
  return s;
}

void write_results(const std::string& folder, const BenchmarkResults& r) {
  fs::create_directories(folder);
  std::ostringstream md, csv;
  md << "# Benchmark results: " << r.method << "\n\n"
     << "Chamfer L1 = mean of both directions (mm); R2.5 = share of ground-truth points within 2.5 mm (%); NC = "
        "normal consistency. Face region, rigid alignment from the 7 NoW landmarks + ICP.\n\n"
     << "| case | posed L1 (mm) | posed R2.5 (%) | posed NC | neutral L1 (mm) | neutral R2.5 (%) | neutral NC | "
        "fit (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
  csv << "case,ok,posed_chamfer_l1_mm,posed_accuracy_l1_mm,posed_completeness_l1_mm,posed_chamfer_l2_mm2,"
         "posed_r25,posed_precision25,posed_normal_consistency,neutral_chamfer_l1_mm,neutral_accuracy_l1_mm,"
         "neutral_completeness_l1_mm,neutral_chamfer_l2_mm2,neutral_r25,neutral_precision25,"
         "neutral_normal_consistency,fit_seconds,error\n";
  for (const auto& c : r.cases) {
    if (!c.ok) {
      md << "| " << c.name << " | failed: " << c.error << " | | | | | | |\n";
      std::string err = c.error;
      for (char& ch : err)
        if (ch == '"' || ch == '\n') ch = '\'';
      csv << c.name << ",0,,,,,,,,,,,,,,,,\"" << err << "\"\n";
      continue;
    }
    const auto& p = c.posed.metrics;
    const auto& n = c.neutral.metrics;
    const double nan = NAN;
    auto nv = [&](double x) { return c.has_neutral ? x : nan; };
    md << "| " << c.name << " | " << fmt(p.chamfer_l1) << " | " << fmt(100 * p.r25, 1) << " | "
       << fmt(p.normal_consistency, 4) << " | " << fmt(nv(n.chamfer_l1)) << " | " << fmt(nv(100 * n.r25), 1) << " | "
       << fmt(nv(n.normal_consistency), 4) << " | " << fmt(c.fit_seconds, 1) << " |\n";
    csv << c.name << ",1," << fmt(p.chamfer_l1, 5) << "," << fmt(p.accuracy_l1, 5) << "," << fmt(p.completeness_l1, 5)
        << "," << fmt(p.chamfer_l2, 5) << "," << fmt(p.r25, 5) << "," << fmt(p.precision25, 5) << ","
        << fmt(p.normal_consistency, 5) << "," << fmt(nv(n.chamfer_l1), 5) << "," << fmt(nv(n.accuracy_l1), 5) << ","
        << fmt(nv(n.completeness_l1), 5) << "," << fmt(nv(n.chamfer_l2), 5) << "," << fmt(nv(n.r25), 5) << ","
        << fmt(nv(n.precision25), 5) << "," << fmt(nv(n.normal_consistency), 5) << "," << fmt(c.fit_seconds, 2)
        << ",\n";
  }
  const Summary s = r.summary();
  md << "| **mean (" << s.cases << " cases" << (s.failed ? ", " + std::to_string(s.failed) + " failed" : "")
     << ")** | **" << fmt(s.posed_l1) << "** | **" << fmt(100 * s.posed_r25, 1) << "** | **" << fmt(s.posed_nc, 4)
     << "** | **" << fmt(s.neutral_l1) << "** | **" << fmt(100 * s.neutral_r25, 1) << "** | **" << fmt(s.neutral_nc, 4)
     << "** | " << fmt(s.fit_seconds, 1) << " |\n";
  write_file_atomically((fs::path(folder) / "results.md").string(), md.str());
  write_file_atomically((fs::path(folder) / "results.csv").string(), csv.str());
}

std::string comparison_table(const std::vector<BenchmarkResults>& results, const std::string& baseline) {
  const BenchmarkResults* base = nullptr;
  for (const auto& r : results)
    if (r.method == baseline) base = &r;
  std::ostringstream md;
  md << "| method | cases | posed L1 (mm) | posed R2.5 (%) | posed NC | neutral L1 (mm) | neutral R2.5 (%) | "
        "neutral NC | posed L1 vs "
     << baseline << " | neutral L1 vs " << baseline << " | fit (s) |\n"
     << "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& r : results) {
    const Summary s = r.summary();
    std::string dp = "-", dn = "-";
    if (base && &r != base) {
      const Summary b = base->summary();
      dp = fmt(100 * (s.posed_l1 / b.posed_l1 - 1), 1) + " %";
      dn = fmt(100 * (s.neutral_l1 / b.neutral_l1 - 1), 1) + " %";
    }
    md << "| " << r.method << " | " << s.cases << (s.failed ? " (+" + std::to_string(s.failed) + " failed)" : "")
       << " | " << fmt(s.posed_l1) << " | " << fmt(100 * s.posed_r25, 1) << " | " << fmt(s.posed_nc, 4) << " | "
       << fmt(s.neutral_l1) << " | " << fmt(100 * s.neutral_r25, 1) << " | " << fmt(s.neutral_nc, 4) << " | " << dp
       << " | " << dn << " | " << fmt(s.fit_seconds, 1) << " |\n";
  }
  return md.str();
}

}  // namespace pixel3dmm::eval
