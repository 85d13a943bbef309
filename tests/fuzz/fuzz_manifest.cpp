// libFuzzer target: dataset manifests (JSON lines): train::Dataset::open (keys, paths that may not leave the
// dataset folder, cameras), then loading the first samples (whose files mostly do not exist: FileNotFound).
#include "fuzz_util.h"
#include "pixel3dmm/train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("manifest.jsonl", data, size);
  fuzz::expect_ok_or_error([&] {
    auto dataset = pixel3dmm::train::Dataset::open(path);
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
