// Training data throughput at 256 x 256 with 2 intra-op threads: synthetic samples generated (and written) per
// second, and samples loaded per second from PNG targets, float .npy targets and mesh samples (rendered on load,
// cache off and on).
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/train/dataset.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  using namespace pixel3dmm;
  at::set_num_threads(2);
  bench::print_header("training data: synthetic generation and loading (256 x 256, 2 threads)");
  const auto dir = std::filesystem::temp_directory_path() / ("pixel3dmm-bench-dataset-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  constexpr int64_t kCount = 16, kSize = 256;

  // Generation in memory (one photo at a time; the intra-op threads help inside) and written to disk (samples in
  // parallel over the threads).
  const fit::Fitter fitter(flame::Flame(synth::synthetic_flame(), flame::FlameOptions()), fit::FitConfig{});
  synth::SyntheticPhotoOptions po;
  po.size = kSize;
  synth::render_synthetic_photo(fitter, 0, 0, po);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < kCount; ++i) synth::render_synthetic_photo(fitter, 0, i, po);
  const double photo_s = seconds_since(t0);
  std::printf("%-44s %8.1f samples/s  (%.1f ms each)\n", "render_synthetic_photo (in memory)", kCount / photo_s,
              1e3 * photo_s / kCount);

  synth::SyntheticDatasetOptions so;
  so.count = kCount;
  so.photo.size = kSize;
  so.meshes = true;
  std::string manifest_npy, manifest_png;
  for (bool png : {false, true}) {
    so.png_targets = png;
    t0 = std::chrono::steady_clock::now();
    const auto m = synth::write_synthetic_dataset((dir / (png ? "png" : "npy")).string(), so);
    const double s = seconds_since(t0);
    (png ? manifest_png : manifest_npy) = m;
    std::printf("%-44s %8.1f samples/s\n", png ? "write_synthetic_dataset (PNG targets)"
                                               : "write_synthetic_dataset (npy targets, meshes)",
                kCount / s);
  }

  // Loading: every sample once per run, median over runs.
  auto load_rate = [&](const std::string& manifest, bool cache, const char* label) {
    train::DatasetOptions o;
    o.cache_renders = cache;
    const auto d = train::Dataset::open(manifest, o);
    const double ms = bench::median_ms([&] {
      for (int64_t i = 0; i < d.size(); ++i) d.get(i);
    }, 1.0, 3);
    std::printf("%-44s %8.1f samples/s  (%.2f ms each)\n", label, 1e3 * d.size() / ms, ms / d.size());
  };
  load_rate(manifest_png, false, "load: PNG targets");
  load_rate(manifest_npy, false, "load: npy targets");
  const auto meshes = (std::filesystem::path(manifest_npy).parent_path() / "manifest_meshes.jsonl").string();
  load_rate(meshes, false, "load: mesh samples, rendered each time");
  load_rate(meshes, true, "load: mesh samples, renders cached");
  std::filesystem::remove_all(dir);
  return 0;
}
