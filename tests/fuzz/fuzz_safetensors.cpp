// libFuzzer target: io::parse_safetensors on arbitrary bytes (header length, JSON header, dtypes, shapes, offsets).
#include "fuzz_util.h"
#include "pixel3dmm/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_ok_or_error([&] {
    auto file = pixel3dmm::io::parse_safetensors(fuzz::view(data, size), "fuzz.safetensors");
    for (auto& [name, t] : file.tensors) {
      if (!t.is_contiguous() || t.device() != torch::kCPU) std::abort();  // the documented contract
    }
  });
  return 0;
}
