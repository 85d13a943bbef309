// Fitting speed: milliseconds per step of each stage and total seconds of the default single-image fit
// (official schedule: 500 camera steps + FitConfig::iters full steps at 256 x 256) on the 5023-vertex synthetic
// FLAME-layout model, with 1 and 2 threads.
//
// bench_fit [steps] [--threads N] [--profile trace.json]: --threads times one thread count only; --profile writes
// LibTorch's profiler trace (chrome://tracing JSON) of the timed run's full steps (the last thread count).
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "bench_util.h"
#include "pixel3dmm/fit/fitter.h"
#include "pixel3dmm/synth/synthetic_target.h"
#include "pixel3dmm/synth/synthetic_flame.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  bench::print_header("FLAME fit (default single-image schedule, 5023-vertex synthetic model, 256 x 256)");
  int full_steps = 100;  // steps timed per stage (the default fit runs more)
  std::vector<int> thread_counts{1, 2};
  std::string profile;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_counts = {std::atoi(argv[++i])};
    } else if (!std::strcmp(argv[i], "--profile") && i + 1 < argc) {
      profile = argv[++i];
    } else {
      full_steps = std::atoi(argv[i]);
    }
  }
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  fit::FitConfig config;
  const fit::Fitter probe(flame, config);
  const synth::SyntheticTarget st =
      synth::render_synthetic_target(probe, synth::random_params(1, 300, 100, 1), 0, synth::SyntheticTargetOptions{512});
  std::printf("%-8s %16s %16s %22s\n", "threads", "camera ms/step", "full ms/step", "default fit total (s)");
  for (int threads : thread_counts) {
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
    std::unique_ptr<torch::autograd::profiler::RecordProfile> recording;
    fitter.fit(st.target, [&](const fit::FitLogEntry& e) {
      const auto now = std::chrono::steady_clock::now();
      if (!profile.empty() && threads == thread_counts.back() && e.stage == "camera" &&
          e.step + 1 == c.camera.steps)
        recording = std::make_unique<torch::autograd::profiler::RecordProfile>(profile);
      (e.stage == "camera" ? camera_ms : full_ms)
          .push_back(std::chrono::duration<double, std::milli>(now - last).count());
      last = now;
      return true;
    });
    recording.reset();  // writes the trace
    auto median = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    const double cam = median(camera_ms), full = median(full_ms);
    const double total = (cam * config.camera.steps + full * config.iters) / 1000.0;
    std::printf("%-8d %16.2f %16.2f %22.1f\n", threads, cam, full, total);
    (void)r;
  }
  std::printf("(target, issue 27: one full-stage step under 10 ms with 2 threads)\n");
  return 0;
}
