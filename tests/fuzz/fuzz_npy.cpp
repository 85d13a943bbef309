// libFuzzer target: io::parse_npy on arbitrary bytes (magic, version, header dict, dtype, shape, byte order).
#include "fuzz_util.h"
#include "pixel3dmm/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_ok_or_error([&] {
    torch::Tensor t = pixel3dmm::io::parse_npy(fuzz::view(data, size), "fuzz.npy");
    if (!t.defined()) std::abort();
    // The tensor's memory is fully readable (no view past the buffer).
    if (t.numel() > 0 && t.is_floating_point()) (void)t.to(torch::kDouble).sum().item<double>();
  });
  return 0;
}
