// Fitting speed: milliseconds per step of each stage and total seconds of the default single-image fit
// (official schedule: 500 camera steps + FitConfig::iters full steps at 256 x 256) on the 5023-vertex synthetic
// FLAME-layout model, with 1 and 2 threads.
#include <cstdio>

#include "bench_util.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  bench::print_header("FLAME fit (default single-image schedule, 5023-vertex synthetic model, 256 x 256)");
  const int full_steps = argc > 1 ? std::atoi(argv[1]) : 100;  // steps timed per stage (the default fit runs more)
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  fit::FitConfig config;
  const fit::Fitter probe(flame, config);
  const synth::SyntheticTarget st =
      synth::render_synthetic_target(probe, synth::random_params(1, 300, 100, 1), 0, synth::SyntheticTargetOptions{512});
  std::printf("%-8s %16s %16s %22s\n", "threads", "camera ms/step", "full ms/step", "default fit total (s)");
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    fit::FitConfig c = config;
    c.camera.steps = full_steps;
    c.camera.landmark_steps = full_steps / 2;
    c.iters = full_steps;
    const fit::Fitter fitter(flame, c);
    const fit::FitResult r = fitter.fit(st.target);
    // Split the wall time by stage with a second run timed per step.
    std::vector<double> camera_ms, full_ms;
    auto last = std::chrono::steady_clock::now();
    fitter.fit(st.target, [&](const fit::FitLogEntry& e) {
      const auto now = std::chrono::steady_clock::now();
      (e.stage == "camera" ? camera_ms : full_ms)
          .push_back(std::chrono::duration<double, std::milli>(now - last).count());
      last = now;
      return true;
    });
    auto median = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    const double cam = median(camera_ms), full = median(full_ms);
    const double total = (cam * config.camera.steps + full * config.iters) / 1000.0;
    std::printf("%-8d %16.2f %16.2f %22.1f\n", threads, cam, full, total);
    (void)r;
  }
  std::printf("(target: one full-stage step under 20 ms with 2 threads)\n");
  return 0;
}
