// Video tracking speed with 2 threads: seconds per frame of each stage of `pixel3dmm track` at the official video
// settings (256 x 256, online iters 200 with early stopping, camera warm-up 500 steps on frame 0, global batches of
// 16) on the 5023-vertex synthetic FLAME-layout model and a synthetic video with exact maps.
//   bench_track [frames=16] [global steps timed=20]
// Preparation = resizing the maps and the exact UV nearest-neighbour search (the tracker's per-frame setup; the
// real-video front end's detection and network are timed by bench_preprocess and bench_nn). The global stage's
// cost per frame is (global iters x seconds per step) / frames: printed for the official 5000 iters.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/synth/synthetic_video.h"
#include "pixel3dmm/track/tracker.h"

int main(int argc, char** argv) {
  using namespace pixel3dmm;
  using clock = std::chrono::steady_clock;
  const int frames = argc > 1 ? std::atoi(argv[1]) : 16;
  const int global_steps = argc > 2 ? std::atoi(argv[2]) : 20;
  bench::print_header("video tracking (official video settings, 5023-vertex synthetic model, 256 x 256, 2 threads)");
  set_num_threads(2);
  flame::Flame flame(synth::synthetic_flame(), flame::FlameOptions());
  track::TrackerOptions o;
  o.global.iters = global_steps;
  o.global.smooth_start = 0.0;  // time the steady state: contiguous windows with smoothness on odd steps
  const track::Tracker tracker(flame, o);
  synth::SyntheticVideoOptions vo;
  vo.frames = frames;
  const synth::SyntheticVideo video = synth::make_synthetic_video(tracker.fitter(), vo);

  auto t0 = clock::now();
  for (const auto& f : video.frames) tracker.fitter().prepare({f});
  const double prepare_s = std::chrono::duration<double>(clock::now() - t0).count() / frames;

  std::vector<double> frame_s;
  auto last = clock::now();
  const track::TrackResult r = tracker.track(video.frames, "", [&](const track::TrackProgress& p) {
    const auto now = clock::now();
    if (p.stage == "online") frame_s.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
    return true;
  });
  double later = 0.0;
  int later_steps = 0;
  for (size_t i = 1; i < frame_s.size(); ++i) later += frame_s[i], later_steps += r.online_steps[i];
  later /= std::max<size_t>(1, frame_s.size() - 1);
  const double step_s = r.global_seconds / std::max<size_t>(1, r.global_loss.size());
  std::printf("%-46s %10s\n", "stage", "value");
  std::printf("%-46s %10.3f s/frame\n", "preparation (resize + exact UV 1-NN)", prepare_s);
  std::printf("%-46s %10.2f s (%d steps)\n", "online, frame 0 (camera warm-up + full stage)", frame_s.front(),
              r.online_steps.front());
  std::printf("%-46s %10.2f s/frame (%.0f steps/frame)\n", "online, later frames (early stopping)", later,
              double(later_steps) / std::max(1, frames - 1));
  std::printf("%-46s %10.3f s/step (batch %d)\n", "global stage step", step_s, std::min(frames, 16));
  std::printf("%-46s %10.2f s/frame (5000 x step / %d frames)\n", "global stage at the official 5000 iters",
              5000 * step_s / frames, frames);
  return 0;
}
