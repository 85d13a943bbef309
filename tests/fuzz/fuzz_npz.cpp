// libFuzzer target: io::parse_npz on arbitrary bytes (ZIP directory, ZIP64, stored/deflated members, CRC, npy).
#include "fuzz_util.h"
#include "pixel3dmm/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_ok_or_error([&] {
    auto arrays = pixel3dmm::io::parse_npz(fuzz::view(data, size), "fuzz.npz");
    for (auto& [name, t] : arrays) {
      if (!t.defined()) std::abort();
    }
  });
  return 0;
}
