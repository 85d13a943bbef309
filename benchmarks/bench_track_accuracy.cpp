// Tracking accuracy and jitter on a synthetic video (docs/tracking.md): the tracker (online stage, then global
// stage) against independent single-image fits of every frame, on the 5023-vertex synthetic FLAME-layout model with
// exact rendered maps (noise + 10% outlier pixels), 2 threads.
//   bench_track_accuracy [frames=16] [global iters=300] [seed=0] [--neck DEG] [--set key=value ...]
// --neck DEG gives the key poses neck yaw and pitch in [-DEG, DEG] (default 0: the neck stays straight).
// Every other setting is the official video default (configs/track.json); `pixel3dmm track --synthetic N
// --compare` runs the same evaluation and also writes the outputs.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench_util.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/track/synthetic_evaluation.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  std::vector<std::string> positional, overrides;
  double neck_deg = 0.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
      overrides.push_back(argv[++i]);
    } else if (std::strcmp(argv[i], "--neck") == 0 && i + 1 < argc) {
      neck_deg = std::atof(argv[++i]);
    } else {
      positional.push_back(argv[i]);
    }
  }
  const int frames = positional.size() > 0 ? std::atoi(positional[0].c_str()) : 16;
  const int iters = positional.size() > 1 ? std::atoi(positional[1].c_str()) : 300;
  const uint64_t seed = positional.size() > 2 ? std::strtoull(positional[2].c_str(), nullptr, 10) : 0;
  bench::print_header("video tracking accuracy (synthetic video, 5023-vertex synthetic model, 2 threads)");
  set_num_threads(2);
  io::json cfg = track::TrackerOptions{};
  cfg["global"]["iters"] = iters;
  io::apply_overrides(cfg, overrides);
  const auto options = io::parse_config<track::TrackerOptions>(cfg, "settings");
  const track::Tracker tracker(flame::Flame(synth::synthetic_flame(), flame::FlameOptions()), options);
  synth::SyntheticVideoOptions vo;
  vo.frames = frames;
  vo.seed = seed;
  vo.pose.neck_deg = neck_deg;
  std::printf("neck rotation of the key poses: %.0f deg\n", neck_deg);
  std::printf("%d frames, seed %llu, %lld px maps, image_size %d, online iters %d, global iters %d, batch %d\n",
              frames, static_cast<unsigned long long>(seed), static_cast<long long>(vo.maps.size),
              options.fit.image_size, options.online.iters, options.global.iters, options.global.batch_size);
  const track::SyntheticEvaluation ev = track::evaluate_synthetic_video(tracker, vo, true);
  const double head = ev.head_size;
  std::printf("%-26s %11s %10s %10s %12s %10s\n", "", "posed (mm)", "% of head", "face (mm)", "jitter (mm)",
              "s/frame");
  auto row = [&](const char* name, const track::SequenceErrors& e) {
    std::printf("%-26s %11.2f %9.2f%% %10.2f %12.3f %10.2f\n", name, e.posed * 1000, 100 * e.posed / head,
                e.face * 1000, e.jitter * 1000, e.seconds_per_frame);
  };
  row("truth", ev.truth);
  row("tracker, online stage", ev.online);
  row("tracker, after global", ev.tracked);
  row("independent single fits", ev.independent);
  int steps = 0;
  for (int s : ev.result.online_steps) steps += s;
  std::printf("head size %.0f mm; online steps: frame 0 %d, later frames %.1f on average\n", head * 1000,
              ev.result.online_steps.front(), double(steps - ev.result.online_steps.front()) / std::max(1, frames - 1));
  return 0;
}
