// libFuzzer target: dataset manifests (JSON lines): train::Dataset::open (keys, paths that may not leave the
// dataset folder, cameras), then loading the first samples (whose files mostly do not exist: FileNotFound).
#include "fuzz_util.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Mesh samples need a FLAME model; a small one written once keeps each input fast (the default synthetic
  // model has 5023 vertices and is rebuilt per manifest).
  static const pixel3dmm::train::DatasetOptions options = [] {
    pixel3dmm::train::DatasetOptions o;
    o.flame = fuzz::scratch_dir() + "/flame.safetensors";
    pixel3dmm::synth::synthetic_flame(pixel3dmm::synth::SyntheticFlameOptions().vertices(101).n_shape(3).n_expr(2))
        .save(o.flame);
    return o;
  }();
  const std::string path = fuzz::write_file("manifest.jsonl", data, size);
  fuzz::expect_ok_or_error([&] {
    auto dataset = pixel3dmm::train::Dataset::open(path, options);
    for (int64_t i = 0; i < std::min<int64_t>(dataset.size(), 2); ++i) {
      const auto& e = dataset.entry(i);
      for (const std::string* p : {&e.image, &e.uv, &e.normals, &e.mask, &e.mesh}) {
        // Every resolved path stays inside the manifest's folder.
        if (!p->empty() && p->rfind(dataset.root(), 0) != 0) std::abort();
      }
      fuzz::expect_ok_or_error([&] { (void)dataset.get(i); });
    }
  });
  return 0;
}
