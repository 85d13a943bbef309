// Fit accuracy on synthetic ground truth: random identity, expression, pose and camera of the synthetic
// FLAME-layout model; its rendered UV and normal maps with noise and 10% outlier pixels stand in for the network's
// predictions. Full fit vs landmark-only fit from the neutral start, over N cases (default 20), with the official
// settings or those of a config file (e.g. configs/fit-robust.json):
//   bench_fit_accuracy [cases] [config.json]
// Posed errors are mean vertex distances after rigid alignment, eyeballs excluded (see aligned_vertex_error).
#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/fit/synthetic_target.h"
#include "pixel3dmm/flame/synthetic.h"
#include "pixel3dmm/io/config.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  const int cases = argc > 1 ? std::atoi(argv[1]) : 20;
  bench::print_header("FLAME fit accuracy on synthetic ground truth (noise + 10% outliers)");
  flame::Flame flame(flame::synthetic_flame(), flame::FlameOptions());
  const fit::FitConfig config = argc > 2 ? io::load_config<fit::FitConfig>(argv[2]) : fit::FitConfig{};
  std::printf("settings: %s\n", argc > 2 ? argv[2] : "official defaults");
  const fit::Fitter fitter(flame, config);
  const auto measured = fit::non_eyeball_vertices(flame->model());
  std::printf("%-5s %12s %12s %12s %12s %12s %9s\n", "case", "head (mm)", "start (mm)", "landmk (mm)", "full (mm)",
              "full neutral", "full (%)");
  double sum_lmk = 0, sum_full = 0, sum_pct = 0, sum_neutral = 0, sum_lmk_neutral = 0, seconds = 0;
  for (int i = 0; i < cases; ++i) {
    const fit::FitParams truth = fit::random_params(1, 300, 100, 1000 + i);
    fit::SyntheticTargetOptions so;
    so.size = 512;
    so.seed = 1000 + i;
    const fit::SyntheticTarget st = fit::render_synthetic_target(fitter, truth, 0, so);
    const auto head = st.vertices[0];
    const double size = (std::get<0>(head.max(0)) - std::get<0>(head.min(0))).norm().item<double>();
    const double start = fit::aligned_vertex_error(
        fitter.evaluate(fit::FitParams::initial(1, 300, 100, config.focal_init)).vertices.detach(), st.vertices, measured);
    const fit::FitResult lmk = fitter.fit_landmarks_only({st.target});
    const fit::FitResult full = fitter.fit(st.target);
    seconds += full.seconds;
    const double e_lmk = fit::aligned_vertex_error(lmk.vertices, st.vertices, measured);
    const double e_full = fit::aligned_vertex_error(full.vertices, st.vertices, measured);
    const double n_full = fit::mean_vertex_error(full.canonical, st.canonical);
    const double n_lmk = fit::mean_vertex_error(lmk.canonical, st.canonical);
    sum_lmk += e_lmk, sum_full += e_full, sum_pct += e_full / size, sum_neutral += n_full, sum_lmk_neutral += n_lmk;
    std::printf("%-5d %12.1f %12.2f %12.2f %12.2f %12.2f %8.2f%%\n", i, size * 1000, start * 1000, e_lmk * 1000,
                e_full * 1000, n_full * 1000, 100 * e_full / size);
    std::fflush(stdout);
  }
  std::printf("\nmean over %d cases: landmark-only %.2f mm, full %.2f mm (%.2f%% of head size; %.0f%% lower than "
              "landmark-only); neutral shape: landmark-only %.2f mm, full %.2f mm; %.1f s per full fit\n",
              cases, 1000 * sum_lmk / cases, 1000 * sum_full / cases, 100 * sum_pct / cases,
              100 * (1 - sum_full / sum_lmk), 1000 * sum_lmk_neutral / cases, 1000 * sum_neutral / cases,
              seconds / cases);
  return 0;
}
